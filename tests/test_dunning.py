"""Dunning, through real runs over several nights, with the arithmetic written out by hand.

The ladder of most tests (dunning.yaml, one level a line, so its rule_refs are lines 9,
10 and 11): grace_days 3, min_amount 50 EUR, min_days_between 7, intercompany customers
excluded.

    level 1 reminder  after_days  7: reached at  7 + 3 = 10 days past due; email,
                      template reminder_{customer.country}, no fee, no interest
    level 2 letter    after_days 21: reached at 24 days; fee 5.00 fixed, interest 9.12%
                      act/365
    level 3 final     after_days 35: reached at 38 days; call, fee 2% of the amount dunned
                      capped at 30.00, interest 9.12% act/360, credit hold

Open items come from `opening_items` on the first night (ids T-2026-0001, ...; a
level and a last notice date where a test seeds them). Days past due = as-of minus due
date. Interest = amount open x 9.12% x days / 365 (or 360), rounded half-up to the cent.
Every fee and interest journal entry is checked to balance, per entry and currency.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ROOT, STANDARD_TAX
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scenario import CUSTOMER, Scenario, details, money

TAX = STANDARD_TAX

REMINDER = ('{id: reminder, level: 1, after_days: 7, action: email, '
            'template: "reminder_{customer.country}"}')
LETTER = ("{id: letter, level: 2, after_days: 21, action: letter, template: letter_2, "
          "fee: {fixed: 5.00}, interest: {annual_rate: 9.12%}}")
FINAL = ("{id: final, level: 3, after_days: 35, action: call, template: final_3, "
         "fee: {percent: 2%, cap: 30.00}, interest: {annual_rate: 9.12%, day_basis: act/360}, "
         "credit_hold: true}")
LEVELS = (REMINDER, LETTER, FINAL)
REACHED_AT = {1: 10, 2: 24, 3: 38}  # after_days + grace_days

# The last four columns of a notice row, per level (level 1 by the customer's country).
R1_DE = ("email", "reminder_DE", "reminder", "dunning.yaml:9")
R1_FR = ("email", "reminder_FR", "reminder", "dunning.yaml:9")
R2 = ("letter", "letter_2", "letter", "dunning.yaml:10")
R3 = ("call", "final_3", "final", "dunning.yaml:11")

MATCHING = """\
kind: matching
version: 1
strategies:
  - id: by_reference
    type: reference
    on_short: partial
"""

CREDIT = """\
kind: credit
version: 1
default_limit: 100000
decisions:
  - {id: over, min_utilization: 100%, decision: hold}
  - {id: near, min_utilization: 80%, decision: warn}
otherwise: ok
"""

D = Decimal
NOTICE_COLUMNS = ("notice_id", "customer_id", "invoice_id", "level", "days_overdue",
                  "amount_open", "fee_amount", "interest_amount", "action", "template",
                  "rule_id", "rule_ref")


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def ladder(grace: int = 3, min_amount: str = "50", between: int = 7,
           interest_from: str = "due_date", levels: tuple[str, ...] = LEVELS) -> str:
    """A dunning.yaml whose levels start on line 9, one a line."""
    head = (f"kind: dunning\nversion: 1\ngrace_days: {grace}\nmin_amount: {min_amount}\n"
            f"min_days_between: {between}\ninterest_from: {interest_from}\n"
            "exclude: 'customer.segment == \"intercompany\"'\nlevels:\n")
    return head + "".join(f"  - {lv}\n" for lv in levels)


def scenario(path: Path, dunning: str | None = None, **files: str) -> Scenario:
    path.mkdir(parents=True, exist_ok=True)
    return Scenario(path, tax=TAX, **{"dunning.yaml": dunning or ladder(), **files})


def customer(cid: str, country: str = "DE", **extra: str) -> dict:
    return {**CUSTOMER, "customer_id": cid, "name": f"Customer {cid}", "country": country,
            **extra}


def item(n: int, due: str, amount: str, customer_id: str = "C1", level: int | None = None,
         last: str = "") -> dict:
    """Opening item T-2026-000n in EUR; `level` and `last` seed its dunning history."""
    row = {"invoice_id": f"T-2026-{n:04d}", "customer_id": customer_id,
           "invoice_date": "2025-10-01", "due_date": due, "currency": "EUR",
           "amount_open": amount}
    if level is not None:
        row.update(dunning_level=str(level), last_dunned_on=last)
    return row


def pay(payment_id: str, amount: str, reference: str, received_on: str,
        customer_id: str = "C1") -> dict:
    return {"payment_id": payment_id, "received_on": received_on, "amount": amount,
            "currency": "EUR", "customer_id": customer_id, "reference": reference}


def notices(s: Scenario, as_of: str | None = None) -> list[tuple]:
    return money(s.rows("dunning_notices", as_of), *NOTICE_COLUMNS)


def levels(s: Scenario) -> list[tuple]:
    """Every invoice's (invoice_id, dunning_level, last_dunned_on, amount_open)."""
    return s.state("SELECT invoice_id, dunning_level, last_dunned_on, amount_open "
                   "FROM open_items WHERE item_type NOT IN ('fee', 'interest') "
                   "ORDER BY invoice_id")


def charges(s: Scenario) -> list[tuple]:
    """Every fee and interest item: (id, type, customer, due date, amount open, level)."""
    return s.state("SELECT invoice_id, item_type, customer_id, due_date, amount_open, "
                   "dunning_level FROM open_items WHERE item_type IN ('fee', 'interest') "
                   "ORDER BY invoice_id")


def charge_journal(s: Scenario, as_of: str | None = None) -> list[tuple]:
    """The night's fee and interest entries as (entry_id, account, debit, credit), after
    checking that each balances per currency, is dated the night, and posts its item."""
    entries = [e for e in s.rows("journal_entries", as_of)
               if e["document_type"] in ("fee", "interest")]
    sides: dict[tuple, list[Decimal]] = defaultdict(lambda: [D(0), D(0)])
    for e in entries:
        sides[e["entry_id"], e["currency"]][0] += e["debit"]
        sides[e["entry_id"], e["currency"]][1] += e["credit"]
        assert e["entry_date"] == day(as_of or s.as_of)
        assert e["entry_id"] == "JE-" + e["document_id"]
    for key, (debit, credit) in sides.items():
        assert debit == credit, f"entry {key} does not balance: {debit} != {credit}"
    return money(entries, "entry_id", "account", "debit", "credit")


