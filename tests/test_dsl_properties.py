"""Property tests of the DSL: exact arithmetic and division, a parser raising only RuleError."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, localcontext
from fractions import Fraction

import duckdb
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from engine.dsl.check import check
from engine.dsl.compile import Target, bind_as_of, compile_expr, to_sql
from engine.dsl.parser import parse
from engine.dsl.scope import scope_for
from engine.errors import RuleError, SourceRef

SCOPE = scope_for("transactions", {}, {"EU": ("DE", "FR")})
# database=None: no .hypothesis folder is written; the examples stay modest.
PROPERTY = settings(max_examples=100, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def origin(line: int, col: int, length: int) -> SourceRef:
    return SourceRef("<property>", line, col, length)


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def evaluate(con, text: str):
    node = parse(text, origin)
    _, problems = check(node, SCOPE)
    assert problems == [], [p.render() for p in problems]
    sql = to_sql(bind_as_of(compile_expr(node, Target(SCOPE)), dt.date(2026, 3, 2)), "duckdb")
    return con.sql(f"SELECT {sql}").fetchall()[0][0]


def dsl_number(value: Decimal | int) -> str:
    """A number as DSL text: the grammar has no negative literals, so `-` is unary minus."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


# --- (a) arithmetic over decimal literals equals Python's Decimal -------------------------
#
# Bounds: leaves below 10 in magnitude with at most 2 places (or whole numbers 0..9), at most
# 6 leaves. The largest product then needs 6 integer digits and 12 places, 18 digits in all,
# and wider products are covered by test_wide_products_do_not_overflow below.

LEAF = st.one_of(
    st.decimals(min_value=Decimal("-9.99"), max_value=Decimal("9.99"), places=2,
                allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal("-9.9"), max_value=Decimal("9.9"), places=1,
                allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=9),
)


def trees(max_leaves: int = 6):
    return st.recursive(
        LEAF,
        lambda inner: st.tuples(st.sampled_from(["+", "-", "*"]), inner, inner),
        max_leaves=max_leaves,
    )


_PRECEDENCE = {"+": 1, "-": 1, "*": 2}


def render(tree) -> str:
    """DSL text with only the parentheses precedence needs (so precedence is tested too)."""
    if not isinstance(tree, tuple):
        return dsl_number(tree)
    op, left, right = tree
    p = _PRECEDENCE[op]
    lt, rt = render(left), render(right)
    if isinstance(left, tuple) and _PRECEDENCE[left[0]] < p:
        lt = f"({lt})"
    if isinstance(right, tuple) and _PRECEDENCE[right[0]] <= p:
        rt = f"({rt})"  # same precedence on the right: a - (b - c)
    return f"{lt} {op} {rt}"


def python_value(tree) -> Decimal:
    if not isinstance(tree, tuple):
        return Decimal(tree)
    op, left, right = tree
    a, b = python_value(left), python_value(right)
    return a + b if op == "+" else a - b if op == "-" else a * b


def leaves(tree) -> int:
    return leaves(tree[1]) + leaves(tree[2]) if isinstance(tree, tuple) else 1


@PROPERTY
@given(trees())
@example(("+", Decimal("0.1"), Decimal("0.2")))
@example(("-", Decimal("1"), ("-", Decimal("2"), Decimal("3"))))
@example(("*", ("+", 1, 2), Decimal("-0.5")))
@example(("*", ("*", Decimal("9.99"), Decimal("9.99")), ("*", ("*", Decimal("9.99"),
                                                               Decimal("9.99")),
                                                          ("*", Decimal("9.99"),
                                                           Decimal("9.99")))))
def test_arithmetic_equals_python_decimal(con, tree):
    text = render(tree)
    with localcontext() as ctx:
        ctx.prec = 100
        expected = python_value(tree)
    got = evaluate(con, text)
    assert not isinstance(got, float), (text, got)
    assert got == expected, (text, got, expected)


def test_render_round_trips_precedence():
    assert render(("-", 1, ("-", 2, 3))) == "1 - (2 - 3)"
    assert render(("*", ("+", 1, 2), 3)) == "(1 + 2) * 3"
    assert render(("+", 1, ("*", 2, 3))) == "1 + 2 * 3"
    assert render(("-", ("-", 1, 2), 3)) == "1 - 2 - 3"
    assert render(("*", Decimal("-1.5"), 2)) == "-1.5 * 2"


def test_wide_products_do_not_overflow(con):
    assert evaluate(con, "123456789.123 * 123456789.123") == Decimal(
        "15241578780560891.109129")


# --- (b) the parser raises nothing but RuleError -------------------------------------------

