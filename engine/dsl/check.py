"""The type checker: every name known, every operator given the types it takes.

`check(node, scope)` returns the expression's type and the problems found;
it never stops at the first problem, so `ruledger check` can list them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.dsl import ast
from engine.dsl.scope import NUMERIC, Scope
from engine.errors import Diagnostic, did_you_mean


@dataclass(frozen=True)
class Signature:
    params: tuple[str, ...]  # a type, "numeric", "any", or "T" (all T unify)
    returns: str  # a type, "T" or "same" (the first argument's type)
    optional: int = 0  # how many trailing params may be left out
    variadic: bool = False  # the last param repeats


FUNCTIONS: dict[str, Signature] = {
    "days_between": Signature(("date", "date"), "integer"),
    "round": Signature(("numeric", "integer"), "decimal", optional=1),
    "abs": Signature(("numeric",), "same"),
    "coalesce": Signature(("T", "T"), "T", variadic=True),
    "lower": Signature(("string",), "string"),
    "upper": Signature(("string",), "string"),
    "contains": Signature(("string", "string"), "boolean"),
    "matches": Signature(("string", "string"), "boolean"),
    "extract": Signature(("string", "string", "integer"), "string", optional=1),
    "concat": Signature(("any", "any"), "string", variadic=True),
    "year": Signature(("date",), "integer"),
    "month": Signature(("date",), "integer"),
    "least": Signature(("T", "T"), "T", variadic=True),
    "greatest": Signature(("T", "T"), "T", variadic=True),
}

_ARITH = {"+", "-", "*", "/"}
_RE2_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\\[1-9]")
_ORDER = {"<", "<=", ">", ">="}
_TYPE_WORDS = {"boolean": "a condition (true or false)", "decimal": "a number",
               "integer": "a whole number", "string": "text", "date": "a date",
               "null": "null", "numeric": "a number"}


def describe(type_: str) -> str:
    return _TYPE_WORDS.get(type_, type_)


def unify(a: str, b: str) -> str | None:
    """The common type of two branches or operands, or None when they do not mix."""
    if a == b:
        return a
    if "null" in (a, b):
        return b if a == "null" else a
    if a in NUMERIC and b in NUMERIC:
        return "decimal"
    return None


class Checker:
    def __init__(self, scope: Scope):
        self.scope = scope
        self.problems: list[Diagnostic] = []

    def error(self, code: str, message: str, node, hint: str | None = None) -> str:
        self.problems.append(Diagnostic(code, message, node.ref, hint))
        return "error"

    def expect(self, node: ast.Node, wanted: str) -> str:
        got = self.type_of(node)
        if got in ("error", "null") or wanted == "any":
            return got
        ok = got in NUMERIC if wanted == "numeric" else unify(got, wanted) == wanted
        if not ok:
            self.error("E212", f"expected {describe(wanted)}, found {describe(got)}", node)
        return got

    def type_of(self, node: ast.Node) -> str:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    def _literal(self, node: ast.Literal) -> str:
        return node.type

    def _field(self, node: ast.Field) -> str:
        found = self.scope.lookup(node.parts)
        if found is None:
            hint = did_you_mean(node.name, self.scope.names()) or (
                f'text is quoted: write "{node.name}"' if len(node.parts) == 1 else None)
            return self.error("E210", f"unknown field {node.name}", node, hint)
        return found

    def _neg(self, node: ast.Neg) -> str:
        return self.expect(node.operand, "numeric")

    def _not(self, node: ast.Not) -> str:
        self.expect(node.operand, "boolean")
        return "boolean"

    def _binop(self, node: ast.BinOp) -> str:
        if node.op in ("and", "or"):
            self.expect(node.left, "boolean")
            self.expect(node.right, "boolean")
            return "boolean"
        left, right = self.type_of(node.left), self.type_of(node.right)
        if "error" in (left, right):
            return "boolean" if node.op not in _ARITH else "error"
        if node.op in _ARITH:
            return self._arith(node, left, right)
        return self._compare(node, left, right)

    def _arith(self, node: ast.BinOp, left: str, right: str) -> str:
        if node.op in "+-" and left == "date" and right == "integer":
            return "date"
        if left == "date" and right == "date" and node.op == "-":
            return self.error("E212", "dates cannot be subtracted", node,
                              "use days_between(earlier, later) for a number of days")
        if left in NUMERIC and right in NUMERIC:
            return "integer" if left == right == "integer" and node.op != "/" else "decimal"
        return self.error("E212", f"'{node.op}' needs numbers, found {describe(left)} "
                                  f"and {describe(right)}", node)

    def _compare(self, node: ast.BinOp, left: str, right: str) -> str:
        if "null" in (left, right):
            self.error("E212", f"comparing with null using '{node.op}' is never true", node,
                       "write `x is null` or `x is not null`")
        elif unify(left, right) is None:
            self.error("E212", f"cannot compare {describe(left)} with {describe(right)}", node)
        elif node.op in _ORDER and left == "boolean":
            self.error("E212", f"'{node.op}' does not order conditions", node)
        return "boolean"

    def _inlist(self, node: ast.InList) -> str:
        operand = self.type_of(node.operand)
        for item in node.items:
            item_type = self.type_of(item)
            if "error" not in (operand, item_type) and unify(operand, item_type) is None:
                self.error("E212", f"list item is {describe(item_type)}, but the value "
                                   f"tested is {describe(operand)}", item)
        return "boolean"

    def _inset(self, node: ast.InSet) -> str:
        operand = self.type_of(node.operand)
        values = self.scope.sets.get(node.name, ())
        kinds = {"integer" if isinstance(v, int) and not isinstance(v, bool) else "string"
                 for v in values}
        if operand not in ("error", "null") and kinds and all(
                unify(operand, k) is None for k in kinds):
            self.error("E212", f"set {node.name} holds {describe(kinds.pop())}, but the value "
                               f"tested is {describe(operand)}", node.operand)
        if node.name not in self.scope.sets:
            hint = did_you_mean(node.name, self.scope.sets) or (
                "named sets are defined under `sets:` in client.yaml")
            self.problems.append(Diagnostic("E211", f"unknown set {node.name}", node.name_ref,
                                            hint))
        return "boolean"

    def _between(self, node: ast.Between) -> str:
        types = [self.type_of(n) for n in (node.operand, node.low, node.high)]
        known = [t for t in types if t not in ("error", "null")]
        if known and any(unify(known[0], t) is None for t in known):
            self.error("E212", "between needs three values of one kind: "
                               + ", ".join(describe(t) for t in types), node)
        return "boolean"

    def _isnull(self, node: ast.IsNull) -> str:
        self.type_of(node.operand)
        return "boolean"

    def _if(self, node: ast.If) -> str:
        self.expect(node.cond, "boolean")
        then, else_ = self.type_of(node.then), self.type_of(node.else_)
        if "error" in (then, else_):
            return "error"
        common = unify(then, else_)
        if common is None:
            return self.error("E212", f"the branches differ: then gives {describe(then)}, "
                                      f"else gives {describe(else_)}", node.else_)
        return common

    def _call(self, node: ast.Call) -> str:
        sig = FUNCTIONS.get(node.name)
        if sig is None:
            hint = did_you_mean(node.name, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS)
            return self.error("E213", f"unknown function {node.name}", node, hint)
        low = len(sig.params) - sig.optional
        if len(node.args) < low or (not sig.variadic and len(node.args) > len(sig.params)):
            most = "or more" if sig.variadic else f"to {len(sig.params)}"
            count = f"{low}" if low == len(sig.params) and not sig.variadic else f"{low} {most}"
            return self.error("E214", f"{node.name} takes {count} arguments, "
                                      f"got {len(node.args)}", node)
        return self._call_types(node, sig)

    def _call_types(self, node: ast.Call, sig: Signature) -> str:
        params = list(sig.params) + [sig.params[-1]] * (len(node.args) - len(sig.params))
        common = "null"
        first = "error"
        for i, (arg, param) in enumerate(zip(node.args, params, strict=False)):
            got = self.expect(arg, "any" if param == "T" else param)
            first = got if i == 0 else first
            if param == "T" and got not in ("error",):
                merged = unify(common, got)
                if merged is None:
                    self.error("E212", f"{node.name} mixes {describe(common)} and "
                                       f"{describe(got)}", arg)
                else:
                    common = merged
        self._check_literal_args(node)
        if sig.returns == "T":
            return common
        return first if sig.returns == "same" else sig.returns

    def _check_literal_args(self, node: ast.Call) -> None:
        if node.name in ("matches", "extract") and len(node.args) > 1:
            pattern = node.args[1]
            if isinstance(pattern, ast.Literal) and isinstance(pattern.value, str):
                try:
                    re.compile(pattern.value)
                except re.error as exc:
                    self.error("E215", f"invalid regular expression: {exc}", pattern)
                else:
                    if _RE2_UNSUPPORTED.search(pattern.value):
                        self.error("E215", "the SQL engine's regular expressions (RE2) have no "
                                           "look-around and no back-references", pattern,
                                   "match the part you want instead of excluding the rest")
        if node.name == "round" and len(node.args) == 2:
            if not isinstance(node.args[1], ast.Literal):
                self.error("E212", "round's places must be a whole number literal",
                           node.args[1])


def check(node: ast.Node, scope: Scope, wanted: str | None = None) -> tuple[str, list[Diagnostic]]:
    """The type of `node` in `scope`, and every problem found.

    >>> # check(parse('customer.country in EU'), scope) -> ("boolean", [])
    """
    checker = Checker(scope)
    got = checker.expect(node, wanted) if wanted else checker.type_of(node)
    return got, checker.problems
