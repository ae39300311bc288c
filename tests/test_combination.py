"""Properties of the combination strategy's bounded search, against brute force.

`combination.search` must say "match" exactly when one set of at most `max_items`
items settles the payment, "ambiguous" when two or more do and "none" when none
does; with a small budget it may give up ("limit") but never claim a wrong match.
`combination.settles` is checked against SPEC section 4 read directly where it
decides: over by at most the tolerance, short by at most the discounts plus the
tolerance, or short within the tolerance; a tolerance's absolute and percent must
both hold when both are set.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from itertools import combinations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.config.matching import Tolerance
from engine.stages.combination import Item, search, settles

CENT = Decimal("0.01")
NO_TOLERANCE = Tolerance(None)

# A few amounts that recur, so that equal items and equal sums are common.
COMMON = [Decimal(v) for v in ("10.00", "25.00", "49.50", "50.00", "75.25", "100.00",
                               "150.50", "250.50")]
amounts = st.one_of(st.sampled_from(COMMON),
                    st.decimals(min_value=CENT, max_value=Decimal("400"), places=2,
                                allow_nan=False, allow_infinity=False))
discounts = st.one_of(st.just(Decimal(0)), st.sampled_from(
    [Decimal(v) for v in ("0.01", "0.20", "0.99", "1.00", "2.00", "5.01")]))
tolerances = st.builds(
    lambda a, p: Tolerance(None, a, p),
    st.sampled_from([None, Decimal(0), CENT, Decimal("0.05"), Decimal("0.50"), Decimal("2.00")]),
    st.sampled_from([None, Decimal(0), Decimal("0.001"), Decimal("0.005"), Decimal("0.01"),
                     Decimal("0.05")]))


def _item(n: int, amount: str | Decimal, discount: str | Decimal = "0") -> Item:
    return Item(f"T-2026-{n:04}", Decimal(amount), Decimal(discount), n)


@st.composite
def cases(draw) -> tuple[Decimal, list[Item], int, Tolerance]:
    """Items, a payment near the sum of a random subset of them (or anywhere), a
    max_items and a tolerance."""
    raw = draw(st.lists(st.tuples(amounts, discounts), min_size=1, max_size=7))
    ranks = draw(st.permutations(range(1, len(raw) + 1)))
    items = [_item(r, a, min(d, a)) for r, (a, d) in zip(ranks, raw, strict=True)]
    picked = draw(st.lists(st.sampled_from(items), min_size=1, max_size=4, unique=True))
    base = sum((i.open_amount for i in picked), Decimal(0))
    shift = draw(st.sampled_from([Decimal(v) for v in (
        "0", "0", "0.01", "-0.01", "0.05", "-0.05", "0.40", "-0.40", "-1.00", "-2.00", "3.00")]))
    cash = draw(st.one_of(
        st.just(base + shift),
        st.just(base - sum((i.discount for i in picked), Decimal(0)) + shift),
        st.decimals(min_value=CENT, max_value=Decimal("900"), places=2,
                    allow_nan=False, allow_infinity=False)))
    if cash <= 0:
        cash = CENT
    return cash, items, draw(st.integers(1, 4)), draw(tolerances)


def brute_force(cash: Decimal, items: Sequence[Item], max_items: int,
                tolerance: Tolerance) -> list[frozenset[str]]:
    """Every set of at most `max_items` items that `cash` settles, by invoice id."""
    return [frozenset(i.invoice_id for i in chosen)
            for size in range(1, max_items + 1)
            for chosen in combinations(items, size)
            if settles(cash, chosen, tolerance)]


def _ids(items: Sequence[Item]) -> frozenset[str]:
    return frozenset(i.invoice_id for i in items)


def _spec_settles(cash: Decimal, items: Sequence[Item], tolerance: Tolerance) -> bool | None:
    """SPEC section 4 without the engine's help, or None where it does not decide.

    Over: the tolerance must allow the over-payment. Short with no discount, or by at
    least the discounts: the tolerance must allow what is short beyond the discounts.
    Short by less than the discounts the SPEC leaves open, except that a shortfall the
    tolerance allows as it is always settles."""
    total = sum((i.open_amount for i in items), Decimal(0))
    discount = sum((i.discount for i in items), Decimal(0))
    if cash >= total:
        return _allows(tolerance, cash - total, total)
    short = total - cash
    if short >= discount:
        return _allows(tolerance, short - discount, total)
    return True if _allows(tolerance, short, total) else None


def _allows(tolerance: Tolerance, difference: Decimal, total: Decimal) -> bool:
    """Absolute and/or percent of the open amount, both when both are set; none: exact."""
    checks = [difference <= tolerance.absolute if tolerance.absolute is not None else None,
              difference <= tolerance.percent * total if tolerance.percent is not None else None]
    given_ = [c for c in checks if c is not None]
    return all(given_) if given_ else difference == 0


@settings(max_examples=300, deadline=None)
@given(cases())
def test_settles_reads_the_spec(case):
    cash, items, max_items, tolerance = case
    for size in range(1, min(max_items, len(items)) + 1):
        for chosen in combinations(items, size):
            expected = _spec_settles(cash, chosen, tolerance)
            if expected is not None:
                assert settles(cash, chosen, tolerance) == expected, (cash, chosen, tolerance)


@settings(max_examples=400, deadline=None)
@given(cases())
@example((Decimal("50.00"), [_item(1, "50.00"), _item(2, "50.00")], 2, NO_TOLERANCE))
@example((Decimal("50.00"), [_item(1, "30.00"), _item(2, "20.00"), _item(3, "25.00"),
                             _item(4, "25.00")], 2, NO_TOLERANCE))
@example((Decimal("98.00"), [_item(1, "100.00", "2.00"), _item(2, "97.99")], 2,
          Tolerance(None, None, Decimal("0.001"))))
@example((Decimal("0.05"), [_item(1, "1.00", "0.99")], 2, Tolerance(None, None, Decimal("0.05"))))
def test_search_agrees_with_brute_force(case):
    cash, items, max_items, tolerance = case
    sets = brute_force(cash, items, max_items, tolerance)
    found = search(cash, items, max_items, tolerance)
    if not sets:
        assert found.outcome == "none", (found, sets)
    elif len(sets) == 1:
        assert found.outcome == "match", (found, sets)
        assert _ids(found.items) == sets[0]
        assert [i.rank for i in found.items] == sorted(i.rank for i in found.items)
    else:
        assert found.outcome == "ambiguous", (found, sets)
        assert _ids(found.items) in sets and _ids(found.other) in sets
        assert _ids(found.items) != _ids(found.other)


@settings(max_examples=300, deadline=None)
@given(cases(), st.integers(1, 12))
def test_a_small_budget_never_claims_a_wrong_match(case, budget):
    cash, items, max_items, tolerance = case
    sets = brute_force(cash, items, max_items, tolerance)
    found = search(cash, items, max_items, tolerance, budget=budget)
    assert found.outcome in ("match", "none", "ambiguous", "limit")
    if found.outcome == "match":
        assert sets == [_ids(found.items)]
    elif found.outcome == "none":
        assert sets == []
    elif found.outcome == "ambiguous":
        assert len(sets) >= 2 and {_ids(found.items), _ids(found.other)} <= set(sets)
    assert found.steps <= budget + 1


@settings(max_examples=200, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_the_order_items_come_in_does_not_matter(case, rnd):
    cash, items, max_items, tolerance = case
    shuffled = list(items)
    rnd.shuffle(shuffled)
    a, b = (search(cash, pool, max_items, tolerance) for pool in (items, shuffled))
    assert (a.outcome, a.items, a.other) == (b.outcome, b.items, b.other)


# --- hand-checked -----------------------------------------------------------------

DISTRACTORS = [_item(1, "100.00"), _item(2, "310.00"), _item(3, "250.50"), _item(4, "75.25"),
               _item(5, "49.50"), _item(6, "20.00"), _item(7, "12.10")]


def test_the_one_set_of_three_among_distractors():
    # 100.00 + 250.50 + 49.50 = 400.00; no other set of up to three makes 400.00.
    found = search(Decimal("400.00"), DISTRACTORS, 3, NO_TOLERANCE)
    assert found.outcome == "match"
    assert [i.invoice_id for i in found.items] == ["T-2026-0001", "T-2026-0003", "T-2026-0005"]


def test_the_set_needs_max_items():
    assert search(Decimal("400.00"), DISTRACTORS, 2, NO_TOLERANCE).outcome == "none"


def test_two_sets_are_ambiguous():
    # Within 3.00, 310.00 + 75.25 + 12.10 = 397.35 (2.65 short) also settles 400.00.
    found = search(Decimal("400.00"), DISTRACTORS, 3, Tolerance(None, Decimal("3.00")))
    assert found.outcome == "ambiguous"
    assert {_ids(found.items), _ids(found.other)} == {
        frozenset({"T-2026-0001", "T-2026-0003", "T-2026-0005"}),
        frozenset({"T-2026-0002", "T-2026-0004", "T-2026-0007"})}


def test_short_within_tolerance_and_discount():
    items = [_item(1, "1200.00"), _item(2, "800.00", "16.00"), _item(3, "35.00")]
    assert search(Decimal("1199.60"), items, 2, Tolerance(None, Decimal("0.50"))).items == (
        items[0],)
    assert search(Decimal("1199.60"), items, 2, Tolerance(None, Decimal("0.30"))).outcome == "none"
    # 800.00 less its 16.00 discount: exact only, still settles.
    found = search(Decimal("784.00"), items, 2, NO_TOLERANCE)
    assert found.outcome == "match" and found.items == (items[1],)
    # Both must hold: 0.40 short is within 0.50 but not within 0.01% of 1,200.00.
    assert search(Decimal("1199.60"), items, 2,
                  Tolerance(None, Decimal("0.50"), Decimal("0.0001"))).outcome == "none"


def test_over_payment_beyond_tolerance_is_no_set():
    items = [_item(1, "100.00"), _item(2, "60.00")]
    assert search(Decimal("160.05"), items, 2, Tolerance(None, Decimal("0.05"))).outcome == "match"
    assert search(Decimal("160.06"), items, 2, Tolerance(None, Decimal("0.05"))).outcome == "none"


def test_out_of_budget_is_limit():
    # 29 items of 1.00 and 4.50 to pay: no set fits, but the walk has to look at
    # every set of four before it knows.
    items = [_item(n, "1.00") for n in range(1, 30)]
    assert search(Decimal("4.50"), items, 8, NO_TOLERANCE).outcome == "none"
    found = search(Decimal("4.50"), items, 8, NO_TOLERANCE, budget=50)
    assert found.outcome == "limit" and found.steps == 51


@pytest.mark.parametrize("tolerance", [NO_TOLERANCE, Tolerance(None, Decimal(0)),
                                       Tolerance(None, None, Decimal(0))])
def test_zero_tolerance_is_exact(tolerance):
    items = [_item(1, "10.00"), _item(2, "20.00")]
    assert search(Decimal("30.00"), items, 2, tolerance).outcome == "match"
    assert search(Decimal("29.99"), items, 2, tolerance).outcome == "none"
    assert search(Decimal("30.01"), items, 2, tolerance).outcome == "none"
