"""Cash application, through real runs, with the arithmetic written out by hand.

Open items come from `opening_items` (exact amounts, ids T-2026-0001, ...); the
strategies of each test are its own matching.yaml. Every payment journal entry is
checked to balance, per entry and currency.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal

import duckdb
from conftest import ACCOUNTS_WITH_DISCOUNT, STANDARD_TAX, replace_accounts
from hypothesis import example, given
from hypothesis import strategies as st
from scenario import CUSTOMER, Scenario, details, line, money

from engine.stages.cash_sql import item_key

TAX = STANDARD_TAX

C2 = {**CUSTOMER, "customer_id": "C2", "name": "Beta SARL", "country": "FR"}
NIGHT = "2026-03-02"
D = Decimal


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def item(n: int, amount: str, due: str = "2026-03-10", customer: str = "C1",
         currency: str = "EUR", invoice_date: str = "2026-02-08") -> dict:
    """An opening item T-2026-000n."""
    return {"invoice_id": f"T-2026-{n:04d}", "customer_id": customer,
            "invoice_date": invoice_date, "due_date": due, "currency": currency,
            "amount_open": amount}


def pay(payment_id: str, amount: str, reference: str = "", customer: str = "C1",
        received_on: str = NIGHT, currency: str = "EUR") -> dict:
    return {"payment_id": payment_id, "received_on": received_on, "amount": amount,
            "currency": currency, "customer_id": customer, "payer_name": "Payer " + customer,
            "reference": reference}


def matching(*strategies: str, order: str = "") -> str:
    """A matching.yaml of the given strategy blocks (each a YAML list item)."""
    return "kind: matching\nversion: 1\n" + order + "strategies:\n" + "".join(strategies)


def reference(tolerance: str = "", on_short: str = "partial", sid: str = "by_reference") -> str:
    tol = f"    tolerance: {tolerance}\n" if tolerance else ""
    return f"  - id: {sid}\n    type: reference\n{tol}    on_short: {on_short}\n"


def amount(tolerance: str = "", tie_break: str = "exception") -> str:
    tol = f"    tolerance: {tolerance}\n" if tolerance else ""
    return f"  - id: by_amount\n    type: amount\n{tol}    tie_break: {tie_break}\n"


def combination(max_items: int = 3) -> str:
    return f"  - id: by_combination\n    type: combination\n    max_items: {max_items}\n"


def scenario(path, matching_yaml: str, client_extra: str = "") -> Scenario:
    path.mkdir(parents=True, exist_ok=True)
    return Scenario(path, tax=TAX, client_extra=client_extra,
                    **{"matching.yaml": matching_yaml})


APP_COLUMNS = ("payment_id", "invoice_id", "applied_amount", "written_off_amount",
               "discount_amount", "strategy", "rule_ref")


def applications(s: Scenario, as_of: str | None = None) -> list[tuple]:
    return money(s.rows("cash_applications", as_of), *APP_COLUMNS)


def payment_journal(s: Scenario, as_of: str | None = None) -> list[tuple]:
    """The night's payment entries as (entry_id, account, debit, credit, customer_id),
    after checking that each entry balances per currency."""
    entries = [e for e in s.rows("journal_entries", as_of) if e["document_type"] == "payment"]
    sides: dict[tuple, list[Decimal]] = defaultdict(lambda: [D(0), D(0)])
    for e in entries:
        sides[e["entry_id"], e["currency"]][0] += e["debit"]
        sides[e["entry_id"], e["currency"]][1] += e["credit"]
    for key, (debit, credit) in sides.items():
        assert debit == credit, f"entry {key} does not balance: {debit} != {credit}"
    assert [e["line_no"] for e in entries] == [
        n for k in dict.fromkeys(e["entry_id"] for e in entries)
        for n in range(1, 1 + sum(e["entry_id"] == k for e in entries))]
    return money(entries, "entry_id", "account", "debit", "credit", "customer_id")


def problems(s: Scenario, as_of: str | None = None) -> list[tuple]:
    return [(p["severity"], p["code"], p["entity_id"]) for p in s.rows("exceptions", as_of)
            if p["stage"] == "matching"]


def cash_adds_up(s: Scenario, payments: list[dict]) -> None:
    """SPEC 5: a payment's applied cash plus its unapplied rest equals its amount."""
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for row in s.rows("cash_applications"):
        applied[row["payment_id"]] += row["applied_amount"]
    assert dict(applied) == {p["payment_id"]: D(p["amount"]) for p in payments}


def open_items(s: Scenario) -> list[tuple]:
    return s.state("SELECT invoice_id, amount_open, closed_on FROM open_items "
                   "ORDER BY invoice_id")


def unapplied(s: Scenario) -> list[tuple]:
    return s.state("SELECT payment_id, customer_id, currency, cash_open, closed_on "
                   "FROM unapplied_cash ORDER BY payment_id")


# --- 1, 2, 3: tolerance ---------------------------------------------------------------

BOTH_TOLERANCES = "{absolute: 5.00, percent: 0.5%}"


@given(st.lists(st.text(alphabet="aZ09-_/ .#é\u00a0\n", max_size=12), min_size=1, max_size=20))
@example(["NW-2026-000041", "nw 2026/41", "-", "", "ÉT-1", "A-é-1"])
def test_an_item_key_is_the_ids_letters_and_digits_upper_cased(ids):
    """An id of letters, digits and dashes has its dashes dropped, any other id goes
    through the regular expression: the keys are the same either way."""
    con = duckdb.connect()
    keys = con.execute(f"SELECT {item_key('id')} FROM unnest(?) AS t(id)", [ids]).fetchall()
    assert [k for (k,) in keys] == [re.sub("[^A-Za-z0-9]", "", i).upper() for i in ids]


def test_a_short_payment_within_tolerance_is_written_off(tmp_path):
    """1,200.00 open, 1,199.60 paid naming it: 0.40 short; allowed min(5.00, 0.5% x
    1,200.00 = 6.00) -> settled. Applied 1,199.60 + written off 0.40 = 1,200.00, closed.
    Journal: Dr 1200 1,199.60 + Dr 2400 0.40 = Cr 1400 1,200.00."""
    s = scenario(tmp_path, matching(reference(BOTH_TOLERANCES)))
    payments = [pay("P1", "1199.60", "T-2026-0001")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1200.00")],
                   payments=payments) == 0
    assert applications(s) == [
        ("P1", "T-2026-0001", "1199.6", "0.4", "0", "by_reference", "matching.yaml:4")]
    cash_adds_up(s, payments)
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "1199.6", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "1200", "C1"),
        ("JE-PAY-P1-20260302", "2400", "0.4", "0", "C1")]
    assert problems(s) == []
    assert open_items(s) == [("T-2026-0001", D("0"), day(NIGHT))]
    assert unapplied(s) == []


