"""Text to syntax tree: lark parses, a transformer only builds nodes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from engine.dsl import ast
from engine.errors import Diagnostic, RuleError, SourceRef

# Maps a 1-based (line, col, length) inside the expression text to the rule file.
Origin = Callable[[int, int, int], SourceRef]

_TOKEN_NAMES = {
    "COMPARE": "a comparison (== != < <= > >=)", "ADD_OP": "'+' or '-'", "MUL_OP": "'*' or '/'",
    "DECIMAL": "a number", "PERCENT": "a percentage", "DATE": "a date", "STRING": "a string",
    "NAME": "a name", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "DOT": "'.'", "MINUS": "'-'", "$END": "the end of the expression",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse(text: str, origin: Origin) -> ast.Node:
    """Parse one expression; raise RuleError pointing at the offending character."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise RuleError([_syntax_error(exc, text, origin)]) from None
    except RecursionError:
        raise too_deep(origin, len(text)) from None
    try:
        return _Builder(origin).transform(tree)
    except RecursionError:
        raise too_deep(origin, len(text)) from None
    except VisitError as exc:  # a builder found a bad literal (an impossible date)
        if isinstance(exc.orig_exc, RuleError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, RecursionError):
            raise too_deep(origin, len(text)) from None
        raise


def too_deep(origin: Origin, length: int) -> RuleError:
    return RuleError([Diagnostic(
        "E202", "the expression nests too deep to check", origin(1, 1, max(1, length)),
        "split it: a named set (x in NAME) or several rules instead of hundreds of terms")])


def _syntax_error(exc: UnexpectedInput, text: str, origin: Origin) -> Diagnostic:
    line, col = max(exc.line, 1), max(exc.column, 1)
    lines = text.split("\n")  # lark counts lines at \n only
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken)
                                          and exc.token.type == "$END"):
        line, col = len(lines), len(lines[-1]) + 1
        found = "the end of the expression"
    elif isinstance(exc, UnexpectedCharacters):
        here = lines[line - 1] if line <= len(lines) else ""
        found = repr(here[col - 1]) if col <= len(here) else "a character"
    else:
        found = repr(str(exc.token))
    expected = sorted(_TOKEN_NAMES.get(t, repr(t.lower())) for t in (getattr(exc, "expected", None)
                                                                    or getattr(exc, "allowed", None)
                                                                    or ())
                      if not t.startswith("__"))
    hint = f"expected {', '.join(expected[:8])}" if expected else None
    if found == "'='":
        hint = "compare with == (a single = is not an operator)"
    return Diagnostic("E200", f"syntax error: unexpected {found}", origin(line, col, 1), hint)


def _unquote(token: str) -> str:
    body = token[1:-1]
    return body.replace("\\" + token[0], token[0]).replace("\\\\", "\\")


@v_args(meta=True)
class _Builder(Transformer):
    """One short method per alias of the grammar; no checks here."""

    def __init__(self, origin: Origin):
        super().__init__()
        self.origin = origin

    def _ref(self, meta) -> SourceRef:
        length = meta.end_pos - meta.start_pos if meta.line == meta.end_line else 1
        return self.origin(meta.line, meta.column, max(1, length))

    def _tref(self, tok: Token) -> SourceRef:
        return self.origin(tok.line, tok.column, len(tok))

    def number(self, meta, children):
        (tok,) = children
        is_int = "." not in tok
        value = int(tok) if is_int else Decimal(str(tok))
        return ast.Literal(self._ref(meta), value, "integer" if is_int else "decimal", str(tok))

    def percent(self, meta, children):
        (tok,) = children
        return ast.Literal(self._ref(meta), Decimal(tok[:-1]) / 100, "decimal", str(tok))

    def date(self, meta, children):
        (tok,) = children
        try:
            value = dt.date.fromisoformat(str(tok))
        except ValueError:
            raise RuleError([Diagnostic("E201", f"{tok} is not a valid date", self._tref(tok),
                                        "dates are written YYYY-MM-DD")]) from None
        return ast.Literal(self._ref(meta), value, "date", str(tok))

    def string(self, meta, children):
        (tok,) = children
        return ast.Literal(self._ref(meta), _unquote(str(tok)), "string", str(tok))

    def true(self, meta, children):
        return ast.Literal(self._ref(meta), True, "boolean", "true")

    def false(self, meta, children):
        return ast.Literal(self._ref(meta), False, "boolean", "false")

    def null(self, meta, children):
        return ast.Literal(self._ref(meta), None, "null", "null")

    def field(self, meta, children):
        return ast.Field(self._ref(meta), tuple(str(c) for c in children))

    def call(self, meta, children):
        name, *args = children
        return ast.Call(self._ref(meta), str(name), tuple(a for a in args if a is not None))

    def infix_call(self, meta, children):
        left, name, right = children
        return ast.Call(self._ref(meta), str(name), (left, right))

    def neg(self, meta, children):
        return ast.Neg(self._ref(meta), children[0])

    def not_(self, meta, children):
        return ast.Not(self._ref(meta), children[0])

    def arith(self, meta, children):
        left, op, right = children
        return ast.BinOp(self._ref(meta), str(op), left, right)

    def compare(self, meta, children):
        left, op, right = children
        return ast.BinOp(self._ref(meta), str(op), left, right)

    def and_(self, meta, children):
        return ast.BinOp(self._ref(meta), "and", *children)

    def or_(self, meta, children):
        return ast.BinOp(self._ref(meta), "or", *children)

    def list(self, meta, children):
        return tuple(c for c in children if c is not None)

    def in_list(self, meta, children):
        return ast.InList(self._ref(meta), children[0], children[1], negated=False)

    def not_in_list(self, meta, children):
        return ast.InList(self._ref(meta), children[0], children[1], negated=True)

    def in_set(self, meta, children):
        operand, name = children
        return ast.InSet(self._ref(meta), operand, str(name), self._tref(name), negated=False)

    def not_in_set(self, meta, children):
        operand, name = children
        return ast.InSet(self._ref(meta), operand, str(name), self._tref(name), negated=True)

    def between(self, meta, children):
        return ast.Between(self._ref(meta), *children)

    def is_null(self, meta, children):
        return ast.IsNull(self._ref(meta), children[0], negated=False)

    def is_not_null(self, meta, children):
        return ast.IsNull(self._ref(meta), children[0], negated=True)

    def if_(self, meta, children):
        return ast.If(self._ref(meta), *children)