def dunning_problems(s: Scenario, as_of: str | None = None) -> list[tuple]:
    return [(p["severity"], p["code"], p["entity_id"], p["message"])
            for p in s.rows("exceptions", as_of) if p["stage"] == "dunning"]


def blocked(cid: str, last: str, ago: int) -> tuple:
    return ("info", "DUNNING_BLOCKED", cid,
            f"customer {cid} has items due for a higher level, but its last notice was on "
            f"{last}, {ago} day{'s' if ago != 1 else ''} ago; min_days_between is 7")


# --- levels ---------------------------------------------------------------------------

def test_a_level_is_reached_when_days_past_due_equal_after_days_plus_grace(tmp_path):
    """Night 03-10 (one customer per item, so min_days_between never interferes):
    C1 T1 100.00 due 03-01: 9 days < 10: stays at 0, no notice.
    C2 T2 100.00 due 02-28: 10 days = 7 + 3: level 1, template reminder_FR (C2 is French).
    C3 T3 200.00 at level 1 since 02-01, due 02-15: 23 days < 24: stays at 1.
    C4 T4 1,000.00 at level 1 since 02-01, due 02-14: 24 days = 21 + 3: level 2, fee 5.00,
       interest 1,000.00 x 9.12% x 24 / 365 = 2,188.80 / 365 = 5.9967 -> 6.00.
    Night 03-11: T1 10 days: level 1. T3 24 days: level 2, fee 5.00, interest
    200.00 x 9.12% x 24 / 365 = 437.76 / 365 = 1.1993 -> 1.20. T2 (11 days) and T4
    (25 days) reach nothing new: no rows."""
    s = scenario(tmp_path)
    customers = [customer("C1"), customer("C2", "FR"), customer("C3"), customer("C4")]
    items = [item(1, "2026-03-01", "100.00"), item(2, "2026-02-28", "100.00", "C2"),
             item(3, "2026-02-15", "200.00", "C3", 1, "2026-02-01"),
             item(4, "2026-02-14", "1000.00", "C4", 1, "2026-02-01")]
    assert s.night("2026-03-10", customers=customers, opening_items=items) == 0
    assert notices(s) == [
        ("DN-20260310-C2-1-EUR", "C2", "T-2026-0002", 1, 10, "100", "0", "0", *R1_FR),
        ("DN-20260310-C4-2-EUR", "C4", "T-2026-0004", 2, 24, "1000", "5", "6", *R2)]
    assert charges(s) == [
        ("DN-20260310-C4-2-EUR-FEE", "fee", "C4", day("2026-03-10"), D("5"), 0),
        ("T-2026-0004-INT-20260310", "interest", "C4", day("2026-03-10"), D("6"), 0)]
    assert charge_journal(s) == [
        ("JE-DN-20260310-C4-2-EUR-FEE", "1400", "5", "0"),
        ("JE-DN-20260310-C4-2-EUR-FEE", "2700", "0", "5"),
        ("JE-T-2026-0004-INT-20260310", "1400", "6", "0"),
        ("JE-T-2026-0004-INT-20260310", "2650", "0", "6")]
    assert dunning_problems(s) == []

    assert s.night("2026-03-11") == 0
    assert notices(s) == [
        ("DN-20260311-C1-1-EUR", "C1", "T-2026-0001", 1, 10, "100", "0", "0", *R1_DE),
        ("DN-20260311-C3-2-EUR", "C3", "T-2026-0003", 2, 24, "200", "5", "1.2", *R2)]
    assert charge_journal(s) == [
        ("JE-DN-20260311-C3-2-EUR-FEE", "1400", "5", "0"),
        ("JE-DN-20260311-C3-2-EUR-FEE", "2700", "0", "5"),
        ("JE-T-2026-0003-INT-20260311", "1400", "1.2", "0"),
        ("JE-T-2026-0003-INT-20260311", "2650", "0", "1.2")]
    assert levels(s) == [
        ("T-2026-0001", 1, day("2026-03-11"), D("100")),
        ("T-2026-0002", 1, day("2026-03-10"), D("100")),
        ("T-2026-0003", 2, day("2026-03-11"), D("200")),
        ("T-2026-0004", 2, day("2026-03-10"), D("1000"))]


def test_one_level_a_night_and_min_days_between_per_customer(tmp_path):
    """C1: T1 1,000.00 due 2025-12-31 at level 0; T2 200.00 due 02-20.
    03-01: T1 is 60 days past due, enough for level 3, but rises one level: 1. T2 9 days.
    03-02: T2 is 10 days past due (level 1) and T1 could go to 2, but C1's last notice
      was 03-01, 1 day ago < 7: no notice of any level, a DUNNING_BLOCKED info.
    03-07: 6 days < 7: still blocked.
    03-08: exactly 7 days: allowed. T1 (67 days) rises to 2, not 3: fee 5.00, interest
      1,000.00 x 9.12% x 67 / 365 = 6,110.40 / 365 = 16.7408 -> 16.74. T2 (16 days) gets
      level 1 on a notice of its own."""
    s = scenario(tmp_path)
    items = [item(1, "2025-12-31", "1000.00"), item(2, "2026-02-20", "200.00")]
    assert s.night("2026-03-01", customers=[customer("C1")], opening_items=items) == 0
    assert notices(s) == [
        ("DN-20260301-C1-1-EUR", "C1", "T-2026-0001", 1, 60, "1000", "0", "0", *R1_DE)]
    assert charges(s) == [] and charge_journal(s) == []

    assert s.night("2026-03-02") == 0
    assert notices(s) == []
    (problem,) = s.rows("exceptions")
    assert (problem["severity"], problem["code"], problem["stage"], problem["entity_type"],
            problem["entity_id"], problem["rule_id"], problem["rule_ref"]) == (
        "info", "DUNNING_BLOCKED", "dunning", "customer", "C1", None, "dunning.yaml:1")
    assert details(problem) == {"customer_id": "C1", "last_notice": "2026-03-01"}

    assert s.night("2026-03-07") == 0
    assert notices(s) == []
    assert dunning_problems(s) == [blocked("C1", "2026-03-01", 6)]
    assert levels(s) == [("T-2026-0001", 1, day("2026-03-01"), D("1000")),
                         ("T-2026-0002", 0, None, D("200"))]

    assert s.night("2026-03-08") == 0
    assert notices(s) == [
        ("DN-20260308-C1-1-EUR", "C1", "T-2026-0002", 1, 16, "200", "0", "0", *R1_DE),
        ("DN-20260308-C1-2-EUR", "C1", "T-2026-0001", 2, 67, "1000", "5", "16.74", *R2)]
    assert dunning_problems(s) == []
    assert levels(s) == [("T-2026-0001", 2, day("2026-03-08"), D("1000")),
                         ("T-2026-0002", 1, day("2026-03-08"), D("200"))]
    assert charges(s) == [
        ("DN-20260308-C1-2-EUR-FEE", "fee", "C1", day("2026-03-08"), D("5"), 0),
        ("T-2026-0001-INT-20260308", "interest", "C1", day("2026-03-08"), D("16.74"), 0)]