def test_a_short_payment_beyond_tolerance_applied_in_part(tmp_path):
    """1,150.00 paid on 1,200.00: 50.00 short > 5.00 -> beyond. on_short partial: applied
    1,150.00, nothing written off, 1,200.00 - 1,150.00 = 50.00 stays open.
    Journal: Dr 1200 1,150.00 / Cr 1400 1,150.00."""
    s = scenario(tmp_path, matching(reference(BOTH_TOLERANCES, "partial")))
    payments = [pay("P1", "1150.00", "T-2026-0001")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1200.00")],
                   payments=payments) == 0
    assert applications(s) == [
        ("P1", "T-2026-0001", "1150", "0", "0", "by_reference", "matching.yaml:4")]
    cash_adds_up(s, payments)
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "1150", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "1150", "C1")]
    (problem,) = s.rows("exceptions")
    assert (problem["severity"], problem["code"], problem["entity_id"]) == (
        "info", "PARTIAL_PAYMENT", "P1")
    assert details(problem)["invoices"] == ["T-2026-0001"]
    assert D(details(problem)["short"]) == D("50.00")
    assert open_items(s) == [("T-2026-0001", D("50"), None)]
    assert unapplied(s) == []


def test_a_short_payment_beyond_tolerance_raised_as_an_exception(tmp_path):
    """The same 1,150.00 with on_short exception: nothing reaches the item; one row with
    no invoice carries all 1,150.00 as unapplied cash on C1.
    Journal: Dr 1200 1,150.00 / Cr 1590 1,150.00. The item keeps 1,200.00 open."""
    s = scenario(tmp_path, matching(reference(BOTH_TOLERANCES, "exception")))
    payments = [pay("P1", "1150.00", "T-2026-0001")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1200.00")],
                   payments=payments) == 0
    assert applications(s) == [("P1", None, "1150", "0", "0", "by_reference", "matching.yaml:4")]
    cash_adds_up(s, payments)
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "1150", "0", "C1"),
        ("JE-PAY-P1-20260302", "1590", "0", "1150", "C1")]
    (problem,) = s.rows("exceptions")
    assert (problem["severity"], problem["code"], problem["entity_id"], problem["rule_ref"]) == (
        "warning", "PAYMENT_SHORT", "P1", "matching.yaml:4")
    assert D(details(problem)["short"]) == D("50.00")
    assert open_items(s) == [("T-2026-0001", D("1200"), None)]
    assert unapplied(s) == [("P1", "C1", "EUR", D("1150"), None)]


def test_both_tolerances_must_hold(tmp_path):
    """absolute 5.00 and percent 0.5%:
    T1 500.00, paid 496.00: 4.00 short; 4.00 <= 5.00 but 0.5% x 500.00 = 2.50 < 4.00 ->
       beyond: applied 496.00, 4.00 stays open.
    T2 2,000.00, paid 1,994.00: 6.00 short; 0.5% x 2,000.00 = 10.00 holds, 6.00 > 5.00 ->
       beyond: applied 1,994.00, 6.00 stays open.
    T3 500.00, paid 497.60: 2.40 short <= 2.50 and <= 5.00 -> written off 2.40, closed."""
    s = scenario(tmp_path, matching(reference(BOTH_TOLERANCES, "partial")))
    items = [item(1, "500.00"), item(2, "2000.00"), item(3, "500.00")]
    payments = [pay("P1", "496.00", "T-2026-0001"), pay("P2", "1994.00", "T-2026-0002"),
                pay("P3", "497.60", "T-2026-0003")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items, payments=payments) == 0
    cash_adds_up(s, payments)
    assert applications(s) == [
        ("P1", "T-2026-0001", "496", "0", "0", "by_reference", "matching.yaml:4"),
        ("P2", "T-2026-0002", "1994", "0", "0", "by_reference", "matching.yaml:4"),
        ("P3", "T-2026-0003", "497.6", "2.4", "0", "by_reference", "matching.yaml:4")]
    assert problems(s) == [("info", "PARTIAL_PAYMENT", "P1"), ("info", "PARTIAL_PAYMENT", "P2")]
    assert open_items(s) == [("T-2026-0001", D("4"), None), ("T-2026-0002", D("6"), None),
                             ("T-2026-0003", D("0"), day(NIGHT))]
    journal = payment_journal(s)
    assert ("JE-PAY-P3-20260302", "2400", "2.4", "0", "C1") in journal
    assert not any(j[1] == "2400" for j in journal if j[0] != "JE-PAY-P3-20260302")


# --- 4: several invoices in one reference -------------------------------------------------

def test_a_reference_naming_several_invoices(tmp_path):
    """Tolerance 5.00 and 0.5%, on_short partial.
    P1 2,000.00 names T1 (1,200.00) and T2 (800.00), spelt loosely: both paid in full.
    P2 797.00 names T3 (500.00, due 03-01) and T4 (300.00, due 03-05): 800.00 open, 3.00
       short <= min(5.00, 0.5% x 800.00 = 4.00): T3 (earlier due) gets 500.00, T4 gets
       297.00 and the 3.00 written off on it, the later item.
    P3 700.00 names T5 (400.00, due 03-15) then T6 (600.00, due 03-02): 300.00 short,
       beyond: T6 (oldest due) gets 600.00, T5 the other 100.00 and keeps 300.00 open."""
    s = scenario(tmp_path, matching(reference(BOTH_TOLERANCES, "partial")))
    items = [item(1, "1200.00", "2026-03-10"), item(2, "800.00", "2026-03-20"),
             item(3, "500.00", "2026-03-01"), item(4, "300.00", "2026-03-05"),
             item(5, "400.00", "2026-03-15"), item(6, "600.00", "2026-03-02")]
    payments = [pay("P1", "2000.00", "inv t 2026 0001 / T-2026-0002"),
                pay("P2", "797.00", "T-2026-0004 T-2026-0003"),
                pay("P3", "700.00", "T-2026-0005, T-2026-0006")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items, payments=payments) == 0
    cash_adds_up(s, payments)
    ref = ("by_reference", "matching.yaml:4")
    assert applications(s) == [
        ("P1", "T-2026-0001", "1200", "0", "0", *ref),
        ("P1", "T-2026-0002", "800", "0", "0", *ref),
        ("P2", "T-2026-0003", "500", "0", "0", *ref),
        ("P2", "T-2026-0004", "297", "3", "0", *ref),
        ("P3", "T-2026-0006", "600", "0", "0", *ref),
        ("P3", "T-2026-0005", "100", "0", "0", *ref)]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "2000", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "1200", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "800", "C1"),
        ("JE-PAY-P2-20260302", "1200", "797", "0", "C1"),
        ("JE-PAY-P2-20260302", "1400", "0", "500", "C1"),
        ("JE-PAY-P2-20260302", "1400", "0", "300", "C1"),
        ("JE-PAY-P2-20260302", "2400", "3", "0", "C1"),
        ("JE-PAY-P3-20260302", "1200", "700", "0", "C1"),
        ("JE-PAY-P3-20260302", "1400", "0", "100", "C1"),
        ("JE-PAY-P3-20260302", "1400", "0", "600", "C1")]
    assert problems(s) == [("info", "PARTIAL_PAYMENT", "P3")]
    assert open_items(s) == [
        ("T-2026-0001", D("0"), day(NIGHT)), ("T-2026-0002", D("0"), day(NIGHT)),
        ("T-2026-0003", D("0"), day(NIGHT)), ("T-2026-0004", D("0"), day(NIGHT)),
        ("T-2026-0005", D("300"), None), ("T-2026-0006", D("0"), day(NIGHT))]


