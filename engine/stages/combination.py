"""The bounded search of the `combination` strategy: a unique set of open items that
a payment settles within tolerance.

Pure Python over one payer's items (money as Decimal). The search is a depth-first
walk over the items, largest first, that prunes every branch whose sum has gone past
the payment or can no longer reach it, and stops at the second set found (two sets
mean no match) or after `budget` steps (no match, and the exception says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from engine.config.matching import Tolerance

BUDGET = 200_000  # steps of the walk per payment


class Item(NamedTuple):
    """An open item a payment may settle. A named tuple, not a dataclass: a night makes
    tens of thousands, and a frozen dataclass takes five times as long to make."""

    invoice_id: str
    open_amount: Decimal
    discount: Decimal  # the early-payment discount this payment may take on it
    rank: int  # allocation order


@dataclass(frozen=True)
class Found:
    outcome: str  # match, none, ambiguous, limit
    items: tuple[Item, ...] = ()
    other: tuple[Item, ...] = ()  # the second set, when ambiguous
    steps: int = 0


def terms(cash: Decimal, items: Sequence[Item], tolerance: Tolerance) -> str | None:
    """How `cash` settles `items`, or None when it does not: `full` (over by at most the
    tolerance; the rest stays unapplied), `discount` (short by about the discounts: nearer
    them than nothing, and within tolerance of them), `write_off` (short within
    tolerance)."""
    return _terms(cash, sum((i.open_amount for i in items), Decimal(0)),
                  sum((i.discount for i in items), Decimal(0)), tolerance)


def _terms(cash: Decimal, total: Decimal, discount: Decimal, tolerance: Tolerance) -> str | None:
    """`terms` of items of `total` open amount and `discount` in all."""
    short = total - cash
    if short <= 0:
        return "full" if tolerance.allows(-short, total) else None
    off = abs(short - discount)
    if discount > 0 and off < short and tolerance.allows(off, total):
        return "discount"
    return "write_off" if tolerance.allows(short, total) else None


def settles(cash: Decimal, items: Sequence[Item], tolerance: Tolerance) -> bool:
    return terms(cash, items, tolerance) is not None


def search(cash: Decimal, items: Sequence[Item], max_items: int, tolerance: Tolerance,
           budget: int = BUDGET) -> Found:
    """The unique set of at most `max_items` of `items` that `cash` settles."""
    pool = sorted(items, key=lambda i: (-i.open_amount, i.rank))
    amounts = [i.open_amount for i in pool]
    found: list[tuple[Item, ...]] = []
    steps = 0
    absolute, pct = tolerance.absolute, tolerance.percent
    # Lower bound of (sum of what must be paid - tolerance): rises with every item
    # added, so once it is past the cash no larger set can fit.
    pct_monotone = pct is None or all(i.open_amount - i.discount >= pct * i.open_amount
                                      for i in pool)

    def too_big(net: Decimal, gross: Decimal) -> bool:
        if absolute is not None:
            return net - absolute > cash
        if pct is not None:
            return pct_monotone and net - pct * gross > cash
        return net > cash

    def too_small(reach: Decimal) -> bool:
        bounds = [b for b in (absolute, pct * reach if pct is not None else None)
                  if b is not None]
        return reach + (min(bounds) if bounds else Decimal(0)) < cash

    def walk(start: int, chosen: list[Item], net: Decimal, gross: Decimal) -> bool:
        """False when the walk must stop (two sets found, or out of budget)."""
        nonlocal steps
        for j in range(start, len(pool)):
            steps += 1
            if steps > budget:
                return False
            item = pool[j]
            n2, g2 = net + item.open_amount - item.discount, gross + item.open_amount
            if too_big(n2, g2):
                continue  # a smaller item may still fit
            chosen.append(item)
            if _terms(cash, g2, g2 - n2, tolerance) is not None:  # settles(cash, chosen)
                found.append(tuple(chosen))
                if len(found) > 1:
                    return False
            slots = max_items - len(chosen)
            if slots and not too_small(g2 + sum(amounts[j + 1:j + 1 + slots], Decimal(0))):
                if not walk(j + 1, chosen, n2, g2):
                    return False
            chosen.pop()
        return True

    finished = walk(0, [], Decimal(0), Decimal(0))
    ordered = [tuple(sorted(s, key=lambda i: i.rank)) for s in found]
    if len(ordered) > 1:
        return Found("ambiguous", ordered[0], ordered[1], steps)
    if not finished:
        return Found("limit", steps=steps)
    if ordered:
        return Found("match", ordered[0], steps=steps)
    return Found("none", steps=steps)