def test_opening_items_seed_the_level_and_the_last_notice(tmp_path):
    """C1 T1 600.00 due 01-01, carried over at level 2, last dunned 02-25. C2 T2 900.00 due
    2025-11-01 at level 3 (the top), last dunned 01-01.
    03-03: T1 could rise (61 days >= 38) but its last notice is 6 days old: blocked.
      T2 has no higher level to reach: nothing, not even an info.
    03-04: 7 days after 02-25: T1 to level 3; fee 2% x 600.00 = 12.00; interest from the
      due date (none charged here yet): 600.00 x 9.12% x 62 / 360 = 3,392.64 / 360 =
      9.424 -> 9.42."""
    s = scenario(tmp_path)
    items = [item(1, "2026-01-01", "600.00", "C1", 2, "2026-02-25"),
             item(2, "2025-11-01", "900.00", "C2", 3, "2026-01-01")]
    assert s.night("2026-03-03", customers=[customer("C1"), customer("C2")],
                   opening_items=items) == 0
    assert notices(s) == []
    assert dunning_problems(s) == [blocked("C1", "2026-02-25", 6)]
    assert levels(s) == [("T-2026-0001", 2, day("2026-02-25"), D("600")),
                         ("T-2026-0002", 3, day("2026-01-01"), D("900"))]

    assert s.night("2026-03-04") == 0
    assert notices(s) == [
        ("DN-20260304-C1-3-EUR", "C1", "T-2026-0001", 3, 62, "600", "12", "9.42", *R3)]
    assert dunning_problems(s) == []
    assert levels(s) == [("T-2026-0001", 3, day("2026-03-04"), D("600")),
                         ("T-2026-0002", 3, day("2026-01-01"), D("900"))]
    assert charge_journal(s) == [
        ("JE-DN-20260304-C1-3-EUR-FEE", "1400", "12", "0"),
        ("JE-DN-20260304-C1-3-EUR-FEE", "2700", "0", "12"),
        ("JE-T-2026-0001-INT-20260304", "1400", "9.42", "0"),
        ("JE-T-2026-0001-INT-20260304", "2650", "0", "9.42")]


# --- who is dunned ----------------------------------------------------------------------

def test_min_amount_is_the_customers_total_overdue(tmp_path):
    """03-16, everything 15 days past due (level 1):
    C1: 20.00 + 29.99 = 49.99 < 50: not dunned, no exception.
    C2: 20.00 + 30.00 = 50.00, exactly min_amount: dunned, one notice listing both.
    C3: 45.00 overdue and 100.00 not yet due: 45.00 < 50: not dunned.
    03-17: nothing changed for C1 and C3 (49.99 and 45.00 still): still no notice."""
    s = scenario(tmp_path)
    items = [item(1, "2026-03-01", "20.00"), item(2, "2026-03-01", "29.99"),
             item(3, "2026-03-01", "20.00", "C2"), item(4, "2026-03-01", "30.00", "C2"),
             item(5, "2026-03-01", "45.00", "C3"), item(6, "2026-03-20", "100.00", "C3")]
    customers = [customer("C1"), customer("C2"), customer("C3")]
    assert s.night("2026-03-16", customers=customers, opening_items=items) == 0
    assert notices(s) == [
        ("DN-20260316-C2-1-EUR", "C2", "T-2026-0003", 1, 15, "20", "0", "0", *R1_DE),
        ("DN-20260316-C2-1-EUR", "C2", "T-2026-0004", 1, 15, "30", "0", "0", *R1_DE)]
    assert dunning_problems(s) == []
    assert s.night("2026-03-17") == 0
    assert notices(s) == [] and dunning_problems(s) == []
    assert [lv[:2] for lv in levels(s)] == [("T-2026-0001", 0), ("T-2026-0002", 0),
                                            ("T-2026-0003", 1), ("T-2026-0004", 1),
                                            ("T-2026-0005", 0), ("T-2026-0006", 0)]


def test_fee_and_interest_items_count_toward_min_amount(tmp_path):
    """C1: T5 45.00 due 03-05; T6 1,000.00 due 01-24 at level 1 since 02-01.
    C2: T7 45.00 due 03-05 alone, the control.
    03-10: T6 45 days: level 2, fee 5.00, interest 1,000.00 x 9.12% x 45 / 365 =
      4,104.00 / 365 = 11.2438 -> 11.24. T5 is 5 days past due: nothing.
    03-17: C1 pays T6 in full (P1 1,000.00 naming it): closed. C1's overdue is now
      T5 45.00 + fee 5.00 + interest 11.24 = 61.24 >= 50 (the charges, due 03-10, are
      7 days past due): T5 (12 days) gets level 1. Without the charges it would be 45.00.
      C2's 45.00 < 50: not dunned."""
    s = scenario(tmp_path, **{"matching.yaml": MATCHING})
    items = [item(5, "2026-03-05", "45.00"), item(6, "2026-01-24", "1000.00", "C1", 1,
                                                  "2026-02-01"),
             item(7, "2026-03-05", "45.00", "C2")]
    assert s.night("2026-03-10", customers=[customer("C1"), customer("C2")],
                   opening_items=items) == 0
    assert notices(s) == [
        ("DN-20260310-C1-2-EUR", "C1", "T-2026-0006", 2, 45, "1000", "5", "11.24", *R2)]
    assert s.night("2026-03-17", payments=[pay("P1", "1000.00", "T-2026-0006",
                                               "2026-03-17")]) == 0
    assert notices(s) == [
        ("DN-20260317-C1-1-EUR", "C1", "T-2026-0005", 1, 12, "45", "0", "0", *R1_DE)]
    assert levels(s) == [("T-2026-0005", 1, day("2026-03-17"), D("45")),
                         ("T-2026-0006", 2, day("2026-03-10"), D("0")),
                         ("T-2026-0007", 0, None, D("45"))]