# --- 5: amount ----------------------------------------------------------------------------

AMOUNT_ITEMS = [item(1, "300.00", "2026-03-10"), item(2, "450.00", "2026-03-15"),
                item(3, "450.00", "2026-03-05")]


def test_amount_matches_a_unique_item_and_raises_a_tie(tmp_path):
    """Amount, tolerance 0.50, tie_break exception. P1 300.00 fits only T1 (300.00).
    P2 449.80 fits T2 and T3 (450.00 each, 0.20 short): AMOUNT_AMBIGUOUS, nothing applied,
    449.80 unapplied on C1 (Dr 1200 / Cr 1590 449.80)."""
    s = scenario(tmp_path, matching(amount("{absolute: 0.50}", "exception")))
    payments = [pay("P1", "300.00"), pay("P2", "449.80")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=AMOUNT_ITEMS,
                   payments=payments) == 0
    assert applications(s) == [
        ("P1", "T-2026-0001", "300", "0", "0", "by_amount", "matching.yaml:4"),
        ("P2", None, "449.8", "0", "0", "by_amount", "matching.yaml:4")]
    cash_adds_up(s, payments)
    (problem,) = s.rows("exceptions")
    assert (problem["severity"], problem["code"], problem["entity_id"]) == (
        "warning", "AMOUNT_AMBIGUOUS", "P2")
    assert [c["invoice_id"] for c in details(problem)["candidates"]] == [
        "T-2026-0003", "T-2026-0002"]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "300", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "300", "C1"),
        ("JE-PAY-P2-20260302", "1200", "449.8", "0", "C1"),
        ("JE-PAY-P2-20260302", "1590", "0", "449.8", "C1")]
    assert open_items(s) == [("T-2026-0001", D("0"), day(NIGHT)),
                             ("T-2026-0002", D("450"), None), ("T-2026-0003", D("450"), None)]
    assert unapplied(s) == [("P2", "C1", "EUR", D("449.8"), None)]


def test_amount_tie_break_oldest_takes_the_earliest_due_date(tmp_path):
    """tie_break oldest: P2 449.80 goes to T3 (due 03-05, before T2's 03-15): applied
    449.80, written off 0.20. Dr 1200 449.80 + Dr 2400 0.20 = Cr 1400 450.00."""
    s = scenario(tmp_path, matching(amount("{absolute: 0.50}", "oldest")))
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=AMOUNT_ITEMS,
                   payments=[pay("P2", "449.80")]) == 0
    assert applications(s) == [
        ("P2", "T-2026-0003", "449.8", "0.2", "0", "by_amount", "matching.yaml:4")]
    assert payment_journal(s) == [
        ("JE-PAY-P2-20260302", "1200", "449.8", "0", "C1"),
        ("JE-PAY-P2-20260302", "1400", "0", "450", "C1"),
        ("JE-PAY-P2-20260302", "2400", "0.2", "0", "C1")]
    assert problems(s) == []
    assert open_items(s) == [("T-2026-0001", D("300"), None), ("T-2026-0002", D("450"), None),
                             ("T-2026-0003", D("0"), day(NIGHT))]


# --- 6: combination -----------------------------------------------------------------------

def test_combination_matches_a_unique_set_and_refuses_two(tmp_path):
    """Strategies reference, amount (exact), combination (max 3 items, exact).
    C1 holds 100.00, 250.50, 49.50, 75.00, 980.00; P1 400.00: no single item; of the sets
    of up to three only 100.00 + 250.50 + 49.50 = 400.00 (75.00 + 250.50 = 325.50,
    75.00 + 100.00 + 250.50 = 425.50, 49.50 + 75.00 + 250.50 = 375.00, ...): matched.
    C2 holds 120.00, 180.00, 130.00, 170.00; P2 300.00 = 120 + 180 = 130 + 170: two sets,
    so no match: PAYMENT_UNMATCHED saying why, 300.00 unapplied on C2."""
    s = scenario(tmp_path, matching(reference(), amount(), combination(3)))
    items = [item(1, "100.00", "2026-03-01"), item(2, "250.50", "2026-03-02"),
             item(3, "49.50", "2026-03-03"), item(4, "75.00", "2026-03-04"),
             item(5, "980.00", "2026-03-05"),
             item(6, "120.00", "2026-03-01", "C2"), item(7, "180.00", "2026-03-02", "C2"),
             item(8, "130.00", "2026-03-03", "C2"), item(9, "170.00", "2026-03-04", "C2")]
    payments = [pay("P1", "400.00"), pay("P2", "300.00", customer="C2")]
    assert s.night(NIGHT, customers=[CUSTOMER, C2], opening_items=items,
                   payments=payments) == 0
    cash_adds_up(s, payments)
    comb = ("by_combination", "matching.yaml:10")
    assert applications(s) == [
        ("P1", "T-2026-0001", "100", "0", "0", *comb),
        ("P1", "T-2026-0002", "250.5", "0", "0", *comb),
        ("P1", "T-2026-0003", "49.5", "0", "0", *comb),
        ("P2", None, "300", "0", "0", None, "matching.yaml:3")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "400", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "100", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "250.5", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "49.5", "C1"),
        ("JE-PAY-P2-20260302", "1200", "300", "0", "C2"),
        ("JE-PAY-P2-20260302", "1590", "0", "300", "C2")]
    (problem,) = s.rows("exceptions")
    assert (problem["severity"], problem["code"], problem["entity_id"]) == (
        "warning", "PAYMENT_UNMATCHED", "P2")
    assert details(problem)["why"] == (
        "there is no reference; by_combination found more than one set: "
        "T-2026-0006, T-2026-0007 and T-2026-0008, T-2026-0009")
    assert [i[0] for i in open_items(s) if i[2] is not None] == [
        "T-2026-0001", "T-2026-0002", "T-2026-0003"]
    assert unapplied(s) == [("P2", "C2", "EUR", D("300"), None)]


# --- 7: unidentified payers ---------------------------------------------------------------

