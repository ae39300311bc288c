"""Minor units come from ISO 4217; rounding follows the client's mode."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.money import decimals, is_currency, minor_unit, quantize


@pytest.mark.parametrize("code, places", [("EUR", 2), ("USD", 2), ("JPY", 0), ("BHD", 3),
                                          ("CLF", 4), ("eur", 2)])
def test_minor_units(code, places):
    assert minor_unit(code) == places


def test_unknown_and_non_money_codes():
    assert minor_unit("EURO") is None and not is_currency("XAU") and is_currency("CHF")


@pytest.mark.parametrize("amount, currency, mode, expected", [
    ("2.345", "EUR", "half_up", "2.35"), ("2.345", "EUR", "half_even", "2.34"),
    ("-2.345", "EUR", "half_up", "-2.35"), ("2.355", "EUR", "half_even", "2.36"),
    ("1234.5", "JPY", "half_up", "1235"), ("1234.5", "JPY", "half_even", "1234"),
    ("0.1235", "BHD", "half_even", "0.124"),
])
def test_quantize_to_the_minor_unit_in_the_clients_mode(amount, currency, mode, expected):
    result = quantize(Decimal(amount), currency, mode)
    assert result == Decimal(expected) and str(result) == expected


def test_quantize_refuses_an_unknown_currency():
    with pytest.raises(ValueError, match="unknown currency"):
        quantize(Decimal("1"), "EURO", "half_up")


@given(st.lists(st.one_of(st.none(), st.integers(-10**18 + 1, 10**18 - 1))),
       st.sampled_from([0, 2, 4, 10]))
def test_decimals_read_through_their_text_are_pyarrows_exactly(units, scale):
    """Same values, same exponents (0.0000 stays 0.0000, 0E-10 stays 0E-10), nulls kept."""
    column = pa.array([None if u is None else Decimal(u).scaleb(-scale) for u in units],
                      pa.decimal128(38, scale))
    got = decimals(pa.chunked_array([column[: len(units) // 2], column[len(units) // 2:]],
                                    column.type))
    want = column.to_pylist()
    assert [None if d is None else d.as_tuple() for d in got] == [
        None if d is None else d.as_tuple() for d in want]