def test_disputed_and_excluded_items_are_never_dunned(tmp_path):
    """C1: T1 500.00 due 01-15 under an open dispute from 03-01; T2 100.00 due 02-20.
    C2 (segment intercompany, excluded): T3 5,000.00 due 2025-12-01.
    03-02: T2 (10 days) level 1, alone on C1's notice; C1's overdue without the disputed
      item is 100.00 >= 50. T1 and T3 nowhere.
    03-09: T1 still disputed, T2 (17 days) reaches nothing new: no notice. T3 nowhere.
    03-10: T1's dispute is resolved: T1 (54 days) rises one level, to 1 (last notice
      03-02, 8 days ago). T3 still nowhere: level 0, never dunned."""
    s = scenario(tmp_path)
    items = [item(1, "2026-01-15", "500.00"), item(2, "2026-02-20", "100.00"),
             item(3, "2025-12-01", "5000.00", "C2")]
    dispute = {"invoice_id": "T-2026-0001", "opened_on": "2026-03-01", "status": "open",
               "reason": "damaged goods"}
    assert s.night("2026-03-02", customers=[customer("C1"), customer("C2",
                                                                     segment="intercompany")],
                   opening_items=items, disputes=[dispute]) == 0
    assert notices(s) == [
        ("DN-20260302-C1-1-EUR", "C1", "T-2026-0002", 1, 10, "100", "0", "0", *R1_DE)]
    assert s.night("2026-03-09") == 0
    assert notices(s) == [] and dunning_problems(s) == []
    assert s.night("2026-03-10", disputes=[{**dispute, "status": "resolved"}]) == 0
    assert notices(s) == [
        ("DN-20260310-C1-1-EUR", "C1", "T-2026-0001", 1, 54, "500", "0", "0", *R1_DE)]
    assert levels(s) == [("T-2026-0001", 1, day("2026-03-10"), D("500")),
                         ("T-2026-0002", 1, day("2026-03-02"), D("100")),
                         ("T-2026-0003", 0, None, D("5000"))]
    assert charges(s) == []


# --- notices and fees -------------------------------------------------------------------

def test_one_notice_per_customer_and_level_with_the_fee_on_its_first_row(tmp_path):
    """03-10. C1, all at level 1 since 02-01 except T4:
      T1 100.00 due 02-01 (37 days), T2 200.00 and T3 300.00 due 01-20 (49 days): all to
      level 2 on one notice, ordered by due date then invoice id: T2, T3, T1. The fixed
      fee 5.00 is on T2 only. Interest per item, act/365:
        T2 200.00 x 9.12% x 49 / 365 =   893.76 / 365 = 2.4487 -> 2.45
        T3 300.00 x 9.12% x 49 / 365 = 1,340.64 / 365 = 3.6730 -> 3.67
        T1 100.00 x 9.12% x 37 / 365 =   337.44 / 365 = 0.9245 -> 0.92
      T4 100.00 due 02-27 (11 days, level 0): level 1, on a notice of its own.
    C2, level 2 since 02-01: T5 800.00 due 01-20 (49 days), T6 434.56 due 01-31 (38 days):
      one level 3 notice; fee 2% x (800.00 + 434.56 = 1,234.56) = 24.6912 -> 24.69 on T5.
      Interest act/360: T5 800.00 x 9.12% x 49 / 360 = 3,575.04 / 360 = 9.9307 -> 9.93;
      T6 434.56 x 9.12% x 38 / 360 = 1,506.0111 / 360 = 4.1834 -> 4.18.
    C3, level 2 since 02-01: T7 2,000.00 due 01-31 (38 days): 2% = 40.00 above the cap:
      30.00. Interest 2,000.00 x 9.12% x 38 / 360 = 6,931.20 / 360 = 19.2533 -> 19.25.
    03-11: nothing is sent. C2 and C3 are at the top level. C1's T1 (38 days), T2 and T3
    (50 days) could reach level 3, but C1's last notice was yesterday: blocked."""
    s = scenario(tmp_path)
    lv = {"level": 1, "last": "2026-02-01"}
    lv2 = {"level": 2, "last": "2026-02-01"}
    items = [item(1, "2026-02-01", "100.00", **lv), item(2, "2026-01-20", "200.00", **lv),
             item(3, "2026-01-20", "300.00", **lv), item(4, "2026-02-27", "100.00"),
             item(5, "2026-01-20", "800.00", "C2", **lv2),
             item(6, "2026-01-31", "434.56", "C2", **lv2),
             item(7, "2026-01-31", "2000.00", "C3", **lv2)]
    assert s.night("2026-03-10", customers=[customer(c) for c in ("C1", "C2", "C3")],
                   opening_items=items) == 0
    assert notices(s) == [
        ("DN-20260310-C1-1-EUR", "C1", "T-2026-0004", 1, 11, "100", "0", "0", *R1_DE),
        ("DN-20260310-C1-2-EUR", "C1", "T-2026-0002", 2, 49, "200", "5", "2.45", *R2),
        ("DN-20260310-C1-2-EUR", "C1", "T-2026-0003", 2, 49, "300", "0", "3.67", *R2),
        ("DN-20260310-C1-2-EUR", "C1", "T-2026-0001", 2, 37, "100", "0", "0.92", *R2),
        ("DN-20260310-C2-3-EUR", "C2", "T-2026-0005", 3, 49, "800", "24.69", "9.93", *R3),
        ("DN-20260310-C2-3-EUR", "C2", "T-2026-0006", 3, 38, "434.56", "0", "4.18", *R3),
        ("DN-20260310-C3-3-EUR", "C3", "T-2026-0007", 3, 38, "2000", "30", "19.25", *R3)]
    night = day("2026-03-10")
    assert charges(s) == [
        ("DN-20260310-C1-2-EUR-FEE", "fee", "C1", night, D("5"), 0),
        ("DN-20260310-C2-3-EUR-FEE", "fee", "C2", night, D("24.69"), 0),
        ("DN-20260310-C3-3-EUR-FEE", "fee", "C3", night, D("30"), 0),
        ("T-2026-0001-INT-20260310", "interest", "C1", night, D("0.92"), 0),
        ("T-2026-0002-INT-20260310", "interest", "C1", night, D("2.45"), 0),
        ("T-2026-0003-INT-20260310", "interest", "C1", night, D("3.67"), 0),
        ("T-2026-0005-INT-20260310", "interest", "C2", night, D("9.93"), 0),
        ("T-2026-0006-INT-20260310", "interest", "C2", night, D("4.18"), 0),
        ("T-2026-0007-INT-20260310", "interest", "C3", night, D("19.25"), 0)]
    journal = charge_journal(s)
    assert [e for e in journal if e[1] != "1400"] == [
        ("JE-DN-20260310-C1-2-EUR-FEE", "2700", "0", "5"),
        ("JE-DN-20260310-C2-3-EUR-FEE", "2700", "0", "24.69"),
        ("JE-DN-20260310-C3-3-EUR-FEE", "2700", "0", "30"),
        ("JE-T-2026-0001-INT-20260310", "2650", "0", "0.92"),
        ("JE-T-2026-0002-INT-20260310", "2650", "0", "2.45"),
        ("JE-T-2026-0003-INT-20260310", "2650", "0", "3.67"),
        ("JE-T-2026-0005-INT-20260310", "2650", "0", "9.93"),
        ("JE-T-2026-0006-INT-20260310", "2650", "0", "4.18"),
        ("JE-T-2026-0007-INT-20260310", "2650", "0", "19.25")]
    assert len(journal) == 18 and {e[1] for e in journal[::2]} == {"1400"}
    memo = {e["document_id"]: (e["memo"], e["customer_id"], e["rule_id"], e["rule_ref"])
            for e in s.rows("journal_entries")}
    assert memo["DN-20260310-C2-3-EUR-FEE"] == (
        "fee DN-20260310-C2-3-EUR", "C2", "final", "dunning.yaml:11")
    assert memo["T-2026-0002-INT-20260310"] == (
        "interest DN-20260310-C1-2-EUR", "C1", "letter", "dunning.yaml:10")

    assert s.night("2026-03-11") == 0
    assert notices(s) == [] and charge_journal(s) == []
    assert dunning_problems(s) == [blocked("C1", "2026-03-10", 1)]