def test_unidentified_payers(tmp_path):
    """P1 500.00 without customer or reference: only a reference could match it, so it is
    unapplied (no customer) with PAYMENT_UNMATCHED. P2 1,250.00 without customer but
    naming T1 (C1's, 1,200.00): matched; 1,250.00 - 1,200.00 = 50.00 stays unapplied on
    C1. Journal of P2: Dr 1200 1,250.00 / Cr 1400 1,200.00 / Cr 1590 50.00, all on C1."""
    s = scenario(tmp_path, matching(reference(), amount()))
    payments = [pay("P1", "500.00", customer=""), pay("P2", "1250.00", "T-2026-0001",
                                                      customer="")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1200.00"),
                                                               item(2, "500.00")],
                   payments=payments) == 0
    cash_adds_up(s, payments)
    assert applications(s) == [
        ("P1", None, "500", "0", "0", None, "matching.yaml:3"),
        ("P2", "T-2026-0001", "1200", "0", "0", "by_reference", "matching.yaml:4"),
        ("P2", None, "50", "0", "0", "by_reference", "matching.yaml:4")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "500", "0", None),
        ("JE-PAY-P1-20260302", "1590", "0", "500", None),
        ("JE-PAY-P2-20260302", "1200", "1250", "0", "C1"),
        ("JE-PAY-P2-20260302", "1400", "0", "1200", "C1"),
        ("JE-PAY-P2-20260302", "1590", "0", "50", "C1")]
    assert problems(s) == [("warning", "PAYMENT_UNMATCHED", "P1"),
                           ("info", "OVERPAYMENT", "P2")]
    unmatched = s.rows("exceptions")[0]
    assert details(unmatched)["why"] == (
        "the payer is unknown, so only a reference can match; there is no reference")
    assert unapplied(s) == [("P1", None, "EUR", D("500"), None),
                            ("P2", "C1", "EUR", D("50"), None)]
    assert open_items(s) == [("T-2026-0001", D("0"), day(NIGHT)),
                             ("T-2026-0002", D("500"), None)]


# --- 8: over-payment carried to the next night --------------------------------------------

def test_an_overpayment_is_carried_and_applied_on_a_later_night(tmp_path):
    """Night 1: P1 1,500.00 names T1 (1,200.00): applied 1,200.00, rest 300.00 unapplied
    on C1 (OVERPAYMENT). Dr 1200 1,500.00 / Cr 1400 1,200.00 / Cr 1590 300.00.
    Night 2: a new invoice T2 of 252.10 + 19% (47.899 -> 47.90) = 300.00; the carried
    300.00 fits it by amount: Dr 1590 300.00 / Cr 1400 300.00, no cash line; the carried
    cash is closed and no rest row is left."""
    s = scenario(tmp_path, matching(reference(), amount()))
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1200.00")],
                   payments=[pay("P1", "1500.00", "T-2026-0001")]) == 0
    assert applications(s) == [
        ("P1", "T-2026-0001", "1200", "0", "0", "by_reference", "matching.yaml:4"),
        ("P1", None, "300", "0", "0", "by_reference", "matching.yaml:4")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "1500", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "1200", "C1"),
        ("JE-PAY-P1-20260302", "1590", "0", "300", "C1")]
    (problem,) = s.rows("exceptions")
    assert (problem["severity"], problem["code"], problem["entity_id"]) == (
        "info", "OVERPAYMENT", "P1")
    assert D(details(problem)["unapplied"]) == D("300")
    assert unapplied(s) == [("P1", "C1", "EUR", D("300"), None)]

    assert s.night("2026-03-03", transactions=[line("X1", "1", "252.10")]) == 0
    assert money(s.rows("invoices"), "invoice_id", "gross_amount") == [("T-2026-0002", "300")]
    assert applications(s) == [
        ("P1", "T-2026-0002", "300", "0", "0", "by_amount", "matching.yaml:7")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260303", "1590", "300", "0", "C1"),
        ("JE-PAY-P1-20260303", "1400", "0", "300", "C1")]
    assert problems(s) == []
    assert unapplied(s) == [("P1", "C1", "EUR", D("0"), day("2026-03-03"))]
    assert open_items(s) == [("T-2026-0001", D("0"), day(NIGHT)),
                             ("T-2026-0002", D("0"), day("2026-03-03"))]


# --- 9: currency --------------------------------------------------------------------------

def test_payments_match_only_in_their_own_currency(tmp_path):
    """C1 owes T1 500.00 EUR and T2 500.00 USD. P1 500.00 USD by amount (tie_break
    exception) fits only T2: the EUR item of the same amount is no candidate, so no tie.
    P2 123.00 USD names T3 (123.00 EUR): no match by reference, nor by amount (C1's USD
    items: T2, paid by P1 tonight) -> PAYMENT_UNMATCHED, T3 untouched."""
    s = scenario(tmp_path, matching(reference(), amount()))
    items = [item(1, "500.00"), item(2, "500.00", currency="USD"), item(3, "123.00")]
    payments = [pay("P1", "500.00", currency="USD"),
                pay("P2", "123.00", "T-2026-0003", currency="USD")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items, payments=payments) == 0
    cash_adds_up(s, payments)
    assert applications(s) == [
        ("P1", "T-2026-0002", "500", "0", "0", "by_amount", "matching.yaml:7"),
        ("P2", None, "123", "0", "0", None, "matching.yaml:3")]
    assert {e["currency"] for e in s.rows("journal_entries")} == {"USD"}
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "500", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "500", "C1"),
        ("JE-PAY-P2-20260302", "1200", "123", "0", "C1"),
        ("JE-PAY-P2-20260302", "1590", "0", "123", "C1")]
    (problem,) = s.rows("exceptions")
    assert (problem["code"], problem["entity_id"]) == ("PAYMENT_UNMATCHED", "P2")
    (named,) = [c for c in details(problem)["candidates"] if c["invoice_id"] == "T-2026-0003"]
    assert named["why_not"] == "in EUR, the payment is in USD"
    assert open_items(s) == [("T-2026-0001", D("500"), None),
                             ("T-2026-0002", D("0"), day(NIGHT)),
                             ("T-2026-0003", D("123"), None)]
    assert unapplied(s) == [("P2", "C1", "USD", D("123"), None)]


# --- 10: disputes -------------------------------------------------------------------------

def test_a_disputed_item_is_matched_only_by_reference_until_resolved(tmp_path):
    """Night 1: T1 800.00 and T2 600.00 on C1. Night 2: both disputed. P1 800.00 without
    reference would fit T1 by amount, but T1 is disputed: unmatched, 800.00 unapplied.
    P2 600.00 names T2: matched by reference although disputed.
    Night 3: T1's dispute resolved: the carried 800.00 now fits T1 by amount:
    Dr 1590 800.00 / Cr 1400 800.00."""
    s = scenario(tmp_path, matching(reference(), amount()))
    assert s.night(NIGHT, customers=[CUSTOMER],
                   opening_items=[item(1, "800.00"), item(2, "600.00")]) == 0
    disputes = [{"invoice_id": f"T-2026-000{n}", "opened_on": "2026-03-03", "status": "open",
                 "reason": "damaged goods"} for n in (1, 2)]
    assert s.night("2026-03-03", disputes=disputes,
                   payments=[pay("P1", "800.00", received_on="2026-03-03"),
                             pay("P2", "600.00", "T-2026-0002", received_on="2026-03-03")]
                   ) == 0
    assert applications(s) == [
        ("P1", None, "800", "0", "0", None, "matching.yaml:3"),
        ("P2", "T-2026-0002", "600", "0", "0", "by_reference", "matching.yaml:4")]
    (problem,) = s.rows("exceptions")
    assert (problem["code"], problem["entity_id"]) == ("PAYMENT_UNMATCHED", "P1")
    (t1,) = [c for c in details(problem)["candidates"] if c["invoice_id"] == "T-2026-0001"]
    assert t1["why_not"] == "under dispute: matched only when the reference names it"
    assert open_items(s) == [("T-2026-0001", D("800"), None),
                             ("T-2026-0002", D("0"), day("2026-03-03"))]

    resolved = [{**disputes[0], "status": "resolved"}]  # the same dispute, now resolved
    assert s.night("2026-03-04", disputes=resolved) == 0
    assert applications(s) == [
        ("P1", "T-2026-0001", "800", "0", "0", "by_amount", "matching.yaml:7")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260304", "1590", "800", "0", "C1"),
        ("JE-PAY-P1-20260304", "1400", "0", "800", "C1")]
    assert open_items(s) == [("T-2026-0001", D("0"), day("2026-03-04")),
                             ("T-2026-0002", D("0"), day("2026-03-03"))]
    assert unapplied(s) == [("P1", "C1", "EUR", D("0"), day("2026-03-04"))]


