"""Every DSL feature parsed, checked, compiled and RUN on DuckDB over a small Arrow table.

Each expression is evaluated once per row of a three-row `transactions` table;
the expected values were worked out by hand. `customer.*` is a struct column of
the row table (DuckDB resolves `customer.country` as a struct field), row columns
render unqualified (row_alias None), `client.*` constants are inlined and
`as_of` is bound to 2026-03-02.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from engine import tables
from engine.dsl.check import check
from engine.dsl.compile import Target, bind_as_of, compile_expr, to_sql, trunc_places
from engine.dsl.parser import parse
from engine.dsl.scope import Constant, Scope, scope_for
from engine.errors import SourceRef

AS_OF = dt.date(2026, 3, 2)
D = Decimal
date = dt.date

CONSTANTS = {
    "client.id": Constant("string", "nordwind"),
    "client.name": Constant("string", "Nordwind Industriebedarf GmbH"),
    "client.base_currency": Constant("string", "EUR"),
    "client.country": Constant("string", "DE"),
}
SETS = {
    "EU": ("AT", "BE", "DE", "FR", "NL"),
    "NORDICS": ("DK", "FI", "IS", "NO", "SE"),
    "SMALL": (1, 2),
}
SCOPE = scope_for("transactions", CONSTANTS, SETS)

CUSTOMERS = {
    "C1": dict(customer_id="C1", name="Alpha GmbH", country="DE", currency="EUR",
               payment_terms_days=30, vat_id="DE123456789", tax_exempt=False),
    "C2": dict(customer_id="C2", name="Beta SARL", country="FR", currency="EUR",
               payment_terms_days=None, vat_id=None, tax_exempt=None),
    "C3": dict(customer_id="C3", name="Gamma AS", country="NO", currency="NOK",
               payment_terms_days=60, vat_id=None, tax_exempt=True),
}

# T2 is the row full of NULLs (description, tax_category, ship_to_country).
ROWS = [
    dict(txn_id="T1", customer_id="C1", txn_date=date(2026, 1, 31), product_code="BK-100",
         description="Widget A-12", quantity=D("2.5"), unit_price=D("19.99"), currency="EUR",
         tax_category="standard", po_number="PO-1", ship_to_country="DE"),
    dict(txn_id="T2", customer_id="C2", txn_date=date(2025, 12, 1), product_code="FD-7",
         description=None, quantity=D("-1"), unit_price=D("0.10"), currency="USD",
         tax_category=None, po_number=None, ship_to_country=None),
    dict(txn_id="T3", customer_id="C3", txn_date=date(2026, 2, 28), product_code="HO-3",
         description="Seminar lunch", quantity=D("0"), unit_price=D("12.345"), currency="EUR",
         tax_category="hospitality", po_number=None, ship_to_country="FR"),
]


def _customer_type() -> pa.StructType:
    return pa.struct([f.with_nullable(True) for f in tables.INPUTS["customers"]])


def row_table(rows: list[dict]) -> pa.Table:
    """The transactions rows in their canonical Arrow types, plus a `customer` struct."""
    base = pa.Table.from_pylist(rows, schema=tables.INPUTS["transactions"])
    customers = pa.array([CUSTOMERS[r["customer_id"]] for r in rows], type=_customer_type())
    return base.append_column("customer", customers)


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    connection.register("t", row_table(ROWS))
    yield connection
    connection.close()


def origin(line: int, col: int, length: int) -> SourceRef:
    return SourceRef("<test>", line, col, length)


def compiled(text: str, rounding: str = "half_up", scope: Scope = SCOPE):
    node = parse(text, origin)
    type_, problems = check(node, scope)
    assert problems == [], [p.render() for p in problems]
    return type_, compile_expr(node, Target(scope, rounding))


def run(con, text: str, rounding: str = "half_up", table: str = "t") -> list:
    """The value of `text` on each row of `table`, in txn_id order."""
    _, expr = compiled(text, rounding)
    sql = to_sql(bind_as_of(expr, AS_OF), "duckdb")
    return [r[0] for r in con.sql(f"SELECT {sql} AS v FROM {table} ORDER BY txn_id").fetchall()]


def one(con, text: str, rounding: str = "half_up"):
    """The value of a row-independent expression (the same on every row)."""
    values = run(con, text, rounding)
    assert len(set(map(repr, values))) == 1, values
    return values[0]


def assert_exact(values: list, expected: list) -> None:
    """Equal values, and every number a Decimal or int: never a binary float."""
    assert values == expected
    for v in values:
        assert not isinstance(v, float), values


# --- literals ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1", 1),
    ("0", 0),
    ("1234567", 1234567),
])
def test_integer_literal(con, text, expected):
    value = one(con, text)
    assert value == expected and isinstance(value, int) and not isinstance(value, bool)


@pytest.mark.parametrize("text, expected", [
    ("2.5", D("2.5")),
    ("2.50", D("2.50")),
    ("0.1", D("0.1")),
    ("1234567.891234", D("1234567.891234")),
    ("19%", D("0.19")),
    ("7%", D("0.07")),
    ("0.5%", D("0.005")),
    ("12.5%", D("0.125")),
])
def test_decimal_and_percent_literals_are_decimal(con, text, expected):
    value = one(con, text)
    assert isinstance(value, Decimal)
    assert value == expected


@pytest.mark.parametrize("text, expected", [("100%", D("1")), ("0%", D("0"))])
def test_whole_percentages_are_decimal(con, text, expected):
    value = one(con, text)
    assert isinstance(value, Decimal) and value == expected


def test_percent_is_exact_decimal_in_the_tree():
    node = parse("19%", origin)
    assert node.value == Decimal("0.19") and node.type == "decimal"


@pytest.mark.parametrize("text, expected", [
    ("2026-01-01", date(2026, 1, 1)),
    ("2024-02-29", date(2024, 2, 29)),
])
def test_date_literal(con, text, expected):
    value = one(con, text)
    assert type(value) is dt.date and value == expected


@pytest.mark.parametrize("text, expected", [
    ("'single'", "single"),
    ('"double"', "double"),
    ("'it\\'s'", "it's"),
    ('"say \\"hi\\""', 'say "hi"'),
    ("'a \"quoted\" word'", 'a "quoted" word'),
    ('"it\'s"', "it's"),
    ("''", ""),
    ("'Grüße'", "Grüße"),
])
def test_string_literals_both_quote_styles(con, text, expected):
    assert one(con, text) == expected


def test_both_quote_styles_compare_equal(con):
    assert one(con, "'DE' == \"DE\"") is True


@pytest.mark.parametrize("text, expected", [("true", True), ("false", False), ("null", None)])
def test_boolean_and_null_literals(con, text, expected):
    assert one(con, text) is expected


# --- field references ----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("txn_id", ["T1", "T2", "T3"]),
    ("quantity", [D("2.5"), D("-1"), D("0")]),
    ("unit_price", [D("19.99"), D("0.10"), D("12.345")]),
    ("txn_date", [date(2026, 1, 31), date(2025, 12, 1), date(2026, 2, 28)]),
    ("description", ["Widget A-12", None, "Seminar lunch"]),
    ("currency", ["EUR", "USD", "EUR"]),
    ("customer.country", ["DE", "FR", "NO"]),
    ("customer.currency", ["EUR", "EUR", "NOK"]),
    ("customer.vat_id", ["DE123456789", None, None]),
    ("customer.payment_terms_days", [30, None, 60]),
    ("customer.tax_exempt", [False, None, True]),
])
def test_row_and_customer_fields(con, text, expected):
    assert_exact(run(con, text), expected)


def test_decimal_columns_come_back_as_decimal(con):
    for v in run(con, "quantity") + run(con, "unit_price"):
        assert isinstance(v, Decimal)


@pytest.mark.parametrize("text, expected", [
    ("client.country", "DE"),
    ("client.base_currency", "EUR"),
    ("client.id", "nordwind"),
    ("client.name", "Nordwind Industriebedarf GmbH"),
])
def test_client_constants_are_inlined(con, text, expected):
    _, expr = compiled(text)
    assert to_sql(expr, "duckdb") == f"'{expected}'"
    assert one(con, text) == expected


def test_client_constant_in_a_condition(con):
    assert run(con, "customer.country == client.country") == [True, False, False]


def test_as_of_is_a_placeholder_until_bound(con):
    type_, expr = compiled("as_of")
    assert type_ == "date"
    assert to_sql(expr, "duckdb") == "$as_of"
    bound = bind_as_of(expr, AS_OF)
    assert to_sql(bound, "duckdb") == "CAST('2026-03-02' AS DATE)"
    assert one(con, "as_of") == AS_OF


def test_bind_as_of_replaces_every_occurrence():
    _, expr = compiled("days_between(as_of, as_of + 1) == 1 and as_of > txn_date")
    sql = to_sql(bind_as_of(expr, AS_OF), "duckdb")
    assert "$as_of" not in sql and sql.count("'2026-03-02'") == 3


# --- arithmetic ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("0.1 + 0.2", D("0.3")),
    ("0.3 - 0.1", D("0.2")),
    ("1.10 * 3", D("3.30")),
    ("0.1 * 0.1", D("0.01")),
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),
    ("10 - (4 - 3)", 9),
    ("2 * 3 - 4 * 5", -14),
    ("1.005 + 0.005", D("1.010")),
    ("1 + 0.5", D("1.5")),
    ("19% * 100", D("19")),
    ("100 * (1 + 19%)", D("119")),
])
def test_arithmetic_is_exact(con, text, expected):
    value = one(con, text)
    assert value == expected
    assert not isinstance(value, float)
    if isinstance(expected, Decimal):
        assert isinstance(value, Decimal)


def test_point_one_plus_point_two_is_exactly_point_three(con):
    value = one(con, "0.1 + 0.2")
    assert isinstance(value, Decimal) and value == Decimal("0.3")
    assert one(con, "0.1 + 0.2 == 0.3") is True


@pytest.mark.parametrize("text, expected", [
    ("quantity * unit_price", [D("49.975"), D("-0.1"), D("0")]),
    ("quantity + 1", [D("3.5"), D("0"), D("1")]),
    ("quantity - unit_price", [D("-17.49"), D("-1.10"), D("-12.345")]),
    ("quantity * unit_price * 19%", [D("9.49525"), D("-0.019"), D("0")]),
    ("customer.payment_terms_days + 10", [40, None, 70]),
])
def test_arithmetic_on_columns(con, text, expected):
    assert_exact(run(con, text), expected)


@pytest.mark.parametrize("text, expected", [
    ("-quantity", [D("-2.5"), D("1"), D("0")]),
    ("-(quantity - 1)", [D("-1.5"), D("2"), D("1")]),
    ("- -quantity", [D("2.5"), D("-1"), D("0")]),
    ("-2 * 3", [-6] * 3),
    ("5 - -2", [7] * 3),
    ("-0.5 + 1", [D("0.5")] * 3),
])
def test_unary_minus(con, text, expected):
    assert_exact(run(con, text), expected)


# --- division: exact to 10 places, truncated toward zero ------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1 / 3", D("0.3333333333")),
    ("2 / 3", D("0.6666666666")),  # truncated, not rounded to ...67
    ("10 / 4", D("2.5")),
    ("6 / 3", D("2")),
    ("1 / 7", D("0.1428571428")),
    ("-7 / 2", D("-3.5")),
    ("7 / -2", D("-3.5")),
    ("-2 / 3", D("-0.6666666666")),  # toward zero, not floor (-0.6666666667)
    ("2 / -3", D("-0.6666666666")),
    ("-1 / -3", D("0.3333333333")),
    ("1.5 / 0.5", D("3")),
    ("0.000001 / 3", D("0.0000003333")),
    ("100 / 19%", D("526.3157894736")),
    ("1 / 3 * 3", D("0.9999999999")),
])
def test_division_exact_to_ten_places_truncated(con, text, expected):
    type_, _ = compiled(text)
    assert type_ == "decimal"
    value = one(con, text)
    assert isinstance(value, Decimal)
    assert value == expected
    assert value.as_tuple().exponent == -10


def test_division_on_columns(con):
    assert_exact(run(con, "quantity / 3"), [D("0.8333333333"), D("-0.3333333333"), D("0")])
    # division by a NULL divisor gives NULL, not an error
    assert run(con, "10 / customer.payment_terms_days") == [D("0.3333333333"), None,
                                                            D("0.1666666666")]


def test_division_of_more_than_ten_places_is_truncated_not_rounded(con):
    assert one(con, "1.234568234567 / 1") == D("1.2345682345")


def test_division_by_a_divisor_with_more_than_ten_places(con):
    assert one(con, "1 / 0.00000000006") == D("16666666666.6666666666")


def test_division_of_a_column_product_is_truncated(con):
    rows = [dict(ROWS[0], quantity=D("1.234567"), unit_price=D("1.000001"))]
    con.register("t_scale", row_table(rows))
    assert run(con, "quantity * unit_price / 1", table="t_scale") == [D("1.2345682345")]


# --- dates ---------------------------------------------------------------------------------

def test_date_plus_days_type_and_value_via_comparison(con):
    type_, _ = compiled("txn_date + 30")
    assert type_ == "date"
    assert run(con, "txn_date + 30 == 2026-03-02") == [True, False, False]
    assert run(con, "txn_date - 1 == 2026-01-30") == [True, False, False]
    assert run(con, "days_between(txn_date, txn_date + 30)") == [30, 30, 30]
    assert one(con, "2024-02-28 + 1 == 2024-02-29") is True
    assert one(con, "2026-03-01 - 1 == 2026-02-28") is True
    assert one(con, "2025-12-31 + 1 == 2026-01-01") is True


def test_date_plus_days_is_a_date(con):
    values = run(con, "txn_date + 30")
    assert values == [date(2026, 3, 2), date(2025, 12, 31), date(2026, 3, 30)]
    assert all(type(v) is dt.date for v in values)


# --- comparisons ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("quantity > 0", [True, False, False]),
    ("quantity >= 0", [True, False, True]),
    ("quantity < 0", [False, True, False]),
    ("quantity <= 0", [False, True, True]),
    ("quantity == 2.5", [True, False, False]),
    ("quantity != 0", [True, True, False]),
    ("quantity == -1", [False, True, False]),
    ("txn_date < 2026-01-01", [False, True, False]),
    ("txn_date >= 2026-01-31", [True, False, True]),
    ("txn_date < as_of", [True, True, True]),
    ("description == 'Widget A-12'", [True, None, False]),
    ("description != 'Widget A-12'", [False, None, True]),
    ("currency == customer.currency", [True, False, False]),
    ("customer.payment_terms_days <= 30", [True, None, False]),
    ("customer.tax_exempt == true", [False, None, True]),
])
def test_comparisons(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("'abc' < 'abd'", True),
    ("1 == 1.0", True),
    ("2 > 1.5", True),
    ("2026-01-01 < 2026-01-02", True),
])
def test_literal_comparisons(con, text, expected):
    assert one(con, text) is expected


# --- logic and NULL ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    # description is NULL on T2: the comparison is NULL there
    ("description == 'x' and false", [False, False, False]),
    ("description == 'x' and true", [False, None, False]),
    ("description == 'x' or true", [True, True, True]),
    ("description == 'Widget A-12' or false", [True, None, False]),
    ("not (description == 'x')", [True, None, True]),
    ("not customer.tax_exempt", [True, None, False]),
    ("customer.tax_exempt or quantity > 0", [True, None, True]),
    ("customer.tax_exempt and quantity > 0", [False, False, False]),
    ("null and false", [False] * 3),
    ("null or true", [True] * 3),
    ("null and true", [None] * 3),
    ("not null", [None] * 3),
])
def test_three_valued_logic(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("true or false and false", True),  # and binds tighter than or
    ("(true or false) and false", False),
    ("not false and false", False),  # not binds tighter than and
    ("not (false and false)", True),
    ("not not true", True),
])
def test_logic_precedence(con, text, expected):
    assert one(con, text) is expected


# --- in, not in, named sets ----------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("ship_to_country in ['DE', 'FR']", [True, None, True]),
    ("ship_to_country not in ['DE']", [False, None, True]),
    ("customer.country in ['DE', \"NO\"]", [True, False, True]),
    ("quantity in [0, 2.5]", [True, False, True]),
    ("month(txn_date) in [1, 2]", [True, False, True]),
    ("txn_date in [2026-01-31, 2025-12-01]", [True, True, False]),
    ("'A' in ['A', null]", [True] * 3),
    ("'X' in ['A', null]", [None] * 3),
    ("'X' not in ['A', null]", [None] * 3),
    ("'A' not in ['A', null]", [False] * 3),
])
def test_in_list(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("customer.country in EU", [True, True, False]),
    ("customer.country not in EU", [False, False, True]),
    ("customer.country in NORDICS", [False, False, True]),
    ("ship_to_country in EU", [True, None, True]),
    ("ship_to_country not in EU", [False, None, False]),
    ("customer.payment_terms_days / 30 in SMALL", [True, None, True]),
])
def test_named_sets(con, text, expected):
    assert run(con, text) == expected


def test_named_set_values_are_inlined():
    _, expr = compiled("customer.country in NORDICS")
    assert to_sql(expr, "duckdb") == "customer.country IN ('DK', 'FI', 'IS', 'NO', 'SE')"


# --- between, is null ----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("quantity between 0 and 2.5", [True, False, True]),  # both ends inclusive
    ("quantity between -1 and -1", [False, True, False]),
    ("quantity between 0.1 and 2.4", [False, False, False]),
    ("txn_date between 2025-12-01 and 2026-01-31", [True, True, False]),
    ("txn_date between 2026-02-28 and as_of", [False, False, True]),
    ("description between 'A' and 'Z'", [True, None, True]),
    ("not (quantity between 0 and 1)", [True, True, False]),
    ("customer.payment_terms_days between 30 and 60", [True, None, True]),
])
def test_between_is_inclusive(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("description is null", [False, True, False]),
    ("description is not null", [True, False, True]),
    ("customer.vat_id is null", [False, True, True]),
    ("customer.vat_id is not null", [True, False, False]),
    ("tax_category is null or tax_category == 'standard'", [True, True, False]),
    ("null is null", [True] * 3),
    ("1 is not null", [True] * 3),
])
def test_is_null(con, text, expected):
    assert run(con, text) == expected


# --- if / then / else ----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("if quantity > 0 then 'pos' else if quantity < 0 then 'neg' else 'zero'",
     ["pos", "neg", "zero"]),
    ("if description is null then 0 else 1.5", [D("1.5"), D("0"), D("1.5")]),
    # a NULL condition takes the else branch
    ("if description == 'Widget A-12' then 1 else 2", [1, 2, 2]),
    ("if (if quantity > 0 then true else false) then 'a' else 'b'", ["a", "b", "b"]),
    ("if customer.country in EU then if ship_to_country is null then 'eu-unknown' "
     "else 'eu' else 'non-eu'", ["eu", "eu-unknown", "non-eu"]),
    ("(if quantity > 0 then quantity else 0) * 2", [D("5"), D("0"), D("0")]),
    ("if quantity > 0 then txn_date else as_of", [date(2026, 1, 31), AS_OF, AS_OF]),
    ("if quantity > 0 then null else 'x'", [None, "x", "x"]),
])
def test_if_then_else(con, text, expected):
    assert_exact(run(con, text), expected)


# --- functions -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("days_between(txn_date, as_of)", [30, 91, 2]),
    ("days_between(as_of, txn_date)", [-30, -91, -2]),
    ("days_between(2026-01-01, 2026-12-31)", [364] * 3),
    ("days_between(2024-02-28, 2024-03-01)", [2] * 3),
    ("days_between(txn_date, txn_date)", [0] * 3),
])
def test_days_between(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("round(2.345, 2)", D("2.35")),
    ("round(-2.345, 2)", D("-2.35")),
    ("round(2.355, 2)", D("2.36")),
    ("round(2.5)", D("3")),
    ("round(-2.5)", D("-3")),
    ("round(2.4)", D("2")),
    ("round(1 / 3, 4)", D("0.3333")),
    ("round(2 / 3, 2)", D("0.67")),
    ("round(0.125, 2)", D("0.13")),
])
def test_round_half_up(con, text, expected):
    value = one(con, text)
    assert isinstance(value, Decimal) and value == expected


@pytest.mark.parametrize("text, expected", [
    ("round(2.345, 2)", D("2.34")),
    ("round(2.355, 2)", D("2.36")),
    ("round(-2.345, 2)", D("-2.34")),
    ("round(2.5)", D("2")),
    ("round(3.5)", D("4")),
    ("round(-2.5)", D("-2")),
    ("round(0.125, 2)", D("0.12")),
    ("round(2.3451, 2)", D("2.35")),
])
def test_round_half_even(con, text, expected):
    value = one(con, text, rounding="half_even")
    assert isinstance(value, Decimal) and value == expected


def test_round_on_columns_in_both_modes(con):
    # 12.345 is a tie at two places: half_up goes away from zero, half_even to the even 4
    assert run(con, "round(unit_price, 2)") == [D("19.99"), D("0.10"), D("12.35")]
    assert run(con, "round(unit_price, 2)", "half_even") == [D("19.99"), D("0.10"), D("12.34")]
    assert run(con, "round(quantity * unit_price, 2)") == [D("49.98"), D("-0.10"), D("0")]
    assert run(con, "round(quantity * unit_price, 2)", "half_even") == [D("49.98"), D("-0.10"),
                                                                       D("0")]


@pytest.mark.parametrize("text, expected", [
    ("abs(quantity)", [D("2.5"), D("1"), D("0")]),
    ("abs(-3)", [3] * 3),
    ("abs(-0.05)", [D("0.05")] * 3),
    ("abs(customer.payment_terms_days - 45)", [15, None, 15]),
])
def test_abs(con, text, expected):
    assert_exact(run(con, text), expected)


@pytest.mark.parametrize("text, expected", [
    ("coalesce(description, 'none')", ["Widget A-12", "none", "Seminar lunch"]),
    ("coalesce(null, null, 3)", [3] * 3),
    ("coalesce(customer.payment_terms_days, 14)", [30, 14, 60]),
    ("coalesce(ship_to_country, customer.country)", ["DE", "FR", "FR"]),
    ("coalesce(customer.vat_id, description, 'x')", ["DE123456789", "x", "Seminar lunch"]),
])
def test_coalesce(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("lower(description)", ["widget a-12", None, "seminar lunch"]),
    ("upper(description)", ["WIDGET A-12", None, "SEMINAR LUNCH"]),
    ("lower('ÄÖÜ')", ["äöü"] * 3),
    ("lower(product_code) == 'bk-100'", [True, False, False]),
])
def test_lower_upper(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("contains(description, 'A-1')", [True, None, False]),
    ("description contains 'lunch'", [False, None, True]),
    ("description contains 'widget'", [False, None, False]),  # case-sensitive
    ("contains(product_code, '-')", [True, True, True]),
    ("'a.b' contains '.'", [True] * 3),  # a plain substring, not a pattern
    ("'ab' contains '.'", [False] * 3),
    ("not (product_code contains 'BK')", [False, True, True]),
])
def test_contains_function_and_infix(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("matches(product_code, '^(BK|FD)-')", [True, True, False]),
    ("product_code matches '^HO-'", [False, False, True]),
    ("description matches '[0-9]+$'", [True, None, False]),
    ("'xabcx' matches 'abc'", [True] * 3),  # a search, not a full match
    ("'ab' matches 'a.'", [True] * 3),
    ("product_code matches '^bk'", [False, False, False]),
])
def test_matches_function_and_infix(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("extract(description, '[A-Z]-[0-9]+')", ["A-12", None, None]),
    ("extract(product_code, '([A-Z]+)-([0-9]+)', 2)", ["100", "7", "3"]),
    ("extract(product_code, '([A-Z]+)-([0-9]+)', 1)", ["BK", "FD", "HO"]),
    ("extract(product_code, 'ZZ')", [None, None, None]),  # no match gives NULL, not ''
    ("extract(product_code, 'Z(Z)', 1)", [None, None, None]),
    ("extract(product_code, '[0-9]+') is null", [False, False, False]),
])
def test_extract(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("concat(product_code, '/', description)", ["BK-100/Widget A-12", "FD-7/",
                                                "HO-3/Seminar lunch"]),
    ("concat(null, 'a')", ["a"] * 3),
    ("concat(null, null)", [""] * 3),
    ("concat('terms:', customer.payment_terms_days)", ["terms:30", "terms:", "terms:60"]),
    ("concat(txn_id, '@', txn_date)", ["T1@2026-01-31", "T2@2025-12-01", "T3@2026-02-28"]),
    ("concat(customer.country, '-', ship_to_country)", ["DE-DE", "FR-", "NO-FR"]),
])
def test_concat_treats_null_as_empty(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("year(txn_date)", [2026, 2025, 2026]),
    ("month(txn_date)", [1, 12, 2]),
    ("year(as_of)", [2026] * 3),
    ("month(2026-11-05)", [11] * 3),
    ("year(txn_date + 335)", [2027, 2026, 2027]),  # 2026-01-31 + 335 = 2027-01-01
])
def test_year_month(con, text, expected):
    assert run(con, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("least(quantity, 1)", [D("1"), D("-1"), D("0")]),
    ("greatest(quantity, 1)", [D("2.5"), D("1"), D("1")]),
    ("least(3, 1, 2)", [1] * 3),
    ("greatest(3, 1, 2.5)", [D("3")] * 3),
    ("least(txn_date, 2026-01-01)", [date(2026, 1, 1), date(2025, 12, 1), date(2026, 1, 1)]),
    ("greatest(txn_date, 2026-02-01)", [date(2026, 2, 1), date(2026, 2, 1),
                                        date(2026, 2, 28)]),
    ("greatest('a', 'c', 'b')", ["c"] * 3),
    # on DuckDB a NULL argument makes the result NULL (see the SQL golden below)
    ("least(customer.payment_terms_days, 45)", [30, None, 45]),
    ("greatest(customer.payment_terms_days, 45)", [45, None, 60]),
])
def test_least_greatest(con, text, expected):
    assert_exact(run(con, text), expected)


# --- the result types the checker promises ------------------------------------------------

@pytest.mark.parametrize("text, type_", [
    ("1 + 1", "integer"), ("1 + 1.5", "decimal"), ("1 / 1", "decimal"), ("19%", "decimal"),
    ("txn_date + 1", "date"), ("days_between(txn_date, as_of)", "integer"),
    ("round(quantity, 2)", "decimal"), ("abs(-1)", "integer"), ("abs(quantity)", "decimal"),
    ("coalesce(null, 'x')", "string"), ("least(1, 2.5)", "decimal"),
    ("extract('a', 'a')", "string"), ("concat(1, 2)", "string"), ("year(as_of)", "integer"),
    ("customer.country in EU", "boolean"),
    ("if true then 1 else 2.5", "decimal"), ("description contains 'x'", "boolean"),
])
def test_checker_types(text, type_):
    assert compiled(text)[0] == type_


# --- wide values do not overflow ----------------------------------------------------------------

def test_column_product_of_a_million_does_not_overflow(con):
    rows = [dict(ROWS[0], quantity=D("1000"), unit_price=D("1000"))]
    con.register("t_big", row_table(rows))
    assert run(con, "quantity * unit_price", table="t_big") == [D("1000000")]


def test_integer_literal_arithmetic_is_64_bit(con):
    assert one(con, "100000 * 100000") == 10_000_000_000


# --- rendered SQL: golden strings per dialect ----------------------------------------------

GOLDEN = [
    # (expression, rounding, duckdb, spark)
    ("customer.country in EU and quantity >= 1.5", "half_up",
     "(customer.country IN ('AT', 'BE', 'DE', 'FR', 'NL')) AND (quantity >= 1.5)",
     "(customer.country IN ('AT', 'BE', 'DE', 'FR', 'NL')) AND (quantity >= 1.5)"),
    ("ship_to_country not in EU", "half_up",
     "NOT ship_to_country IN ('AT', 'BE', 'DE', 'FR', 'NL')",
     "NOT ship_to_country IN ('AT', 'BE', 'DE', 'FR', 'NL')"),
    ("txn_date + 30", "half_up", "CAST(txn_date + INTERVAL 30 DAY AS DATE)",
     "CAST(DATE_ADD(txn_date, 30) AS DATE)"),
    ("days_between(txn_date, as_of)", "half_up",
     "DATE_DIFF('DAY', txn_date, $as_of)", "DATEDIFF(DAY, txn_date, :as_of)"),
    ("description contains 'a'", "half_up",
     "STRPOS(description, 'a') > 0", "LOCATE('a', description) > 0"),
    ("description matches '^a'", "half_up",
     "REGEXP_MATCHES(description, '^a')", "description RLIKE '^a'"),
    ("concat(description, '-')", "half_up",
     "CONCAT(description, '-')", "CONCAT(COALESCE(description, ''), '-')"),
    ("extract(description, 'x')", "half_up",
     "NULLIF(REGEXP_EXTRACT(description, 'x'), '')",
     "NULLIF(REGEXP_EXTRACT(description, 'x', 0), '')"),
    ("if quantity > 0 then 'pos' else 'neg'", "half_up",
     "CASE WHEN quantity > 0 THEN 'pos' ELSE 'neg' END",
     "CASE WHEN quantity > 0 THEN 'pos' ELSE 'neg' END"),
    ("customer.vat_id is not null", "half_up",
     "NOT customer.vat_id IS NULL", "NOT customer.vat_id IS NULL"),
    ("not (quantity between 1 and 2)", "half_up",
     "NOT (quantity BETWEEN 1 AND 2)", "NOT (quantity BETWEEN 1 AND 2)"),
    # products are typed DECIMAL(38, places of each side) so that they cannot overflow
    ("-quantity * 2", "half_up",
     "(CAST(-(quantity) AS DECIMAL(38, 6))) * (CAST(2 AS DECIMAL(38, 0)))",
     "(CAST(-(quantity) AS DECIMAL(38, 6))) * (CAST(2 AS DECIMAL(38, 0)))"),
    ("round(quantity, 2)", "half_up", "CAST(ROUND(quantity, 2) AS DECIMAL(38, 2))",
     "CAST(ROUND(quantity, 2) AS DECIMAL(38, 2))"),
    ("round(quantity, 2)", "half_even", "CAST(ROUND_EVEN(quantity, 2) AS DECIMAL(38, 2))",
     "CAST(BROUND(quantity, 2) AS DECIMAL(38, 2))"),
    ("customer.country == client.country", "half_up",
     "customer.country = 'DE'", "customer.country = 'DE'"),
    ("least(quantity, 1)", "half_up",
     "CASE WHEN quantity IS NULL OR 1 IS NULL THEN NULL ELSE LEAST(quantity, 1) END",
     "LEAST(quantity, 1)"),
    ("year(txn_date) == 2026", "half_up", "YEAR(txn_date) = 2026", "YEAR(txn_date) = 2026"),
    ("2026-01-01", "half_up", "CAST('2026-01-01' AS DATE)", "CAST('2026-01-01' AS DATE)"),
]


@pytest.mark.parametrize("text, rounding, duckdb_sql, spark_sql", GOLDEN,
                         ids=[g[0] for g in GOLDEN])
def test_rendered_sql_golden(text, rounding, duckdb_sql, spark_sql):
    _, expr = compiled(text, rounding)
    assert to_sql(expr, "duckdb") == duckdb_sql
    assert to_sql(expr, "spark") == spark_sql


def test_rendered_division_golden_duckdb():
    _, expr = compiled("1 / 3")
    assert to_sql(expr, "duckdb") == (
        "CAST(CAST(CAST(CAST(1 AS DECIMAL(38, 0)) AS INT128) * 10000000000 "
        "// NULLIF(CAST(CAST(3 AS DECIMAL(38, 0)) AS INT128), 0) AS DECIMAL(38, 0)) "
        "* 0.0000000001 AS DECIMAL(38, 10))")
    assert to_sql(expr, "spark") == (
        "CAST(CAST(1 AS DECIMAL(28, 0)) / NULLIF(CAST(3 AS DECIMAL(28, 0)), 0) "
        "AS DECIMAL(38, 10))")


def test_rendered_half_even_golden_duckdb():
    _, expr = compiled("round(quantity, 2)", "half_even")
    assert to_sql(expr, "duckdb") == "CAST(ROUND_EVEN(quantity, 2) AS DECIMAL(38, 2))"


def test_spark_division_uses_spark_types():
    _, expr = compiled("1 / 3")
    assert "INT128" not in to_sql(expr, "spark")


def test_spark_half_even_uses_a_spark_function():
    _, expr = compiled("round(quantity, 2)", "half_even")
    assert "ROUND_EVEN" not in to_sql(expr, "spark")


@pytest.mark.parametrize("places", [0, 2, 3, 4])
def test_truncation_is_trunc_on_duckdb_and_the_remainder_elsewhere(con, places):
    """Cut toward zero: DuckDB's TRUNC (a quarter of the time of the remainder on its
    38-digit decimals) and x - x % unit give the same, negative values included."""
    x = exp.column("x")
    assert to_sql(trunc_places(x, places), "duckdb") == f"TRUNC(x, {places})"
    unit = "1" if places == 0 else "0." + "0" * (places - 1) + "1"
    assert to_sql(trunc_places(x, places), "spark") == f"x - x % {unit}"
    values = ["1234.56789", "-1234.56789", "0.00005", "-0.99999", "7", "-7.1"]
    con.execute("CREATE OR REPLACE TEMP TABLE cut AS SELECT CAST(x AS DECIMAL(38,10)) AS x "
                "FROM unnest(?) AS t(x)", [values])
    fast = con.execute(f"SELECT {to_sql(trunc_places(x, places), 'duckdb')} FROM cut").fetchall()
    slow = con.execute(f"SELECT {to_sql(trunc_places(x, places), 'spark')} FROM cut").fetchall()
    assert fast == slow
    assert [v for (v,) in fast] == [D(v).quantize(D(unit), "ROUND_DOWN") for v in values]


def test_markers_inside_markers_are_rendered(con):
    """round(a / b) in half_even nests the division marker in the rounding marker."""
    _, expr = compiled("round(10 / 4, 1)", "half_even")
    for dialect in ("duckdb", "spark", "snowflake"):
        assert "RULEDGER" not in to_sql(expr, dialect)
    assert one(con, "round(10 / 4, 1)", "half_even") == D("2.5")