# --- interest ---------------------------------------------------------------------------

def test_interest_from_the_due_date_then_only_from_the_last_interest_charged(tmp_path):
    """C1 T1 1,000.00 due 01-15, at level 1 since 01-25. C2 T2 the same, at level 2.
    03-01 (45 days past due, the same period for both):
      T1 to level 2, act/365: 1,000.00 x 9.12% x 45 / 365 = 4,104.00 / 365 = 11.2438
        -> 11.24; fee 5.00.
      T2 to level 3, act/360: 4,104.00 / 360 = 11.40; fee 2% x 1,000.00 = 20.00.
    03-15 (T1 59 days past due): T1 to level 3, interest act/360 only from 03-01, the last
      interest charged: 1,000.00 x 9.12% x 14 / 360 = 1,276.80 / 360 = 3.5467 -> 3.55
      (from the due date it would be 59 days: 14.95, charging 03-01's 45 days twice);
      fee 2% x 1,000.00 = 20.00.
      C1's fee and interest items of 03-01 are 14 days past due: level 1, on their own
      notice, bearing no fee and no interest. C2's (11.40 and 20.00) too."""
    s = scenario(tmp_path)
    items = [item(1, "2026-01-15", "1000.00", "C1", 1, "2026-01-25"),
             item(2, "2026-01-15", "1000.00", "C2", 2, "2026-01-25")]
    assert s.night("2026-03-01", customers=[customer("C1"), customer("C2")],
                   opening_items=items) == 0
    assert notices(s) == [
        ("DN-20260301-C1-2-EUR", "C1", "T-2026-0001", 2, 45, "1000", "5", "11.24", *R2),
        ("DN-20260301-C2-3-EUR", "C2", "T-2026-0002", 3, 45, "1000", "20", "11.4", *R3)]
    assert charge_journal(s) == [
        ("JE-DN-20260301-C1-2-EUR-FEE", "1400", "5", "0"),
        ("JE-DN-20260301-C1-2-EUR-FEE", "2700", "0", "5"),
        ("JE-DN-20260301-C2-3-EUR-FEE", "1400", "20", "0"),
        ("JE-DN-20260301-C2-3-EUR-FEE", "2700", "0", "20"),
        ("JE-T-2026-0001-INT-20260301", "1400", "11.24", "0"),
        ("JE-T-2026-0001-INT-20260301", "2650", "0", "11.24"),
        ("JE-T-2026-0002-INT-20260301", "1400", "11.4", "0"),
        ("JE-T-2026-0002-INT-20260301", "2650", "0", "11.4")]

    assert s.night("2026-03-15") == 0
    assert notices(s) == [
        ("DN-20260315-C1-1-EUR", "C1", "DN-20260301-C1-2-EUR-FEE", 1, 14, "5", "0", "0",
         *R1_DE),
        ("DN-20260315-C1-1-EUR", "C1", "T-2026-0001-INT-20260301", 1, 14, "11.24", "0", "0",
         *R1_DE),
        ("DN-20260315-C1-3-EUR", "C1", "T-2026-0001", 3, 59, "1000", "20", "3.55", *R3),
        ("DN-20260315-C2-1-EUR", "C2", "DN-20260301-C2-3-EUR-FEE", 1, 14, "20", "0", "0",
         *R1_DE),
        ("DN-20260315-C2-1-EUR", "C2", "T-2026-0002-INT-20260301", 1, 14, "11.4", "0", "0",
         *R1_DE)]
    assert charge_journal(s) == [
        ("JE-DN-20260315-C1-3-EUR-FEE", "1400", "20", "0"),
        ("JE-DN-20260315-C1-3-EUR-FEE", "2700", "0", "20"),
        ("JE-T-2026-0001-INT-20260315", "1400", "3.55", "0"),
        ("JE-T-2026-0001-INT-20260315", "2650", "0", "3.55")]
    assert charges(s) == [
        ("DN-20260301-C1-2-EUR-FEE", "fee", "C1", day("2026-03-01"), D("5"), 1),
        ("DN-20260301-C2-3-EUR-FEE", "fee", "C2", day("2026-03-01"), D("20"), 1),
        ("DN-20260315-C1-3-EUR-FEE", "fee", "C1", day("2026-03-15"), D("20"), 0),
        ("T-2026-0001-INT-20260301", "interest", "C1", day("2026-03-01"), D("11.24"), 1),
        ("T-2026-0001-INT-20260315", "interest", "C1", day("2026-03-15"), D("3.55"), 0),
        ("T-2026-0002-INT-20260301", "interest", "C2", day("2026-03-01"), D("11.4"), 1)]


@pytest.mark.parametrize(("interest_from", "interest"), [("due_date", "4.35"),
                                                         ("last_partial_payment", "1.5")])