# --- 11: early-payment discount -----------------------------------------------------------

DISCOUNT_TERMS = "payment_terms: {net_days: 30, discount: {percent: 2%, days: 10}}\n"


def discount_scenario(path, tolerance: str = "") -> Scenario:
    s = scenario(path, matching(reference(tolerance, "partial"), amount(tolerance)),
                 client_extra=DISCOUNT_TERMS)
    replace_accounts(s.rules, ACCOUNTS_WITH_DISCOUNT)
    return s


def test_an_early_payment_takes_the_discount_not_a_write_off(tmp_path):
    """2% within 10 days, exact tolerance. Items dated 03-01 (discount until 03-11), each
    1,000.00, discount 2% x 1,000.00 = 20.00.
    P1 980.00 names T1, received 03-05: 1,000.00 - 980.00 = 20.00 = the discount:
       applied 980.00, discount 20.00, written off 0. Dr 1200 980 + Dr 8736 20 = Cr 1400 1,000.
    P2 980.00 names T2, received 03-11 (the 10th day, still within): the same.
    P3 980.00 by amount (no reference) on T3 (C2), received 03-06: the same.
    P4 980.00 names T4, received 03-12 (day 11, too late): 20.00 short beyond the exact
       tolerance -> on_short partial: applied 980.00, 20.00 stays open."""
    s = discount_scenario(tmp_path)
    dated = {"invoice_date": "2026-03-01", "due": "2026-03-31"}
    items = [item(1, "1000.00", **dated), item(2, "1000.00", **dated),
             item(3, "1000.00", customer="C2", **dated), item(4, "1000.00", **dated)]
    payments = [pay("P1", "980.00", "T-2026-0001", received_on="2026-03-05"),
                pay("P2", "980.00", "T-2026-0002", received_on="2026-03-11"),
                pay("P3", "980.00", customer="C2", received_on="2026-03-06"),
                pay("P4", "980.00", "T-2026-0004", received_on="2026-03-12")]
    assert s.night("2026-03-12", customers=[CUSTOMER, C2], opening_items=items,
                   payments=payments) == 0
    cash_adds_up(s, payments)
    assert applications(s) == [
        ("P1", "T-2026-0001", "980", "0", "20", "by_reference", "matching.yaml:4"),
        ("P2", "T-2026-0002", "980", "0", "20", "by_reference", "matching.yaml:4"),
        ("P3", "T-2026-0003", "980", "0", "20", "by_amount", "matching.yaml:7"),
        ("P4", "T-2026-0004", "980", "0", "0", "by_reference", "matching.yaml:4")]
    journal = payment_journal(s)
    assert [j for j in journal if j[0] == "JE-PAY-P1-20260312"] == [
        ("JE-PAY-P1-20260312", "1200", "980", "0", "C1"),
        ("JE-PAY-P1-20260312", "1400", "0", "1000", "C1"),
        ("JE-PAY-P1-20260312", "8736", "20", "0", "C1")]
    assert [j for j in journal if j[0] == "JE-PAY-P4-20260312"] == [
        ("JE-PAY-P4-20260312", "1200", "980", "0", "C1"),
        ("JE-PAY-P4-20260312", "1400", "0", "980", "C1")]
    assert not any(j[1] == "2400" for j in journal)
    assert [j[1:4] for j in journal if j[1] == "8736"] == [("8736", "20", "0")] * 3
    assert problems(s) == [("info", "PARTIAL_PAYMENT", "P4")]
    assert open_items(s) == [("T-2026-0001", D("0"), day("2026-03-12")),
                             ("T-2026-0002", D("0"), day("2026-03-12")),
                             ("T-2026-0003", D("0"), day("2026-03-12")),
                             ("T-2026-0004", D("20"), None)]


def test_a_discount_and_a_write_off_together(tmp_path):
    """Tolerance 0.50. T1 1,000.00 dated 03-01; P1 979.70 names it on 03-05: 20.30 short,
    the discount takes 20.00, 0.30 <= 0.50 is written off. Applied 979.70 + 0.30 + 20.00
    = 1,000.00. Dr 1200 979.70 + Dr 2400 0.30 + Dr 8736 20.00 = Cr 1400 1,000.00."""
    s = discount_scenario(tmp_path, "{absolute: 0.50}")
    items = [item(1, "1000.00", "2026-03-31", invoice_date="2026-03-01")]
    assert s.night("2026-03-05", customers=[CUSTOMER], opening_items=items,
                   payments=[pay("P1", "979.70", "T-2026-0001", received_on="2026-03-05")]
                   ) == 0
    assert applications(s) == [
        ("P1", "T-2026-0001", "979.7", "0.3", "20", "by_reference", "matching.yaml:4")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260305", "1200", "979.7", "0", "C1"),
        ("JE-PAY-P1-20260305", "1400", "0", "1000", "C1"),
        ("JE-PAY-P1-20260305", "2400", "0.3", "0", "C1"),
        ("JE-PAY-P1-20260305", "8736", "20", "0", "C1")]
    assert problems(s) == []
    assert open_items(s) == [("T-2026-0001", D("0"), day("2026-03-05"))]



def _instalments(path, nights: list[str]) -> Scenario:
    """T1 1,000.00 dated 03-01 (2% within 10 days: 20.00); P1 500.00 names it, received
    03-03; P2 480.00 (no reference) received 03-04; P1 and P2 each come in the drop of the
    night named for it in `nights` (one night or two)."""
    s = discount_scenario(path)
    p1 = pay("P1", "500.00", "T-2026-0001", received_on="2026-03-03")
    p2 = pay("P2", "480.00", received_on="2026-03-04")
    first = {"customers": [CUSTOMER],
             "opening_items": [item(1, "1000.00", "2026-03-31", invoice_date="2026-03-01")]}
    if nights[0] == nights[1]:
        assert s.night(nights[0], **first, payments=[p1, p2]) == 0
    else:
        assert s.night(nights[0], **first, payments=[p1]) == 0
        assert s.night(nights[1], payments=[p2]) == 0
    return s


