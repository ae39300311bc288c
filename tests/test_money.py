"""Minor units come from ISO 4217; rounding follows the client's mode."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.money import is_currency, minor_unit, quantize


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
