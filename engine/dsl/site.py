"""One DSL text, wherever it is written, parsed, type-checked and compiled.

Rule files of both shapes (YAML values and `*.rules` clauses) come here with an
`origin` that maps places inside the text to their file, so every problem is
reported at the file's line and column.
"""

from __future__ import annotations

from sqlglot import exp

from engine.dsl import ast
from engine.dsl.check import check
from engine.dsl.compile import Target, compile_expr
from engine.dsl.parser import Origin, parse, too_deep
from engine.dsl.scope import Scope
from engine.dsl.template import template_node
from engine.errors import Diagnostic, Diagnostics, RuleError, did_you_mean


def compile_text(text: str, origin: Origin, scope: Scope, wanted: str | None, rounding: str,
                 diags: Diagnostics, template: bool = False
                 ) -> tuple[ast.Node, str, exp.Expression] | None:
    """(tree, type, SQL) of the expression or `{field}` template; problems go to `diags`."""
    try:
        node = template_node(text, origin) if template else parse(text, origin)
        type_, problems = check(node, scope, wanted)
        if template:
            problems = [_placeholder_problem(d, scope) for d in problems]
        if problems:
            diags.extend(problems)
            return None
        return node, type_, compile_expr(node, Target(scope, rounding))
    except RuleError as exc:
        diags.extend(exc.diagnostics)
    except RecursionError:
        diags.extend(too_deep(origin, len(text)).diagnostics)
    return None


def _placeholder_problem(d: Diagnostic, scope: Scope) -> Diagnostic:
    """A template's unknown field, said in a template's words."""
    if d.code != "E210":
        return d
    name = d.message.removeprefix("unknown field ")
    return Diagnostic("E216", f"unknown field {name} in placeholder", d.ref,
                      did_you_mean(name, scope.names()))