# str.splitlines() breaks at these, lark counts lines at "\n" only; the parser must still say where.
_LINE_BREAKS_LARK_IGNORES = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\d.])")
_TOKENS = [
    "1", "2.5", "19%", "2026-01-01", "'a'", '"b"', "'it\\'s'", "quantity", "customer", ".",
    "country", "client", "as_of", "EU", "(", ")", "[", "]", ",", "+", "-", "*", "/", "==",
    "!=", "<", "<=", ">", ">=", "and", "or", "not", "in", "is", "null", "true", "false", "if",
    "then", "else", "between", "contains", "matches", "round", "concat", "#c\n", "\n", "'",
    '"', "\\", "$", "%", "é",
]
DSL_SOUP = st.lists(st.sampled_from(_TOKENS), max_size=14).flatmap(
    lambda toks: st.sampled_from([" ".join(toks), "".join(toks)]))


def _only_valid_dates(text: str) -> bool:
    for m in _DATE.finditer(text):
        try:
            dt.date.fromisoformat(m.group(0))
        except ValueError:
            return False
    return True


def parse_only_raises_rule_error(text: str) -> None:
    try:
        parse(text, origin)
    except RuleError as exc:
        assert exc.diagnostics and all(d.ref is not None for d in exc.diagnostics)
        for d in exc.diagnostics:
            assert d.ref.line >= 1 and d.ref.col >= 1


@PROPERTY
@given(st.one_of(st.text(alphabet=st.characters(blacklist_characters=_LINE_BREAKS_LARK_IGNORES)),
                 DSL_SOUP.filter(lambda t: not set(t) & set(_LINE_BREAKS_LARK_IGNORES))))
def test_parser_raises_only_rule_error(text):
    assume(_only_valid_dates(text))
    parse_only_raises_rule_error(text)


@PROPERTY
@given(st.text())
@example("\x0c$")
@example("2026-13-01")
def test_parser_raises_only_rule_error_on_any_text(text):
    parse_only_raises_rule_error(text)


@pytest.mark.parametrize("text", ["\x0c$", "a\r$", "\x0b", "x == 1\x85", "1 +\u2028$"])
def test_exotic_line_breaks_give_a_syntax_error(text):
    with pytest.raises(RuleError) as info:
        parse(text, origin)
    assert info.value.diagnostics[0].code == "E200"


@pytest.mark.parametrize("text", ["2026-13-01", "txn_date > 2026-02-30", "2025-02-29"])
def test_invalid_date_literal_raises_e201(text):
    with pytest.raises(RuleError) as info:
        parse(text, origin)
    assert info.value.diagnostics[0].code == "E201"


# --- (c) division: Decimal(a) / Decimal(b) truncated toward zero to 10 places ---------------

DIVISION_OPERAND = st.decimals(min_value=Decimal("-99999999.9999999999"),
                               max_value=Decimal("99999999.9999999999"),
                               places=10, allow_nan=False, allow_infinity=False)
FEW_PLACES = st.builds(lambda n, places: Decimal(n).scaleb(-places),
                       st.integers(min_value=-10**9, max_value=10**9),
                       st.integers(min_value=0, max_value=6))


def truncated(a: Decimal, b: Decimal) -> Decimal:
    exact = Fraction(a) / Fraction(b) * 10**10
    return Decimal(int(exact)).scaleb(-10)  # int() truncates toward zero


@PROPERTY
@given(st.one_of(DIVISION_OPERAND, FEW_PLACES), st.one_of(DIVISION_OPERAND, FEW_PLACES))
@example(Decimal("1"), Decimal("3"))
@example(Decimal("-2"), Decimal("3"))
@example(Decimal("2"), Decimal("-3"))
@example(Decimal("-1"), Decimal("-3"))
@example(Decimal("99999999.9999999999"), Decimal("0.0000000001"))
@example(Decimal("0.0000000001"), Decimal("99999999.9999999999"))
def test_division_is_truncated_to_ten_places(con, a, b):
    assume(b != 0)
    text = f"{dsl_number(a)} / {dsl_number(b)}"
    got = evaluate(con, text)
    assert isinstance(got, Decimal), (text, got)
    assert got == truncated(a, b), (text, got, truncated(a, b))
    assert got.as_tuple().exponent == -10


def test_truncated_helper():
    assert truncated(Decimal("1"), Decimal("3")) == Decimal("0.3333333333")
    assert truncated(Decimal("-2"), Decimal("3")) == Decimal("-0.6666666666")
    assert truncated(Decimal("10"), Decimal("4")) == Decimal("2.5")


@PROPERTY
@given(st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=12,
                   allow_nan=False, allow_infinity=False),
       st.decimals(min_value=Decimal("0.000000000001"), max_value=Decimal("1000"), places=12,
                   allow_nan=False, allow_infinity=False))
@example(Decimal("1.234568234567"), Decimal("1"))
@example(Decimal("1"), Decimal("0.00000000006"))
def test_division_with_more_than_ten_places_is_truncated(con, a, b):
    text = f"{dsl_number(a)} / {dsl_number(b)}"
    assert evaluate(con, text) == truncated(a, b), text