def test_a_discount_does_not_depend_on_how_the_bank_batches_instalments(tmp_path):
    """2% within 10 days on T1 1,000.00 (dated 03-01, until 03-11). P1 500.00 names T1 and
    pays it in part: 500.00 left. P2 480.00 without reference, within the 10 days.
    P1 in the drop of 03-03 and P2 in that of 03-04: T1 is paid in part, so no discount:
    by amount (exact) 480.00 is not the 500.00 open -> P2 unmatched, T1 keeps 500.00.
    Both in the drop of 03-04: the same payments, received on the same days, give the
    same subledger: an item paid in part earlier that night has no discount either."""
    apart = _instalments(tmp_path / "apart", ["2026-03-03", "2026-03-04"])
    assert open_items(apart) == [("T-2026-0001", D("500"), None)]
    assert unapplied(apart) == [("P2", "C1", "EUR", D("480"), None)]
    together = _instalments(tmp_path / "together", ["2026-03-04", "2026-03-04"])
    assert open_items(together) == open_items(apart)
    assert unapplied(together) == unapplied(apart)

# --- 12: allocation order -----------------------------------------------------------------

def test_allocation_latest_due_first(tmp_path):
    """oldest_first false, exact tolerance, partial. P1 250.00 names T1 (300.00, due 03-10)
    and T2 (200.00, due 03-20): 250.00 short, beyond; the latest due T2 is paid first:
    T2 200.00 (closed), T1 the other 50.00 (250.00 stays open)."""
    order = "allocation_order: {components: [fees, interest, principal], oldest_first: false}\n"
    s = scenario(tmp_path, matching(reference(), order=order))
    items = [item(1, "300.00", "2026-03-10"), item(2, "200.00", "2026-03-20")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items,
                   payments=[pay("P1", "250.00", "T-2026-0001 T-2026-0002")]) == 0
    assert applications(s) == [
        ("P1", "T-2026-0002", "200", "0", "0", "by_reference", "matching.yaml:5"),
        ("P1", "T-2026-0001", "50", "0", "0", "by_reference", "matching.yaml:5")]
    assert problems(s) == [("info", "PARTIAL_PAYMENT", "P1")]
    assert open_items(s) == [("T-2026-0001", D("250"), None),
                             ("T-2026-0002", D("0"), day(NIGHT))]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260302", "1200", "250", "0", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "50", "C1"),
        ("JE-PAY-P1-20260302", "1400", "0", "200", "C1")]


# --- 13: instalments in one night ---------------------------------------------------------

def test_instalments_naming_one_invoice_apply_in_order_of_receipt(tmp_path):
    """T1 1,000.00; three payments name it, exact tolerance, partial. Order: P3 (received
    03-01), then P1 and P2 (both 03-02, by id).
    P3 500.00: applied 500.00, 500.00 left. P1 300.00: applied 300.00, 200.00 left.
    P2 400.00: applied the 200.00 left, 200.00 over -> unapplied (OVERPAYMENT).
    T1 closes at exactly 0: 500 + 300 + 200 = 1,000."""
    s = scenario(tmp_path, matching(reference()))
    payments = [pay("P1", "300.00", "T-2026-0001"), pay("P2", "400.00", "T-2026-0001"),
                pay("P3", "500.00", "T-2026-0001", received_on="2026-03-01")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1000.00")],
                   payments=payments) == 0
    cash_adds_up(s, payments)
    ref = ("by_reference", "matching.yaml:4")
    assert applications(s) == [
        ("P1", "T-2026-0001", "300", "0", "0", *ref),
        ("P2", "T-2026-0001", "200", "0", "0", *ref),
        ("P2", None, "200", "0", "0", *ref),
        ("P3", "T-2026-0001", "500", "0", "0", *ref)]
    assert problems(s) == [("info", "PARTIAL_PAYMENT", "P1"), ("info", "OVERPAYMENT", "P2"),
                           ("info", "PARTIAL_PAYMENT", "P3")]
    assert open_items(s) == [("T-2026-0001", D("0"), day(NIGHT))]
    assert unapplied(s) == [("P2", "C1", "EUR", D("200"), None)]
    assert [j for j in payment_journal(s) if j[0] == "JE-PAY-P2-20260302"] == [
        ("JE-PAY-P2-20260302", "1200", "400", "0", "C1"),
        ("JE-PAY-P2-20260302", "1400", "0", "200", "C1"),
        ("JE-PAY-P2-20260302", "1590", "0", "200", "C1")]


# --- 14: a payment sent twice -------------------------------------------------------------

def test_a_payment_id_sent_again_is_rejected_and_not_applied_twice(tmp_path):
    """Night 1: P1 500.00 names T1 (1,200.00): 700.00 left. Night 2: P1 again and P2
    200.00: P1 is rejected; only P2 applies: 700.00 - 200.00 = 500.00 left."""
    s = scenario(tmp_path, matching(reference()))
    first = pay("P1", "500.00", "T-2026-0001")
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1200.00")],
                   payments=[first]) == 0
    assert open_items(s) == [("T-2026-0001", D("700"), None)]
    assert s.night("2026-03-03", payments=[first, pay("P2", "200.00", "T-2026-0001",
                                                      received_on="2026-03-03")]) == 0
    assert money(s.rows("rejects"), "source_file", "row_number", "column", "value",
                 "reason") == [("payments.csv", 1, "payment_id", "P1",
                                "payment_id P1 was already processed on 2026-03-02")]
    assert applications(s) == [
        ("P2", "T-2026-0001", "200", "0", "0", "by_reference", "matching.yaml:4")]
    assert [j[0] for j in payment_journal(s)] == ["JE-PAY-P2-20260303"] * 2
    assert open_items(s) == [("T-2026-0001", D("500"), None)]
    assert s.state("SELECT id, as_of FROM processed_ids WHERE kind = 'payment' ORDER BY id"
                   ) == [("P1", day(NIGHT)), ("P2", day("2026-03-03"))]
    # The same night again, same files and rules: nothing changes.
    assert s.night("2026-03-03", payments=[first, pay("P2", "200.00", "T-2026-0001",
                                                      received_on="2026-03-03")]) == 0
    assert open_items(s) == [("T-2026-0001", D("500"), None)]
    assert s.state("SELECT count(*) FROM runs") == [(2,)]



# --- amounts of money are whole minor units ----------------------------------------------

