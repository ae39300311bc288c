"""Currency minor units (ISO 4217, from the `iso4217` package) and rounding modes."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc
from iso4217 import Currency

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}


@cache
def minor_unit(currency: str) -> int | None:
    """Decimal places of `currency` (EUR 2, JPY 0, BHD 3), or None when unknown."""
    try:
        exponent = Currency(currency.upper()).exponent
    except (ValueError, KeyError):
        return None
    return exponent if exponent is not None else None


def is_currency(code: str) -> bool:
    return minor_unit(code) is not None


def quantize(amount: Decimal, currency: str, mode: str) -> Decimal:
    """`amount` rounded to the minor unit of `currency` in the client's mode.

    >>> quantize(Decimal("2.345"), "EUR", "half_up"), quantize(Decimal("2.345"), "EUR", "half_even")
    (Decimal('2.35'), Decimal('2.34'))
    """
    places = minor_unit(currency)
    if places is None:
        raise ValueError(f"unknown currency {currency!r}")
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUNDING_MODES[mode])


def decimals(values: pa.Array | pa.ChunkedArray) -> list[Decimal | None]:
    """A decimal column as Python `Decimal`s (None for null): read through their text, the
    same values with the same exponents in half the time of pyarrow's own conversion."""
    text = pc.cast(values, pa.string()).to_pylist()
    if not values.null_count:
        return list(map(Decimal, text))
    return [None if t is None else Decimal(t) for t in text]