def test_interest_after_a_partial_payment(tmp_path, interest_from, interest):
    """C1 T1 1,000.00 due 02-01, at level 1 since 02-15.
    02-20: P1 400.00 naming T1, received 02-20: applied in part, 600.00 stays open. T1 is
      19 days past due: no new level.
    03-02: T1 29 days past due: level 2, fee 5.00, interest on the 600.00 still open:
      due_date:             600.00 x 9.12% x 29 / 365 = 1,586.88 / 365 = 4.3476 -> 4.35
      last_partial_payment: from 02-20, 10 days: 547.20 / 365 = 1.4992 -> 1.50"""
    s = scenario(tmp_path, ladder(interest_from=interest_from), **{"matching.yaml": MATCHING})
    assert s.night("2026-02-20", customers=[customer("C1")],
                   opening_items=[item(1, "2026-02-01", "1000.00", "C1", 1, "2026-02-15")],
                   payments=[pay("P1", "400.00", "T-2026-0001", "2026-02-20")]) == 0
    assert notices(s) == []
    assert levels(s) == [("T-2026-0001", 1, day("2026-02-15"), D("600"))]
    assert s.night("2026-03-02") == 0
    assert notices(s) == [
        ("DN-20260302-C1-2-EUR", "C1", "T-2026-0001", 2, 29, "600", "5", interest, *R2)]
    assert charge_journal(s)[2:] == [
        ("JE-T-2026-0001-INT-20260302", "1400", interest, "0"),
        ("JE-T-2026-0001-INT-20260302", "2650", "0", interest)]


# --- payments and charges ---------------------------------------------------------------

def _paid_then_charges_dunned(tmp_path: Path) -> Scenario:
    """C1 T1 10,000.00 due 01-15, at level 1 since 01-25.
    03-01: T1 45 days: level 2; fee 5.00; interest 10,000.00 x 9.12% x 45 / 365 =
      41,040.00 / 365 = 112.4384 -> 112.44.
    03-02: P1 10,000.00 naming T1 closes it.
    03-15: T1 (59 days) would reach level 3, but it is closed: no row. The fee and interest
      items (due 03-01, 14 days) reach level 1: C1's overdue 5.00 + 112.44 = 117.44 >= 50,
      one notice listing both, the fee item first (same due date, 'DN-' < 'T-')."""
    s = scenario(tmp_path, **{"matching.yaml": MATCHING})
    assert s.night("2026-03-01", customers=[customer("C1")],
                   opening_items=[item(1, "2026-01-15", "10000.00", "C1", 1,
                                       "2026-01-25")]) == 0
    assert notices(s) == [
        ("DN-20260301-C1-2-EUR", "C1", "T-2026-0001", 2, 45, "10000", "5", "112.44", *R2)]
    assert s.night("2026-03-02", payments=[pay("P1", "10000.00", "T-2026-0001",
                                               "2026-03-02")]) == 0
    assert notices(s) == []
    assert s.night("2026-03-15") == 0
    assert notices(s) == [
        ("DN-20260315-C1-1-EUR", "C1", "DN-20260301-C1-2-EUR-FEE", 1, 14, "5", "0", "0",
         *R1_DE),
        ("DN-20260315-C1-1-EUR", "C1", "T-2026-0001-INT-20260301", 1, 14, "112.44", "0", "0",
         *R1_DE)]
    return s


def test_a_paid_item_leaves_dunning_and_its_charges_are_dunned_later(tmp_path):
    """See _paid_then_charges_dunned; afterwards T1 stays closed at level 2, no new charge
    is booked, and the two charge items carry level 1 from 03-15."""
    s = _paid_then_charges_dunned(tmp_path)
    assert charge_journal(s) == []
    assert levels(s) == [("T-2026-0001", 2, day("2026-03-01"), D("0"))]
    assert s.state("SELECT closed_on FROM open_items WHERE invoice_id = 'T-2026-0001'") == [
        (day("2026-03-02"),)]
    assert charges(s) == [
        ("DN-20260301-C1-2-EUR-FEE", "fee", "C1", day("2026-03-01"), D("5"), 1),
        ("T-2026-0001-INT-20260301", "interest", "C1", day("2026-03-01"), D("112.44"), 1)]


def test_fee_and_interest_items_bear_no_fee_of_their_own(tmp_path):
    """After _paid_then_charges_dunned: 03-25, the fee and interest items of 03-01 are
    24 days past due: level 2 (last notice 03-15, 10 days ago). The notice lists only
    them; level 2 has a fee of 5.00 and interest, but charges bear neither: both rows
    show fee 0 and interest 0, and no new fee or interest item is booked."""
    s = _paid_then_charges_dunned(tmp_path)
    assert s.night("2026-03-25") == 0
    assert notices(s) == [
        ("DN-20260325-C1-2-EUR", "C1", "DN-20260301-C1-2-EUR-FEE", 2, 24, "5", "0", "0", *R2),
        ("DN-20260325-C1-2-EUR", "C1", "T-2026-0001-INT-20260301", 2, 24, "112.44", "0", "0",
         *R2)]
    assert charge_journal(s) == []
    assert [c[0] for c in charges(s)] == ["DN-20260301-C1-2-EUR-FEE",
                                          "T-2026-0001-INT-20260301"]


def test_a_percent_fee_is_not_taken_on_fee_and_interest_items(tmp_path):
    """Here level 1 charges 2% of the amount dunned (no cap).
    C1 T1 1,000.00 due 01-15 at level 1 since 01-25; T2 500.00 due 03-05.
    03-01: T1 (45 days) to level 2: fee 5.00, interest 11.24 (as above).
    03-15: T1 (59 days) to level 3 on its own notice: fee 2% x 1,000.00 = 20.00, interest
      act/360 from 03-01: 3.55. T2 (10 days) and the two charges of 03-01 (14 days) reach
      level 1: one notice listing the fee item, the interest item and T2. Its fee is 2% of
      what the notice dunns that may bear a fee, T2's 500.00: 10.00, not 2% x (5.00 +
      11.24 + 500.00 = 516.24) = 10.32."""
    reminder = REMINDER[:-1] + ", fee: {percent: 2%}}"
    s = scenario(tmp_path, ladder(levels=(reminder, LETTER, FINAL)))
    items = [item(1, "2026-01-15", "1000.00", "C1", 1, "2026-01-25"),
             item(2, "2026-03-05", "500.00")]
    assert s.night("2026-03-01", customers=[customer("C1")], opening_items=items) == 0
    assert notices(s) == [
        ("DN-20260301-C1-2-EUR", "C1", "T-2026-0001", 2, 45, "1000", "5", "11.24", *R2)]
    assert s.night("2026-03-15") == 0
    assert [r[:4] for r in notices(s)] == [
        ("DN-20260315-C1-1-EUR", "C1", "DN-20260301-C1-2-EUR-FEE", 1),
        ("DN-20260315-C1-1-EUR", "C1", "T-2026-0001-INT-20260301", 1),
        ("DN-20260315-C1-1-EUR", "C1", "T-2026-0002", 1),
        ("DN-20260315-C1-3-EUR", "C1", "T-2026-0001", 3)]
    fees = {r["notice_id"]: r["fee_amount"] for r in s.rows("dunning_notices")
            if r["fee_amount"]}
    assert fees == {"DN-20260315-C1-1-EUR": D("10.00"), "DN-20260315-C1-3-EUR": D("20.00")}
    assert ("JE-DN-20260315-C1-1-EUR-FEE", "2700", "0", "10") in charge_journal(s)


