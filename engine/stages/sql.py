"""Helpers for stage SQL: templates parsed once into trees, and money arithmetic.

A stage's statements are written as SQL text (DuckDB dialect) with `:name`
placeholders. `template` parses the text with sqlglot and puts a tree in each
placeholder (a compiled rule, a literal), so stage SQL is readable and still
built as trees, never by formatting strings.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import sqlglot
from iso4217 import Currency
from sqlglot import exp

from engine.dsl.compile import literal, round_money, trunc_places, unit_literal

MINOR_UNITS = (0, 2, 3, 4)  # every ISO 4217 exponent
MAX_AMOUNT = 10**14  # DECIMAL(18,4), the books' amounts, holds 14 digits before the point


@dataclass(frozen=True)
class Statement:
    """One planned statement: a name for logs and `ruledger compile`, and its tree."""

    name: str
    tree: exp.Expression


@lru_cache(maxsize=256)
def _parsed(text: str) -> exp.Expression:
    return sqlglot.parse_one(text, read="duckdb")


def template(text: str, **subs: exp.Expression | str | int | dt.date | None) -> exp.Expression:
    """`text` parsed, each `:name` replaced by `subs[name]` (a tree, or a value as a literal)."""
    trees = {k: v if isinstance(v, exp.Expression) else literal(v) for k, v in subs.items()}
    missing = {p.name for p in _parsed(text).find_all(exp.Placeholder)} - trees.keys() - {
        "as_of"}  # bound when the run starts
    if missing:
        raise KeyError(f"template placeholders without a value: {sorted(missing)}")

    def put(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name in trees:
            return trees[node.name].copy()
        return node

    return _parsed(text).transform(put)  # a copy: the parsed tree is cached


def _by_minor(minor: exp.Expression, build) -> exp.Expression:
    # Each branch is cast on its own: DuckDB types a CASE over DECIMAL(38,0) and
    # DECIMAL(38,2) as DECIMAL(38,0), which would drop the cents.
    return exp.Case(this=minor, ifs=[
        exp.If(this=exp.Literal.number(m), true=exp.cast(build(m), "DECIMAL(18,4)"))
        for m in MINOR_UNITS])


def round_minor(value: exp.Expression, minor: exp.Expression, mode: str) -> exp.Expression:
    """`value` rounded to the currency's minor unit (`minor` places) in the client's mode."""
    return _by_minor(minor, lambda m: round_money(value.copy(), m, mode))


def trunc_minor(value: exp.Expression, minor: exp.Expression) -> exp.Expression:
    """`value` cut toward zero to the minor unit."""
    return _by_minor(minor, lambda m: trunc_places(value.copy(), m))


def unit_of(minor: exp.Expression) -> exp.Expression:
    """One minor unit of the currency: 1, 0.01, 0.001 or 0.0001."""
    return _by_minor(minor, unit_literal)


def currency_rows() -> list[tuple[str, int]]:
    """(code, minor unit) of every ISO 4217 currency with a minor unit."""
    return sorted((c.code, c.exponent) for c in Currency if c.exponent is not None)


def currencies_table() -> pa.Table:
    """(code, minor) of every ISO 4217 currency, registered as `currencies` for the stages."""
    codes = currency_rows()
    return pa.table({"code": [c for c, _m in codes], "minor": [m for _c, m in codes]})


_SEQ = re.compile(r"\{seq(?::0(\d+))?\}")


def number_parts(fmt: str, year: int | None) -> tuple[str, int, str]:
    """("NW-2026-", 6, "") for "NW-{year}-{seq:06}": the text before and after the
    sequence, and its zero-padded width (year None keeps `{year}`, for display)."""
    text = fmt if year is None else fmt.replace("{year}", str(year))
    match = _SEQ.search(text)
    if match is None:
        raise ValueError(f"number format {fmt!r} has no {{seq}}")
    return text[:match.start()], int(match.group(1) or 0), text[match.end():]


def number_expr(fmt: str, year: int | None, seq: exp.Expression) -> exp.Expression:
    """The document number of sequence `seq`, as SQL: prefix || lpad(seq) || suffix."""
    before, width, after = number_parts(fmt, year)
    text = exp.cast(seq, "VARCHAR")
    if width:  # LPAD cuts a longer text: a number past the padding keeps all its digits
        padded = exp.Pad(this=text.copy(), expression=exp.Literal.number(width),
                         fill_pattern=exp.Literal.string("0"), is_left=True)
        longer = exp.GTE(this=exp.Length(this=text.copy()),
                         expression=exp.Literal.number(width))
        text = exp.Case(ifs=[exp.If(this=longer, true=text)], default=padded)
    return exp.DPipe(this=exp.DPipe(this=exp.Literal.string(before), expression=text),
                     expression=exp.Literal.string(after))


def glob_like(glob: str) -> str:
    """A product-code glob ('BK-*', 'A?C') as a LIKE pattern, with % and _ escaped."""
    out = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return out.replace("*", "%").replace("?", "_")
