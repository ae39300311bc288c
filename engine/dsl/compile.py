"""Typed DSL trees to sqlglot expressions, built as trees, rendered only at the edge.

Portable choices (see the README's design notes): day differences are
`exp.DateDiff`, decimal division is exact (scaled integer division, never the
binary floating point that DuckDB gives for DECIMAL / DECIMAL), `as_of` is a placeholder bound
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
        if isinstance(value, Decimal) and "." not in text:
            text += ".0"  # 100% is the decimal 1.0, not the integer 1
        return exp.Literal.number(text) if value >= 0 else exp.Neg(
            this=exp.Literal.number(text.lstrip("-")))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    return exp.Literal.string(str(value))


MAX_SCALE = 38
_DIV = "RULEDGER_EXACT_DIV"
_ROUND_EVEN = "RULEDGER_ROUND_EVEN"
_TRUNC = "RULEDGER_TRUNC"


def round_money(value: exp.Expression, places: int | exp.Expression, mode: str) -> exp.Expression:
    """Round in the client's mode: half_up (away from zero) or half_even (banker's).

    half_even is a marker that `to_sql` renders per dialect (ROUND_EVEN, BROUND, ...).
    """
    places_exp = places if isinstance(places, exp.Expression) else exp.Literal.number(places)
    if mode == "half_even":
        return exp.Anonymous(this=_ROUND_EVEN, expressions=[value, places_exp])
    return exp.Round(this=value, decimals=places_exp)


def unit_literal(places: int) -> exp.Expression:
    """One unit of the last of `places` decimal places: 1, 0.1, 0.01, ..."""
    return exp.Literal.number("1" if places == 0 else "0." + "0" * (places - 1) + "1")


def trunc_places(value: exp.Expression, places: int) -> exp.Expression:
    """`value` cut toward zero to `places` decimal places.

    A marker that `to_sql` renders per dialect: TRUNC(x, places) on DuckDB, elsewhere
    x - x % 10^-places (which keeps the sign of x). On DuckDB's 38-digit decimals the
    remainder is four times the time of TRUNC.
    """
    return exp.Anonymous(this=_TRUNC, expressions=[value, exp.Literal.number(places)])


def exact_div(left: exp.Expression, right: exp.Expression, operand_scale: int,
              scale: int = DIV_SCALE) -> exp.Expression:
    """left / right as a DECIMAL with `scale` places, truncated; x / 0 is null.

    A marker that `to_sql` renders per dialect: on DuckDB (whose DECIMAL / DECIMAL
    is binary floating point) as integer division of the operands scaled to whole numbers.
    """
    return exp.Anonymous(this=_DIV, expressions=[
        left, right, exp.Literal.number(operand_scale), exp.Literal.number(scale)])


def _duckdb_div(left: exp.Expression, right: exp.Expression, operand_scale: int,
                scale: int) -> exp.Expression:
    factor = exp.Literal.number(10**operand_scale)

    def whole(e: exp.Expression) -> exp.Expression:
        decimal = exp.cast(e, f"DECIMAL(38,{operand_scale})")
        scaled = exp.Mul(this=decimal, expression=factor) if operand_scale else decimal
        return exp.cast(scaled, "HUGEINT")

    numerator = exp.Mul(this=whole(left), expression=exp.Literal.number(10**scale))
    denominator = exp.Nullif(this=whole(right), expression=exp.Literal.number(0))
    quotient = exp.IntDiv(this=numerator, expression=denominator)
    unit = unit_literal(scale)
    return exp.cast(exp.Mul(this=exp.cast(quotient, "DECIMAL(38,0)"), expression=unit),
                    f"DECIMAL(38,{scale})")


def _portable_div(left: exp.Expression, right: exp.Expression, operand_scale: int,
                  scale: int) -> exp.Expression:
    # DECIMAL(28, s) operands leave Spark's decimal division 10 places (its p/s rules).
    typ = f"DECIMAL(28,{min(operand_scale, 27)})"
    denominator = exp.Nullif(this=exp.cast(right, typ), expression=exp.Literal.number(0))
    quotient = exp.Div(this=exp.cast(left, typ), expression=denominator)
    return exp.cast(quotient, f"DECIMAL(38,{scale})")


def _render_markers(dialect: str):
    def swap(e: exp.Expression) -> exp.Expression:
        if not isinstance(e, exp.Anonymous):
            return e
        if e.name == _DIV:
            left, right, operand_scale, scale = e.expressions
            build = _duckdb_div if dialect == "duckdb" else _portable_div
            return build(left, right, int(operand_scale.name), int(scale.name))
        if e.name == _TRUNC:
            value, places = e.expressions
            if dialect == "duckdb":
                return exp.Anonymous(this="TRUNC", expressions=[value, places])
            return exp.Sub(this=value, expression=exp.Mod(
                this=value.copy(), expression=unit_literal(int(places.name))))
        if e.name == _ROUND_EVEN:
            name = {"spark": "BROUND", "spark2": "BROUND", "databricks": "BROUND",
                    "hive": "BROUND"}.get(dialect, "ROUND_EVEN")
            if dialect == "snowflake":
                return exp.Anonymous(this="ROUND", expressions=[
                    *e.expressions, exp.Literal.string("HALF_TO_EVEN")])
            return exp.Anonymous(this=name, expressions=e.expressions)
        return e
    return swap


def to_sql(expression: exp.Expression, dialect: str = "duckdb", pretty: bool = False) -> str:
    """The one edge where trees become SQL text, with our markers rendered for `dialect`."""
    rendered = expression
    while any(n.name in (_DIV, _ROUND_EVEN, _TRUNC)
              for n in rendered.find_all(exp.Anonymous)):
        rendered = rendered.transform(_render_markers(dialect))  # outer markers first (a copy)
    # The generator may change the tree it renders: it gets a copy, made once.
    return rendered.sql(dialect=dialect, pretty=pretty, copy=rendered is expression)


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
            return exact_div(left, right, max(self.scale(node.left), self.scale(node.right)))
        if node.op in "+-" and self.type(node.left) == "date":
            days = right if node.op == "+" else exp.Neg(this=exp.Paren(this=right))
            added = exp.DateAdd(this=left, expression=days, unit=exp.var("DAY"))
            return exp.cast(added, exp.DataType.Type.DATE)
        if node.op in ("+", "-", "*"):
            left, right = self._arith_operands(node, left, right)
        if node.op in ("and", "or", "+", "-", "*"):
            left, right = exp.Paren(this=left), exp.Paren(this=right)
        return _BINOPS[node.op](this=left, expression=right)

    def _arith_operands(self, node: ast.BinOp, left: exp.Expression,
                        right: exp.Expression) -> tuple[exp.Expression, exp.Expression]:
        """Operands typed wide enough: 64-bit integers, or DECIMAL(38, their places)."""
        types = (self.type(node.left), self.type(node.right))
        if types == ("integer", "integer"):
            return exp.cast(left, "BIGINT"), exp.cast(right, "BIGINT")
        if node.op != "*":
            return left, right
        sl, sr = self.scale(node.left), self.scale(node.right)
        while sl + sr > MAX_SCALE:  # keep the product representable; trims the longer side
            sl, sr = (sl - 1, sr) if sl >= sr else (sl, sr - 1)
        return exp.cast(left, f"DECIMAL(38,{sl})"), exp.cast(right, f"DECIMAL(38,{sr})")

    def type(self, node: ast.Node) -> str:
        from engine.dsl.check import Checker

        return Checker(self.scope).type_of(node)

    def scale(self, node: ast.Node) -> int:
        """Decimal places of a numeric expression's exact value."""
        match node:
            case ast.Literal(value=Decimal() as v):
                return max(0, -v.as_tuple().exponent)
            case ast.Literal():
                return 0
            case ast.Field(parts=parts):
                const = self.scope.constants.get(node.name)
                if const is not None or self.type(node) != "decimal":
                    return 0
                return self.scope.scale(parts)
            case ast.BinOp(op="*", left=left, right=right):
                return min(MAX_SCALE, self.scale(left) + self.scale(right))
            case ast.BinOp(op="/"):
                return DIV_SCALE
            case ast.Call(name="round", args=args):
                return int(args[1].value) if len(args) > 1 else 0
            case ast.Call(name="days_between" | "year" | "month"):
                return 0
        return max((self.scale(c) for c in ast.children(node)), default=0)

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


def _round(c: Compiler, args: list[exp.Expression]) -> exp.Expression:
    places = args[1] if len(args) > 1 else exp.Literal.number(0)
    rounded = round_money(args[0], places, c.target.rounding)
    return exp.cast(rounded, f"DECIMAL(38,{int(places.name)})")


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
    """Replace the `as_of` placeholder by the run's date (a copy; `expression` itself when
    it has none, as most statements do)."""
    if not any(p.name == "as_of" for p in expression.find_all(exp.Placeholder)):
        return expression

    def swap(e: exp.Expression) -> exp.Expression:
        if isinstance(e, exp.Placeholder) and e.name == "as_of":
            return literal(as_of)
        return e

    return expression.transform(swap)