# --- credit hold ------------------------------------------------------------------------

def decisions(s: Scenario) -> list[tuple]:
    return money(s.rows("credit_decisions"), "customer_id", "exposure", "credit_limit",
                 "utilization", "decision")


def test_a_credit_hold_level_holds_credit_until_the_item_is_paid(tmp_path):
    """Credit: default limit 100,000.00, hold from 100%, warn from 80%.
    C1 T1 1,000.00 due 01-23 at level 2 since 02-10; C2 T2 1,000.00 due 03-31 (control).
    02-28: T1 36 days past due (< 38): no notice; C1 ok, 1,000.00 / 100,000 = 0.01.
    03-02: T1 exactly 38 days: level 3 (credit_hold). Fee 2% x 1,000.00 = 20.00, interest
      act/360 1,000.00 x 9.12% x 38 / 360 = 3,465.60 / 360 = 9.6267 -> 9.63. C1's
      exposure counts tonight's charges: 1,000.00 + 20.00 + 9.63 = 1,029.63, utilization
      0.0102963 -> 0.0103, far under the limit, yet C1 is held for the level 3 item, with
      a CREDIT_HOLD warning naming the level. C2 ok.
    03-03: P1 1,000.00 pays T1: closed. C1 still owes the charges, 29.63 (0.0002963 ->
      0.0003), but no item at level 3 is open: ok."""
    s = scenario(tmp_path, **{"matching.yaml": MATCHING, "credit.yaml": CREDIT})
    items = [item(1, "2026-01-23", "1000.00", "C1", 2, "2026-02-10"),
             item(2, "2026-03-31", "1000.00", "C2")]
    assert s.night("2026-02-28", customers=[customer("C1"), customer("C2")],
                   opening_items=items) == 0
    assert notices(s) == []
    assert decisions(s) == [("C1", "1000", "100000", "0.01", "ok"),
                            ("C2", "1000", "100000", "0.01", "ok")]

    assert s.night("2026-03-02") == 0
    assert notices(s) == [
        ("DN-20260302-C1-3-EUR", "C1", "T-2026-0001", 3, 38, "1000", "20", "9.63", *R3)]
    assert decisions(s) == [("C1", "1029.63", "100000", "0.0103", "hold"),
                            ("C2", "1000", "100000", "0.01", "ok")]
    (hold,) = [p for p in s.rows("exceptions") if p["code"] == "CREDIT_HOLD"]
    assert (hold["severity"], hold["entity_id"], hold["rule_id"], hold["rule_ref"]) == (
        "warning", "C1", "final", "dunning.yaml:11")
    assert hold["message"] == ("customer C1 is on credit hold: an item at dunning level 3 is "
                               "open, and level 3 (final) holds credit")

    assert s.night("2026-03-03", payments=[pay("P1", "1000.00", "T-2026-0001",
                                               "2026-03-03")]) == 0
    assert decisions(s) == [("C1", "29.63", "100000", "0.0003", "ok"),
                            ("C2", "1000", "100000", "0.01", "ok")]
    assert [p for p in s.rows("exceptions") if p["code"] == "CREDIT_HOLD"] == []


# --- property ---------------------------------------------------------------------------

FIRST_NIGHT = dt.date(2026, 3, 2)


@dataclass(frozen=True)
class Seed:
    invoice_id: str
    customer_id: str
    due: dt.date
    amount: Decimal
    level: int
    last: dt.date | None
    disputed: bool


@dataclass(frozen=True)
class World:
    items: tuple[Seed, ...]
    intercompany: frozenset[str]
    gaps: tuple[int, ...]  # days between consecutive nights


@st.composite
def worlds(draw) -> World:
    n = draw(st.integers(1, 6))
    items = []
    for i in range(1, n + 1):
        level = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
        last = (FIRST_NIGHT - dt.timedelta(days=draw(st.integers(1, 12)))
                if level and draw(st.booleans()) else None)
        items.append(Seed(
            f"T-2026-{i:04d}", draw(st.sampled_from(["C1", "C2", "C3"])),
            FIRST_NIGHT - dt.timedelta(days=draw(st.integers(-10, 80))),
            draw(st.decimals(min_value=D("10"), max_value=D("3000"), places=2,
                             allow_nan=False, allow_infinity=False)),
            level, last, draw(st.integers(0, 4)) == 0))
    intercompany = draw(st.frozensets(st.sampled_from(["C1", "C2", "C3"]), max_size=2))
    gaps = tuple(draw(st.lists(st.integers(1, 12), min_size=2, max_size=3)))
    return World(tuple(items), intercompany, gaps)


EVERY_KIND = World(
    items=(Seed("T-2026-0001", "C1", dt.date(2025, 12, 20), D("1000.00"), 0, None, False),
           Seed("T-2026-0002", "C1", dt.date(2026, 1, 10), D("250.00"), 1, None, True),
           Seed("T-2026-0003", "C2", dt.date(2026, 1, 1), D("800.00"), 2,
                dt.date(2026, 2, 25), False),
           Seed("T-2026-0004", "C3", dt.date(2025, 12, 1), D("500.00"), 0, None, False),
           Seed("T-2026-0005", "C1", dt.date(2026, 2, 25), D("40.00"), 0, None, False)),
    intercompany=frozenset({"C3"}), gaps=(1, 7, 10))


def _state_items(s: Scenario) -> dict[str, tuple]:
    rows = s.state("SELECT invoice_id, customer_id, item_type, due_date, amount_open, "
                   "dunning_level, last_dunned_on, closed_on FROM open_items")
    return {r[0]: r[1:] for r in rows}


