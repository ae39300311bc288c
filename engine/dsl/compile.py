"""Typed DSL trees to sqlglot expressions, built as trees, rendered only at the edge.

Portable choices (see the README's design notes): day differences are
`exp.DateDiff`, decimal division is exact (scaled integer division, never the
DOUBLE that DuckDB gives for DECIMAL / DECIMAL), `as_of` is a placeholder bound
when the run starts, and client constants are inlined as literals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlglot import exp

from engine.dsl import ast
from engine.dsl.scope import Scope

DIV_SCALE = 10  # places kept by DSL division (truncated)

_BINOPS: dict[str, type[exp.Expression]] = {
    "+": exp.Add, "-": exp.Sub, "*": exp.Mul,
    "==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE,
    "and": exp.And, "or": exp.Or,
}


@dataclass(frozen=True)
class Target:
    """How names render: the row's table alias and the rounding mode of `round`."""

    scope: Scope
    rounding: str = "half_up"


def literal(value: ast.Value) -> exp.Expression:
    """A Python value as a typed SQL literal."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | Decimal):
        text = str(value) if isinstance(value, int) else format(value, "f")
        return exp.Literal.number(text) if value >= 0 else exp.Neg(
            this=exp.Literal.number(text.lstrip("-")))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    return exp.Literal.string(str(value))


def round_money(value: exp.Expression, places: int | exp.Expression, mode: str) -> exp.Expression:
    """Round in the client's mode: half_up (away from zero) or half_even (banker's)."""
    places_exp = places if isinstance(places, exp.Expression) else exp.Literal.number(places)
    if mode == "half_even":
        return exp.Anonymous(this="ROUND_EVEN", expressions=[value, places_exp])
    return exp.Round(this=value, decimals=places_exp)


def exact_div(left: exp.Expression, right: exp.Expression, scale: int = DIV_SCALE) -> exp.Expression:
    """left / right as a DECIMAL with `scale` places, truncated, computed on integers."""
    factor = exp.Literal.number(10**scale)

    def scaled(e: exp.Expression) -> exp.Expression:
        return exp.cast(exp.Mul(this=exp.cast(e, f"DECIMAL(38,{scale})"), expression=factor),
                        "HUGEINT")

    quotient = exp.IntDiv(this=exp.Mul(this=scaled(left), expression=factor),
                          expression=scaled(right))
    unit = exp.Literal.number("0." + "0" * (scale - 1) + "1")
    return exp.cast(exp.Mul(this=exp.cast(quotient, "DECIMAL(38,0)"), expression=unit),
                    f"DECIMAL(38,{scale})")


class Compiler:
    def __init__(self, target: Target):
        self.target = target
        self.scope = target.scope

    def __call__(self, node: ast.Node) -> exp.Expression:
        return getattr(self, "_" + type(node).__name__.lower())(node)

    def _literal(self, node: ast.Literal) -> exp.Expression:
        return literal(node.value)

    def _field(self, node: ast.Field) -> exp.Expression:
        parts = node.parts
        if parts == ("as_of",):
            return exp.Placeholder(this="as_of")
        const = self.scope.constants.get(node.name)
        if const is not None:
            return literal(const.value)
        if len(parts) == 1:
            return exp.column(parts[0], table=self.scope.row_alias)
        return exp.column(parts[1], table=parts[0])

    def _neg(self, node: ast.Neg) -> exp.Expression:
        return exp.Neg(this=exp.Paren(this=self(node.operand)))

    def _not(self, node: ast.Not) -> exp.Expression:
        return exp.Not(this=exp.Paren(this=self(node.operand)))

    def _binop(self, node: ast.BinOp) -> exp.Expression:
        left, right = self(node.left), self(node.right)
        if node.op == "/":
            return exact_div(left, right)
        if node.op in "+-" and _is_date_plus_days(node, self.scope):
            days = right if node.op == "+" else exp.Neg(this=exp.Paren(this=right))
            return exp.DateAdd(this=left, expression=days, unit=exp.var("DAY"))
        wrap = node.op in ("and", "or", "+", "-", "*")
        if wrap:
            left, right = exp.Paren(this=left), exp.Paren(this=right)
        return _BINOPS[node.op](this=left, expression=right)

    def _inlist(self, node: ast.InList) -> exp.Expression:
        test = exp.In(this=self(node.operand), expressions=[self(i) for i in node.items])
        return exp.Not(this=test) if node.negated else test

    def _inset(self, node: ast.InSet) -> exp.Expression:
        values = self.scope.sets.get(node.name, ())
        test = exp.In(this=self(node.operand), expressions=[literal(v) for v in values])
        return exp.Not(this=test) if node.negated else test

    def _between(self, node: ast.Between) -> exp.Expression:
        return exp.Between(this=self(node.operand), low=self(node.low), high=self(node.high))

    def _isnull(self, node: ast.IsNull) -> exp.Expression:
        test = exp.Is(this=self(node.operand), expression=exp.null())
        return exp.Not(this=test) if node.negated else test

    def _if(self, node: ast.If) -> exp.Expression:
        return exp.Case(ifs=[exp.If(this=self(node.cond), true=self(node.then))],
                        default=self(node.else_))

    def _call(self, node: ast.Call) -> exp.Expression:
        args = [self(a) for a in node.args]
        return _FUNCTIONS[node.name](self, args)


def _is_date_plus_days(node: ast.BinOp, scope: Scope) -> bool:
    from engine.dsl.check import Checker

    return Checker(scope).type_of(node.left) == "date"


def _round(c: Compiler, args: list[exp.Expression]) -> exp.Expression:
    places = args[1] if len(args) > 1 else exp.Literal.number(0)
    return round_money(args[0], places, c.target.rounding)


def _extract(c: Compiler, args: list[exp.Expression]) -> exp.Expression:
    group = args[2] if len(args) > 2 else exp.Literal.number(0)
    found = exp.RegexpExtract(this=args[0], expression=args[1], group=group)
    return exp.Nullif(this=found, expression=exp.Literal.string(""))


_FUNCTIONS: dict[str, Callable[[Compiler, list[exp.Expression]], exp.Expression]] = {
    "days_between": lambda c, a: exp.DateDiff(this=a[1], expression=a[0], unit=exp.var("DAY")),
    "round": _round,
    "abs": lambda c, a: exp.Abs(this=a[0]),
    "coalesce": lambda c, a: exp.Coalesce(this=a[0], expressions=a[1:]),
    "lower": lambda c, a: exp.Lower(this=a[0]),
    "upper": lambda c, a: exp.Upper(this=a[0]),
    "contains": lambda c, a: exp.GT(this=exp.StrPosition(this=a[0], substr=a[1]),
                                    expression=exp.Literal.number(0)),
    "matches": lambda c, a: exp.RegexpLike(this=a[0], expression=a[1]),
    "extract": _extract,
    "concat": lambda c, a: exp.Concat(expressions=a, safe=True, coalesce=True),
    "year": lambda c, a: exp.Year(this=a[0]),
    "month": lambda c, a: exp.Month(this=a[0]),
    "least": lambda c, a: exp.Least(this=a[0], expressions=a[1:]),
    "greatest": lambda c, a: exp.Greatest(this=a[0], expressions=a[1:]),
}


def compile_expr(node: ast.Node, target: Target) -> exp.Expression:
    """A checked DSL tree as a sqlglot expression (render with `.sql(dialect)`)."""
    return Compiler(target)(node)


def bind_as_of(expression: exp.Expression, as_of: dt.date) -> exp.Expression:
    """Replace the `as_of` placeholder by the run's date."""
    def swap(e: exp.Expression) -> exp.Expression:
        if isinstance(e, exp.Placeholder) and e.name == "as_of":
            return literal(as_of)
        return e

    return expression.transform(swap)