def test_an_amount_finer_than_the_currency_is_rejected(tmp_path):
    """10.005 EUR and 100.5 JPY are no amounts of money: rejected at ingest, never applied;
    10.00 EUR and 100 JPY are fine. Opening items are held to the same rule."""
    s = scenario(tmp_path, matching(reference()))
    payments = [pay("P1", "10.005", "T-2026-0001"), pay("P2", "100.5", currency="JPY"),
                pay("P3", "10.00", "T-2026-0001"), pay("P4", "100", currency="JPY")]
    items = [item(1, "1200.00"), item(2, "99.999")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items, payments=payments) == 0
    rejects = money(s.rows("rejects"), "source_file", "row_number", "column", "value")
    assert rejects == [("opening_items.csv", 2, "amount_open", "99.999"),
                       ("payments.csv", 1, "amount", "10.005"),
                       ("payments.csv", 2, "amount", "100.5")]
    assert "more decimal places than the currency has" in s.rows("rejects")[0]["reason"]
    assert [r[:3] for r in applications(s)] == [("P3", "T-2026-0001", "10"),
                                                ("P4", None, "100")]


# --- found in review ----------------------------------------------------------------------

def test_an_exact_item_beats_an_older_one_within_tolerance(tmp_path):
    """Tolerance 0.50. T1 100.00 (due first) and T2 100.40; P1 pays 100.40: T1 fits too
    (0.40 over), but T2 fits exactly, so T2 is paid whether tie_break is oldest or
    exception (the two are not equally close, so there is no tie)."""
    for tie_break in ("oldest", "exception"):
        s = scenario(tmp_path / tie_break, matching(amount("{absolute: 0.50}", tie_break)))
        items = [item(1, "100.00", "2026-03-01"), item(2, "100.40", "2026-03-05")]
        assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items,
                       payments=[pay("P1", "100.40")]) == 0
        assert applications(s) == [
            ("P1", "T-2026-0002", "100.4", "0", "0", "by_amount", "matching.yaml:4")]


def test_many_payments_share_out_equal_items_in_one_night(tmp_path):
    """Five payments of 50.00 and four items of 50.00 (tie_break oldest): the k-th payment
    (by receipt, then id) takes the k-th oldest item; the fifth has none left."""
    s = scenario(tmp_path, matching(amount(tie_break="oldest")))
    items = [item(n, "50.00", f"2026-03-0{n}") for n in range(1, 5)]
    payments = [pay(f"P{n}", "50.00") for n in range(5, 0, -1)]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items, payments=payments) == 0
    assert [r[:3] for r in applications(s)] == [
        ("P1", "T-2026-0001", "50"), ("P2", "T-2026-0002", "50"), ("P3", "T-2026-0003", "50"),
        ("P4", "T-2026-0004", "50"), ("P5", None, "50")]
    assert problems(s) == [("warning", "PAYMENT_UNMATCHED", "P5")]


def test_a_typo_in_an_invoice_number_names_no_invoice(tmp_path):
    """The format pads to 4 digits. 'T-2026-00010' (5 digits with a leading zero) and
    'T-2026-001' are not T-2026-0001 or T-2026-0010, so nothing is applied by reference;
    'T-2026-0001.' and 'T-2026-0010,T-2026-0001' name real numbers."""
    s = scenario(tmp_path, matching(reference()))
    items = [item(1, "100.00"), item(10, "200.00")]
    payments = [pay("P1", "100.00", "T-2026-00010"), pay("P2", "100.00", "T-2026-001"),
                pay("P3", "100.00", "see T-2026-0001."),
                pay("P4", "300.00", "T-2026-0010,T-2026-0001")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items, payments=payments) == 0
    assert [r[:3] for r in applications(s)] == [
        ("P1", None, "100"), ("P2", None, "100"), ("P3", "T-2026-0001", "100"),
        ("P4", "T-2026-0010", "200"), ("P4", None, "100")]


def test_bank_charges_are_written_off_not_taken_as_discount(tmp_path):
    """2% within 10 days (20.00 on 1,000.00), tolerance 1.00, payments within the days.
    P1 999.60 on T1: 0.40 short, nearer nothing than the discount: written off 0.40.
    P2 990.00 on T2: 10.00 short, neither about the discount (10.00 off it) nor within
       1.00: a partial payment, 10.00 stays open.
    P3 979.50 on T3: 20.50 short, 0.50 off the discount: discount 20.00, write-off 0.50."""
    s = discount_scenario(tmp_path, "{absolute: 1.00}")
    dated = {"invoice_date": "2026-03-01", "due": "2026-03-31"}
    items = [item(n, "1000.00", **dated) for n in (1, 2, 3)]
    payments = [pay("P1", "999.60", "T-2026-0001"), pay("P2", "990.00", "T-2026-0002"),
                pay("P3", "979.50", "T-2026-0003")]
    assert s.night("2026-03-05", customers=[CUSTOMER], opening_items=items,
                   payments=payments) == 0
    assert [r[:5] for r in applications(s)] == [
        ("P1", "T-2026-0001", "999.6", "0.4", "0"), ("P2", "T-2026-0002", "990", "0", "0"),
        ("P3", "T-2026-0003", "979.5", "0.5", "20")]
    assert problems(s) == [("info", "PARTIAL_PAYMENT", "P2")]


def test_a_credit_note_named_with_an_invoice_is_offset(tmp_path):
    """Night 1: a return of 100.00 + 19% gives credit note TC-2026-0001 of -119.00; T1 is
    1,190.00. Night 2: P1 pays 1,071.00 = 1,190.00 - 119.00, naming both. The credit
    note's 119.00 and the 1,071.00 settle T1; both close. Journal: Dr cash 1,071.00,
    Dr AR 119.00 (the credit note), Cr AR 1,190.00."""
    s = scenario(tmp_path, matching(reference()))
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "1190.00")],
                   transactions=[line("R1", "-1", "100.00")]) == 0
    assert s.night("2026-03-03", payments=[
        pay("P1", "1071.00", "T-2026-0001 abzgl. Gutschrift TC-2026-0001",
            received_on="2026-03-03")]) == 0
    assert applications(s) == [
        ("P1", "TC-2026-0001", "-119", "0", "0", "by_reference", "matching.yaml:4"),
        ("P1", "T-2026-0001", "1190", "0", "0", "by_reference", "matching.yaml:4")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260303", "1200", "1071", "0", "C1"),
        ("JE-PAY-P1-20260303", "1400", "0", "1190", "C1"),
        ("JE-PAY-P1-20260303", "1400", "119", "0", "C1")]
    assert open_items(s) == [("T-2026-0001", D("0"), day("2026-03-03")),
                             ("TC-2026-0001", D("0"), day("2026-03-03"))]


def test_an_old_dispute_event_sent_again_does_not_reopen_it(tmp_path):
    """Night 1: T1's dispute opened 02-20 and resolved 03-01. Night 2 sends the 02-20
    'open' event again: the dispute stays resolved, so P1 fits T1 by amount."""
    s = scenario(tmp_path, matching(amount()))
    events = [{"invoice_id": "T-2026-0001", "opened_on": "2026-02-20", "status": "open",
               "reason": "late"},
              {"invoice_id": "T-2026-0001", "opened_on": "2026-03-01", "status": "resolved",
               "reason": "late"}]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "100.00")],
                   disputes=events) == 0
    assert s.night("2026-03-03", disputes=events[:1],
                   payments=[pay("P1", "100.00", received_on="2026-03-03")]) == 0
    assert s.state("SELECT status FROM disputes") == [("resolved",)]
    assert [r[:3] for r in applications(s)] == [("P1", "T-2026-0001", "100")]


