"""Credit decisions and aging, through real runs, with the arithmetic written out by hand.

Open items come from `opening_items`; the as-of date is 2026-03-02 unless a test says
otherwise. The test client's base currency is EUR.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from conftest import STANDARD_TAX
from scenario import CUSTOMER, Scenario, details, money

TAX = STANDARD_TAX

CREDIT = """\
kind: credit
version: 1
default_limit: 10000
exposure: {{open_items: true, open_orders: {orders}}}
limit_rules:
  - id: small
    when: 'segment == "small"'
    limit: 1000
overrides:
  - customer_id: C1
    limit: 50000
    valid_until: "{until}"
decisions:
  - {{id: over, min_utilization: 100%, decision: hold}}
  - {{id: near, min_utilization: 80%, decision: warn}}
otherwise: ok
"""

NIGHT = "2026-03-02"


def customer(cid: str, currency: str = "EUR", **extra: str) -> dict:
    return {**CUSTOMER, "customer_id": cid, "name": f"Customer {cid}", "currency": currency,
            **extra}


def item(n: int, customer_id: str, amount: str, currency: str = "EUR",
         due: str = "2026-03-10") -> dict:
    return {"invoice_id": f"T-2026-{n:04d}", "customer_id": customer_id,
            "invoice_date": "2026-02-01", "due_date": due, "currency": currency,
            "amount_open": amount}


def rate(day: str, source: str, value: str, target: str = "EUR") -> dict:
    return {"rate_date": day, "from_currency": source, "to_currency": target, "rate": value}


def scenario(tmp_path, until: str = "2026-03-02", orders: str = "true",
             credit: str | None = None, client_extra: str = "") -> Scenario:
    text = credit if credit is not None else CREDIT.format(until=until, orders=orders)
    return Scenario(tmp_path, tax=TAX, client_extra=client_extra, **{"credit.yaml": text})


def decisions(s: Scenario) -> list[tuple]:
    return money(s.rows("credit_decisions"), "customer_id", "exposure", "credit_limit",
                 "utilization", "decision", "rule_id", "rule_ref")


def test_the_limit_comes_from_an_override_then_a_rule_then_the_default(tmp_path):
    """C1's override is valid through the as-of date (inclusive): 50,000. C2 is small:
    1,000 by rule. C3: the default 10,000. The next night the override has expired and
    C1 falls back to the default."""
    s = scenario(tmp_path)
    customers = [customer("C1"), customer("C2", segment="small"), customer("C3")]
    items = [item(1, "C1", "40000.00"), item(2, "C2", "900.00"), item(3, "C3", "100.00")]
    assert s.night(NIGHT, customers=customers, opening_items=items) == 0
    assert decisions(s) == [
        ("C1", "40000", "50000", "0.8", "warn", "override:C1", "credit.yaml:10"),
        ("C2", "900", "1000", "0.9", "warn", "small", "credit.yaml:6"),
        ("C3", "100", "10000", "0.01", "ok", "default", "credit.yaml:3")]
    assert s.night("2026-03-03") == 0
    assert decisions(s)[0] == ("C1", "40000", "10000", "4", "hold", "default", "credit.yaml:3")
    (hold,) = [e for e in s.rows("exceptions") if e["code"] == "CREDIT_HOLD"]
    assert hold["entity_id"] == "C1" and hold["severity"] == "warning"
    assert hold["message"] == ("customer C1 is on credit hold: exposure 40,000.00 EUR against "
                               "a limit of 10,000.00 (utilization 4.0000)")
    assert (hold["rule_id"], hold["rule_ref"]) == ("default", "credit.yaml:3")
    assert details(hold) == {"customer_id": "C1", "exposure": "40000.0000",
                             "credit_limit": "10000.0000", "dunning_level": None}


def test_no_limit_from_any_source_is_a_hold_with_an_error(tmp_path):
    """Without default_limit, C3 (neither override nor rule) gets no limit: an empty
    credit_limit, decision hold and an error, never unlimited credit."""
    text = CREDIT.format(until="2026-03-02", orders="true").replace("default_limit: 10000\n", "")
    s = scenario(tmp_path, credit=text)
    assert s.night(NIGHT, customers=[customer("C1"), customer("C3")],
                   opening_items=[item(1, "C3", "5.00")]) == 0
    assert decisions(s)[1] == ("C3", "5", None, None, "hold", None, None)
    (error,) = [e for e in s.rows("exceptions") if e["code"] == "CREDIT_NO_LIMIT"]
    assert (error["severity"], error["entity_id"], error["rule_ref"]) == (
        "error", "C3", "credit.yaml:1")


def test_exposure_in_base_currency_at_the_latest_rate_on_or_before_the_night(tmp_path):
    """C2 bills in USD: item 1,000.00 USD + tonight's order 500.00 USD = 1,500.00 USD.
    USD->EUR rates: 0.90 on 03-01, 0.92 on 03-02 (the latest on or before the night),
    0.95 on 03-03 (later: not used), and EUR->USD 1.10 (the other way: not used).
    1,500.00 x 0.92 = 1,380.00 EUR against 10,000: 0.138."""
    s = scenario(tmp_path)
    rates = [rate("2026-03-01", "USD", "0.90"), rate("2026-03-02", "USD", "0.92"),
             rate("2026-03-03", "USD", "0.95"), rate("2026-03-02", "EUR", "1.10", "USD")]
    orders = [{"order_id": "O1", "customer_id": "C2", "currency": "USD", "amount": "500.00"}]
    assert s.night(NIGHT, customers=[customer("C1"), customer("C2", "USD")],
                   opening_items=[item(1, "C2", "1000.00", "USD")], fx_rates=rates,
                   open_orders=orders) == 0
    assert decisions(s)[1] == ("C2", "1380", "10000", "0.138", "ok", "default",
                               "credit.yaml:3")


def test_the_sum_over_currencies_is_rounded_once(tmp_path):
    """C2 owes 1.00 USD and 1.00 GBP, each at 0.125 EUR: 0.125 + 0.125 = 0.25 EUR,
    rounded once. Rounded per currency it would be 0.13 + 0.13 = 0.26."""
    s = scenario(tmp_path)
    rates = [rate("2026-03-02", "USD", "0.125"), rate("2026-03-02", "GBP", "0.125")]
    items = [item(1, "C2", "1.00", "USD"), item(2, "C2", "1.00", "GBP")]
    assert s.night(NIGHT, customers=[customer("C1"), customer("C2", "USD")],
                   opening_items=items, fx_rates=rates) == 0
    assert decisions(s)[1][:2] == ("C2", "0.25")


def test_a_missing_rate_holds_the_customer_with_an_error(tmp_path):
    """C2 owes GBP and there is no GBP->EUR rate on or before the night (only a later
    one): its exposure is unknown, so it is held, never guessed."""
    s = scenario(tmp_path)
    assert s.night(NIGHT, customers=[customer("C1"), customer("C2", "GBP")],
                   opening_items=[item(1, "C2", "10.00", "GBP")],
                   fx_rates=[rate("2026-03-03", "GBP", "1.17")]) == 0
    assert decisions(s)[1] == ("C2", None, "10000", None, "hold", "default", "credit.yaml:3")
    (error,) = [e for e in s.rows("exceptions") if e["code"] == "FX_RATE_MISSING"]
    assert error["entity_id"] == "C2" and details(error)["currencies"] == ["GBP"]


def test_thresholds_compare_the_exact_ratio(tmp_path):
    """Limit 10,000 (default). C1 has no override here (it expired 03-01).
    C1 7,999.99: 0.799999 < 0.8: ok. C2 8,000.00: exactly 80%: warn.
    C3 9,999.99: 0.999999 < 1: warn, although shown rounded as 1.0000.
    C4 10,000.00: exactly 100%: hold."""
    s = scenario(tmp_path, until="2026-03-01")
    customers = [customer(c) for c in ("C1", "C2", "C3", "C4")]
    items = [item(1, "C1", "7999.99"), item(2, "C2", "8000.00"), item(3, "C3", "9999.99"),
             item(4, "C4", "10000.00")]
    assert s.night(NIGHT, customers=customers, opening_items=items) == 0
    assert [d[3:5] for d in decisions(s)] == [("0.8", "ok"), ("0.8", "warn"), ("1", "warn"),
                                              ("1", "hold")]


def test_open_orders_count_only_when_configured_and_only_tonight(tmp_path):
    """open_orders: false: C2's order of 600.00 does not count (exposure 100.00).
    With true, the order sent on night 1 counts on night 1 (700.00), and on night 2,
    whose drop sends no orders, it does not (100.00)."""
    orders = [{"order_id": "O1", "customer_id": "C2", "currency": "EUR", "amount": "600.00"}]
    off = scenario(tmp_path / "off", orders="false")
    assert off.night(NIGHT, customers=[customer("C1"), customer("C2")],
                     opening_items=[item(1, "C2", "100.00")], open_orders=orders) == 0
    assert decisions(off)[1][:2] == ("C2", "100")
    on = scenario(tmp_path / "on")
    assert on.night(NIGHT, customers=[customer("C1"), customer("C2")],
                    opening_items=[item(1, "C2", "100.00")], open_orders=orders) == 0
    assert decisions(on)[1][:2] == ("C2", "700")
    assert on.night("2026-03-03") == 0
    assert decisions(on)[1][:2] == ("C2", "100")


# --- aging ----------------------------------------------------------------------------

def aging(s: Scenario) -> list[tuple]:
    return money(s.rows("aging"), "customer_id", "currency", "current", "d1_30", "d31_60",
                 "d61_90", "over_90", "unapplied", "total_open")


def test_aging_buckets_by_days_past_due(tmp_path):
    """As of 03-02. Days past due = 03-02 minus the due date:
    due 03-10 (-8) and 03-02 (0): current; 03-01 (1) and 01-31 (30): 1-30;
    01-30 (31): 31-60; 12-02 (90): 61-90; 12-01 (91): over 90.
    C1: 1 + 2 in current = 3; 4 + 8 in 1-30 = 12; 16; 32; 64. Total 127.
    C2 in USD: 5.00 current; its unapplied payment of 7.00 shows as -7.00: total -2.00."""
    matching = "kind: matching\nversion: 1\nstrategies:\n  - {id: ref, type: reference}\n"
    s = Scenario(tmp_path, tax=TAX, **{"matching.yaml": matching})
    due = ["2026-03-10", "2026-03-02", "2026-03-01", "2026-01-31", "2026-01-30",
           "2025-12-02", "2025-12-01"]
    items = [item(n, "C1", str(2 ** (n - 1)), due=d) for n, d in enumerate(due, 1)]
    items.append(item(8, "C2", "5.00", "USD"))
    payment = {"payment_id": "P1", "received_on": NIGHT, "amount": "7.00", "currency": "USD",
               "customer_id": "C2", "reference": ""}
    assert s.night(NIGHT, customers=[customer("C1"), customer("C2", "USD")],
                   opening_items=items, payments=[payment]) == 0
    assert aging(s) == [("C1", "EUR", "3", "12", "16", "32", "64", "0", "127"),
                        ("C2", "USD", "5", "0", "0", "0", "0", "-7", "-2")]


def test_aging_totals_are_the_open_items_of_the_state_store(tmp_path):
    """Client buckets (0, 15, open-ended) over items of two customers in two currencies;
    per customer and currency, total_open is what state.open_items holds open."""
    extra = ("aging_buckets:\n  - {name: due, max_days: 0}\n  - {name: late, max_days: 15}\n"
             "  - {name: very_late}\n")
    s = Scenario(tmp_path, tax=TAX, client_extra=extra)
    items = [item(1, "C1", "10.00", due="2026-03-02"), item(2, "C1", "20.00", due="2026-02-15"),
             item(3, "C1", "40.00", due="2026-02-14"), item(4, "C2", "80.00", "USD",
                                                            due="2026-01-01")]
    assert s.night(NIGHT, customers=[customer("C1"), customer("C2", "USD")],
                   opening_items=items) == 0
    assert money(s.rows("aging"), "customer_id", "currency", "due", "late", "very_late",
                 "total_open") == [("C1", "EUR", "10", "20", "40", "70"),
                                   ("C2", "USD", "0", "0", "80", "80")]
    held = defaultdict(Decimal)
    for c, cur, amount in s.state("SELECT customer_id, currency, amount_open FROM open_items"
                                  " WHERE closed_on IS NULL"):
        held[c, cur] += amount
    assert {(r["customer_id"], r["currency"]): r["total_open"] for r in s.rows("aging")} == held


# --- found in review ----------------------------------------------------------------------

def test_unapplied_cash_lowers_exposure_unless_configured_off(tmp_path):
    """C2 owes 900.00 and paid 300.00 that matched nothing (no matching strategy fits):
    900.00 - 300.00 = 600.00 against 1,000 (C2 is small): 0.6, ok. With
    unapplied_cash: false the 300.00 does not count: 900.00, 0.9, warn."""
    matching = "kind: matching\nversion: 1\nstrategies:\n  - {id: ref, type: reference}\n"
    payment = {"payment_id": "P1", "received_on": NIGHT, "amount": "300.00",
               "currency": "EUR", "customer_id": "C2", "reference": ""}
    for counted, want in (("true", ("600", "0.6", "ok")), ("false", ("900", "0.9", "warn"))):
        text = CREDIT.format(until="2026-03-02", orders="true").replace(
            "open_orders: true}", f"open_orders: true, unapplied_cash: {counted}}}")
        s = Scenario(tmp_path / counted, tax=TAX, **{"credit.yaml": text,
                                                     "matching.yaml": matching})
        assert s.night(NIGHT, customers=[customer("C1"), customer("C2", segment="small")],
                       opening_items=[item(1, "C2", "900.00")], payments=[payment]) == 0
        row = decisions(s)[1]
        assert (row[1], row[3], row[4]) == want


def test_large_limits_and_fine_thresholds_do_not_overflow(tmp_path):
    """A limit of 50,000,000,000 with a 66.6667% threshold: the product needs more digits
    than a DECIMAL(18,4) keeps; exposure 40,000,000,000 is 0.8 of it: warn."""
    text = CREDIT.format(until="2026-03-01", orders="true").replace(
        "default_limit: 10000", "default_limit: 50000000000").replace(
        "min_utilization: 80%", "min_utilization: 66.6667%")
    s = scenario(tmp_path, credit=text)
    assert s.night(NIGHT, customers=[customer("C1")],
                   opening_items=[item(1, "C1", "40000000000.00")]) == 0
    assert decisions(s)[0][3:5] == ("0.8", "warn")


def test_check_refuses_unreachable_thresholds_and_limits_finer_than_money(tmp_path):
    import pytest

    from engine.config.ruleset import load_ruleset
    from engine.errors import RuleError

    text = CREDIT.format(until="2026-03-02", orders="true").replace(
        "default_limit: 10000", 'default_limit: "1000.00005"').replace(
        "  - {id: over, min_utilization: 100%, decision: hold}\n", "").replace(
        "otherwise: ok", "  - {id: over, min_utilization: 100%, decision: hold}\notherwise: ok")
    s = scenario(tmp_path, credit=text)
    with pytest.raises(RuleError) as exc:
        load_ruleset(s.rules)
    assert [(d.code, d.ref.line) for d in exc.value.diagnostics] == [("E601", 3), ("E602", 15)]


def test_a_revised_rate_is_reported_and_the_first_one_kept(tmp_path):
    """Night 1 sends USD->EUR 0.90 for 03-02; night 2 sends 0.50 for the same day: the
    0.90 stands (night 1 was decided with it) and a FX_RATE_REVISED warning says so."""
    s = scenario(tmp_path)
    assert s.night(NIGHT, customers=[customer("C1"), customer("C2", "USD")],
                   opening_items=[item(1, "C2", "1000.00", "USD")],
                   fx_rates=[rate(NIGHT, "USD", "0.90")]) == 0
    assert s.night("2026-03-03", fx_rates=[rate(NIGHT, "USD", "0.50")]) == 0
    assert decisions(s)[1][:2] == ("C2", "900")
    (revised,) = [e for e in s.rows("exceptions") if e["code"] == "FX_RATE_REVISED"]
    assert details(revised) == {"rate_date": NIGHT, "kept": "0.90000000", "sent": "0.50000000"}


def test_an_override_for_an_unknown_customer_is_reported(tmp_path):
    s = scenario(tmp_path)
    assert s.night(NIGHT, customers=[customer("C2")]) == 0
    (unknown,) = [e for e in s.rows("exceptions") if e["code"] == "CREDIT_OVERRIDE_UNKNOWN"]
    assert (unknown["entity_id"], unknown["rule_ref"]) == ("C1", "credit.yaml:10")


def test_a_bucket_name_used_twice_is_refused(tmp_path):
    import pytest

    from engine.config.ruleset import load_ruleset
    from engine.errors import RuleError

    extra = ("aging_buckets:\n  - {name: due, max_days: 0}\n  - {name: due, max_days: 30}\n"
             "  - {name: later}\n")
    s = Scenario(tmp_path, tax=TAX, client_extra=extra)
    with pytest.raises(RuleError) as exc:
        load_ruleset(s.rules)
    assert [(d.code, d.message) for d in exc.value.diagnostics] == [
        ("E134", "bucket name due is used twice")]