def _check_night(s: Scenario, night: dt.date, before: dict[str, tuple],
                 after: dict[str, tuple], world: World) -> None:
    seeds = {i.invoice_id: i for i in world.items}
    rows = s.rows("dunning_notices")
    noticed = {r["invoice_id"]: r for r in rows}
    assert len(noticed) == len(rows), "an item on two notices in one night"
    for invoice_id, (_c, _t, due, _a, level, last, _closed) in after.items():
        old = before[invoice_id][4] if invoice_id in before else 0
        assert old <= level <= old + 1, f"{invoice_id}: level {old} -> {level} on {night}"
        if level > old:  # a rise is a notice row of tonight, and only a reached level
            assert invoice_id in noticed and last == night
            assert (night - due).days >= REACHED_AT[level]
    for r in rows:
        invoice_id = r["invoice_id"]
        assert r["level"] == after[invoice_id][4], f"{invoice_id}: notice and state differ"
        seed = seeds.get(invoice_id)
        assert seed is None or not seed.disputed, f"disputed {invoice_id} dunned"
        assert r["customer_id"] not in world.intercompany, f"excluded {invoice_id} dunned"
    by_notice: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_notice[r["notice_id"]].append(r)
    expected_charges = {}
    for notice_id, listed in by_notice.items():
        assert all(r["fee_amount"] == 0 for r in listed[1:]), f"{notice_id}: fee not first"
        order = [(after[r["invoice_id"]][2], r["invoice_id"]) for r in listed]
        assert order == sorted(order), f"{notice_id}: rows not by due date, then id"
        if listed[0]["fee_amount"] > 0:
            expected_charges[notice_id + "-FEE"] = ("fee", listed[0]["fee_amount"])
        for r in listed:
            if r["interest_amount"] > 0:
                assert after[r["invoice_id"]][1] in ("opening", "invoice")
                expected_charges[f"{r['invoice_id']}-INT-{night:%Y%m%d}"] = (
                    "interest", r["interest_amount"])
    new = {k: (v[1], v[3]) for k, v in after.items() if k not in before}
    assert new == expected_charges
    for k in new:
        assert after[k][2] == night and after[k][4] == 0
    journal = charge_journal(s)
    assert len(journal) == 2 * len(new)
    for entry_id, account, debit, credit in journal:
        kind, amount = new[entry_id[3:]]
        assert (account, D(debit), D(credit)) in (
            ("1400", amount, 0), ("2700" if kind == "fee" else "2650", 0, amount))


def run_world(world: World) -> None:
    customers = [customer(c, segment="intercompany" if c in world.intercompany else "")
                 for c in ("C1", "C2", "C3")]
    opening = [{"invoice_id": i.invoice_id, "customer_id": i.customer_id,
                "invoice_date": "2025-10-01", "due_date": i.due.isoformat(), "currency": "EUR",
                "amount_open": str(i.amount), "dunning_level": str(i.level),
                "last_dunned_on": i.last.isoformat() if i.last else ""} for i in world.items]
    disputes = [{"invoice_id": i.invoice_id, "opened_on": "2026-03-01", "status": "open",
                 "reason": "disputed"} for i in world.items if i.disputed]
    before = {i.invoice_id: (i.customer_id, "opening", i.due, i.amount, i.level, i.last, None)
              for i in world.items}
    night = FIRST_NIGHT
    with tempfile.TemporaryDirectory() as tmp:
        s = scenario(Path(tmp))
        tables = {"customers": customers, "opening_items": opening, "disputes": disputes}
        for gap in (0, *world.gaps):
            night += dt.timedelta(days=gap)
            assert s.night(night.isoformat(), **tables) == 0
            after = _state_items(s)
            _check_night(s, night, before, after, world)
            before, tables = after, {}


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
@example(EVERY_KIND)
def test_dunning_keeps_its_invariants_over_several_nights(world):
    """Over 3-4 nights of random items (due dates, amounts, seeded levels, some disputed,
    some of intercompany customers): a level rises at most one a night and only to a level
    the item's days past due reach, never falls; a rise is a notice row of the night and
    the row's level is the item's level in the state store; a disputed or excluded item
    is never on a notice; a fee only on a notice's first row (by due date, then id); every
    fee and interest item is a notice's charge, due that night, and its journal entry
    balances (Dr 1400 / Cr 2700 or 2650)."""
    run_world(world)


def test_check_refuses_a_ladder_that_does_not_climb(tmp_path):
    """Two levels numbered 2 (E701), a gap (E701) and after_days that do not grow (E702)
    would leave items stuck or crash the night: `ruledger check` refuses them."""
    from engine.config.ruleset import load_ruleset
    from engine.errors import RuleError

    for name, old, new, want in (
            ("twice", "level: 3", "level: 2", ("E701", "given twice")),
            ("gap", "level: 3", "level: 4", ("E701", "where level 3 should be")),
            ("late", "after_days: 35", "after_days: 20", ("E702", "not later than level 2"))):
        folder = tmp_path / name
        shutil.copytree(ROOT / "rules" / "nordwind", folder)
        text = (folder / "dunning.yaml").read_text()
        assert old in text
        (folder / "dunning.yaml").write_text(text.replace(old, new, 1))
        with pytest.raises(RuleError) as exc:
            load_ruleset(folder)
        (diag,) = exc.value.diagnostics
        assert diag.code == want[0] and want[1] in diag.message, diag.message


def test_an_overdue_currency_without_a_rate_is_not_dunned(tmp_path):
    """C1 bills in USD with no USD->EUR rate: min_amount (in EUR) cannot be checked, so
    the customer is not dunned tonight, and a warning says why; with the rate it is."""
    s = scenario(tmp_path / "none")
    usd = {**item(1, "2026-02-01", "500.00"), "currency": "USD"}
    assert s.night("2026-03-02", customers=[customer("C1", currency="USD")],
                   opening_items=[usd]) == 0
    assert notices(s) == []
    (warning,) = [e for e in s.rows("exceptions") if e["code"] == "FX_RATE_MISSING"]
    assert (warning["stage"], warning["entity_id"]) == ("dunning", "C1")
    rated = scenario(tmp_path / "rated")
    rate = {"rate_date": "2026-03-01", "from_currency": "USD", "to_currency": "EUR",
            "rate": "0.92"}
    assert rated.night("2026-03-02", customers=[customer("C1", currency="USD")],
                       opening_items=[usd], fx_rates=[rate]) == 0
    assert [n[2:4] for n in notices(rated)] == [("T-2026-0001", 1)]