def test_cash_of_an_unknown_payer_moves_to_the_customer_the_match_finds(tmp_path):
    """Night 1: P1 1,500.00 from nobody names T-2026-0002, which does not exist yet:
    unmatched, Cr 1590 1,500.00 on no customer. Night 2 bills C1 1,000.00 + 19% =
    1,190.00 as T-2026-0002; the carried P1 names it: Dr 1590 1,190.00 (on no customer,
    where the cash was booked) / Cr 1400 1,190.00 (C1); the 310.00 left moves to C1:
    Dr 1590 310.00 (no customer) / Cr 1590 310.00 (C1)."""
    s = scenario(tmp_path, matching(reference()))
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "10.00")],
                   payments=[pay("P1", "1500.00", "T-2026-0002", customer="")]) == 0
    assert payment_journal(s) == [("JE-PAY-P1-20260302", "1200", "1500", "0", None),
                                  ("JE-PAY-P1-20260302", "1590", "0", "1500", None)]
    assert s.night("2026-03-03", transactions=[line("X1", "1", "1000.00")]) == 0
    assert [r[:3] for r in applications(s)] == [("P1", "T-2026-0002", "1190"),
                                                ("P1", None, "310")]
    assert payment_journal(s) == [
        ("JE-PAY-P1-20260303", "1590", "1190", "0", None),
        ("JE-PAY-P1-20260303", "1400", "0", "1190", "C1"),
        ("JE-PAY-P1-20260303", "1590", "310", "0", None),
        ("JE-PAY-P1-20260303", "1590", "0", "310", "C1")]
    assert unapplied(s) == [("P1", "C1", "EUR", D("310"), None)]


def test_a_partial_payment_writes_no_empty_rows(tmp_path):
    """250.00 names T1 200.00, T2 100.00, T3 100.00 (oldest first): T1 200.00, T2 50.00,
    and no row for T3, which gets nothing."""
    s = scenario(tmp_path, matching(reference()))
    items = [item(1, "200.00", "2026-03-01"), item(2, "100.00", "2026-03-02"),
             item(3, "100.00", "2026-03-03")]
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=items, payments=[
        pay("P1", "250.00", "T-2026-0001 T-2026-0002 T-2026-0003")]) == 0
    assert [r[:3] for r in applications(s)] == [("P1", "T-2026-0001", "200"),
                                                ("P1", "T-2026-0002", "50")]


def test_a_duplicate_payment_is_named_as_one(tmp_path):
    """P1 and P2 both pay T1 (100.00) naming it; P1 goes first, P2 has nothing left to
    match and its exception says T1 was settled tonight by P1, for the same amount."""
    s = scenario(tmp_path, matching(reference(), amount()))
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "100.00")],
                   payments=[pay("P1", "100.00", "T-2026-0001"),
                             pay("P2", "100.00", "T-2026-0001")]) == 0
    (problem,) = s.rows("exceptions")
    assert problem["entity_id"] == "P2"
    assert details(problem)["candidates"][0]["why_not"] == (
        "settled tonight by payment P1 for the same amount: a duplicate payment?")


def test_an_item_settled_tonight_by_two_payments_names_both_in_order(tmp_path):
    """PB (60.00, received first) and PA (40.00) settle T1 between them; PC, naming T1
    too, finds it settled tonight by PA and PB, listed in id order whatever the order of
    the applications."""
    s = scenario(tmp_path, matching(reference()))
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "100.00")],
                   payments=[pay("PB", "60.00", "T-2026-0001", received_on="2026-02-27"),
                             pay("PA", "40.00", "T-2026-0001", received_on="2026-02-28"),
                             pay("PC", "25.00", "T-2026-0001")]) == 0
    assert [r[:3] for r in applications(s)] == [("PA", "T-2026-0001", "40"),
                                                ("PB", "T-2026-0001", "60"),
                                                ("PC", None, "25")]
    (problem,) = [p for p in s.rows("exceptions") if p["code"] == "PAYMENT_UNMATCHED"]
    assert problem["entity_id"] == "PC"
    assert details(problem)["candidates"][0]["why_not"] == "settled tonight by payment PA, PB"


def test_a_dispute_of_a_rejected_opening_item_is_rejected(tmp_path):
    """T1's customer C9 is unknown: the opening item is rejected, and so is its dispute."""
    s = scenario(tmp_path, matching(reference()))
    assert s.night(NIGHT, customers=[CUSTOMER, C2],
                   opening_items=[item(1, "10.00", customer="C9")], disputes=[{"invoice_id": "T-2026-0001", "opened_on": "2026-03-01",
                              "status": "open", "reason": "x"}]) == 0
    assert money(s.rows("rejects"), "source_file", "column") == [
        ("disputes.csv", "invoice_id"), ("opening_items.csv", "customer_id")]
    assert s.state("SELECT count(*) FROM disputes") == [(0,)]


def test_invoice_numbers_with_unicode_separators(tmp_path):
    """A no-break space and an en dash, as word processors write them, are separators."""
    s = scenario(tmp_path, matching(reference()))
    assert s.night(NIGHT, customers=[CUSTOMER], opening_items=[item(1, "100.00")],
                   payments=[pay("P1", "100.00", "Rechnung T\u00a02026\u20130001")]) == 0
    assert [r[:3] for r in applications(s)] == [("P1", "T-2026-0001", "100")]


# --- ruledger check on matching.yaml, and a client without one -----------------------------

def test_check_reports_reused_ids_and_knobs_without_effect(tmp_path):
    """E502: two strategies with one id (an error); W503: on_short on an amount strategy,
    which never sees a shortfall beyond its tolerance (a warning)."""
    import pytest

    from engine.config.ruleset import load_ruleset
    from engine.errors import RuleError

    twice = scenario(tmp_path / "twice", matching(reference(), reference()))
    with pytest.raises(RuleError) as exc:
        load_ruleset(twice.rules)
    assert [(d.code, d.ref.line) for d in exc.value.diagnostics] == [("E502", 7)]
    no_effect = amount().replace("    tie_break", "    on_short: partial\n    tie_break")
    warned = scenario(tmp_path / "warned", matching(no_effect))
    assert [(d.code, d.ref.line) for d in load_ruleset(warned.rules).warnings] == [
        ("W503", 4)]


def test_payments_without_a_matching_yaml_refuse_the_drop(tmp_path, capsys):
    s = Scenario(tmp_path, tax=TAX)
    assert s.night(NIGHT, customers=[CUSTOMER], payments=[pay("P1", "10.00")]) == 3
    assert "error[E322]: the drop has 1 payments but" in capsys.readouterr().err
    assert not (tmp_path / "out" / "testco" / NIGHT).exists()
