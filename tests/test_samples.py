"""The shipped sample nights, run in order: what `samples/README.md` says they show.

Each client's three nights run once per module on one state store; the tests read the
outputs. The amounts are the ones the samples were written with, checked by hand.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import ROOT
from scenario import money

from engine.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """client -> as-of -> table -> rows, after running every sample night in order."""
    tmp = tmp_path_factory.mktemp("samples")
    out: dict[str, dict[str, dict[str, list[dict]]]] = {}
    for client in ("nordwind", "lakeshore"):
        state = tmp / f"{client}.duckdb"
        for night in sorted((ROOT / "samples" / client).iterdir()):
            assert main(["run", str(ROOT / "rules" / client), "--drop", str(night),
                         "--state", str(state), "--out", str(tmp / "out")]) == 0
            folder = tmp / "out" / client / night.name
            out.setdefault(client, {})[night.name] = {
                p.stem: pq.read_table(p).to_pylist() for p in folder.glob("*.parquet")}
        out[client]["state"] = state
    return out


def _cash(runs, client: str, night: str, payment: str) -> list[tuple]:
    rows = [r for r in runs[client][night]["cash_applications"] if r["payment_id"] == payment]
    return money(rows, "invoice_id", "applied_amount", "written_off_amount", "discount_amount",
                 "strategy")


def _codes(runs, client: str, night: str, payment: str) -> list[str]:
    return [e["code"] for e in runs[client][night]["exceptions"] if e["entity_id"] == payment]


def test_a_shortfall_within_both_tolerances_is_written_off(runs):
    """LS-2026-000120 is 1,200.00; check 60388 pays 1,199.60: 0.40 short, within 5.00 and
    0.5% (6.00), so 1,199.60 is applied and 0.40 written off to 6900."""
    assert _cash(runs, "lakeshore", "2026-03-03", "60388") == [
        ("LS-2026-000120", "1199.6", "0.4", "0", "by_reference")]
    entry = [money([j], "account", "debit", "credit")[0] for j in
             runs["lakeshore"]["2026-03-03"]["journal_entries"] if j["document_id"] == "60388"]
    assert entry == [("1000", "1199.6", "0"), ("1100", "0", "1200"), ("6900", "0.4", "0")]


def test_a_shortfall_beyond_tolerance_is_applied_in_part(runs):
    """LS-2026-000133 is 418.00; check 1502 pays 368.00: 50.00 short, beyond 5.00, and
    by_reference says partial: 368.00 applied, 50.00 stays open."""
    assert _cash(runs, "lakeshore", "2026-03-03", "1502") == [
        ("LS-2026-000133", "368", "0", "0", "by_reference")]
    assert _codes(runs, "lakeshore", "2026-03-03", "1502") == ["PARTIAL_PAYMENT"]
    con = duckdb.connect(str(runs["lakeshore"]["state"]), read_only=True)
    try:
        assert con.sql("SELECT amount_open FROM open_items WHERE invoice_id = 'LS-2026-000133'"
                       ).fetchall() == [(Decimal("50.0000"),)]
    finally:
        con.close()


def test_one_payment_naming_two_invoices(runs):
    """677.45 + 316.62 = 994.07 and 914.49 + 669.97 = 1,584.46."""
    assert _cash(runs, "lakeshore", "2026-03-04", "20871") == [
        ("LS-2026-000163", "677.45", "0", "0", "by_reference"),
        ("LS-2026-000164", "316.62", "0", "0", "by_reference")]
    assert _cash(runs, "nordwind", "2026-03-04", "E2E-260304-008") == [
        ("NW-2026-000049", "914.49", "0", "0", "by_reference"),
        ("NW-2026-000050", "669.97", "0", "0", "by_reference")]


def test_an_ambiguous_amount_stays_unapplied(runs):
    """L20004 has two items of 480.00; tie_break exception: nothing is applied."""
    assert _cash(runs, "lakeshore", "2026-03-02", "60214") == [
        (None, "480", "0", "0", "by_amount")]
    assert _codes(runs, "lakeshore", "2026-03-02", "60214") == ["AMOUNT_AMBIGUOUS"]
    # tried again on later nights, quietly: it still waits for a person
    assert _codes(runs, "lakeshore", "2026-03-03", "60214") == []


def test_a_three_item_combination(runs):
    """310.00 + 1,045.20 + 87.35 = 1,442.55, the only set of L20002's items that fits."""
    assert _cash(runs, "lakeshore", "2026-03-02", "7310") == [
        ("LS-2026-000103", "310", "0", "0", "by_combination"),
        ("LS-2026-000104", "1045.2", "0", "0", "by_combination"),
        ("LS-2026-000109", "87.35", "0", "0", "by_combination")]


def test_an_unidentified_payer_stays_unapplied(runs):
    assert _cash(runs, "lakeshore", "2026-03-02", "3321") == [(None, "315", "0", "0", None)]
    assert _codes(runs, "lakeshore", "2026-03-02", "3321") == ["PAYMENT_UNMATCHED"]
    entry = [money([j], "account", "debit", "credit", "customer_id")[0] for j in
             runs["lakeshore"]["2026-03-02"]["journal_entries"] if j["document_id"] == "3321"]
    assert entry == [("1000", "315", "0", None), ("2150", "0", "315", None)]


def test_an_early_payment_discount(runs):
    """NW-2026-000048 is 1,011.50, invoiced 2026-02-23; paid 2026-03-03, within 10 days:
    2% = 20.23, and 1,011.50 - 20.23 = 991.27 settles it."""
    assert _cash(runs, "nordwind", "2026-03-03", "E2E-260303-001") == [
        ("NW-2026-000048", "991.27", "0", "20.23", "by_reference")]
    entry = [money([j], "account", "debit", "credit")[0] for j in
             runs["nordwind"]["2026-03-03"]["journal_entries"]
             if j["document_id"] == "E2E-260303-001"]
    assert entry == [("1200", "991.27", "0"), ("1400", "0", "1011.5"), ("8736", "20.23", "0")]


def test_an_over_payment_is_carried_and_applied_the_next_night(runs):
    """878.26 - 729.26 = 149.00 unapplied on L20009, then it pays LS-2026-000165."""
    assert _cash(runs, "lakeshore", "2026-03-03", "11902") == [
        ("LS-2026-000143", "729.26", "0", "0", "by_reference"),
        (None, "149", "0", "0", "by_reference")]
    assert _codes(runs, "lakeshore", "2026-03-03", "11902") == ["OVERPAYMENT"]
    assert _cash(runs, "lakeshore", "2026-03-04", "11902") == [
        ("LS-2026-000165", "149", "0", "0", "by_amount")]
    entry = [money([j], "account", "debit", "credit")[0] for j in
             runs["lakeshore"]["2026-03-04"]["journal_entries"] if j["document_id"] == "11902"]
    assert entry == [("2150", "149", "0"), ("1100", "0", "149")]


def test_a_disputed_item_is_matched_only_by_reference(runs):
    """NW-2026-000038 (11,900.00) is disputed: an 11,900.00 payment without reference
    does not match it, and the exception says why. LS-2026-000115 is disputed too: a
    payment naming it is taken by the reference strategy (and is short: an exception)."""
    exc = [e for e in runs["nordwind"]["2026-03-04"]["exceptions"]
           if e["entity_id"] == "E2E-260304-009"]
    assert [e["code"] for e in exc] == ["PAYMENT_UNMATCHED"]
    assert "NW-2026-000038 (under dispute: matched only when the reference names it)" in (
        exc[0]["message"])
    assert _cash(runs, "lakeshore", "2026-03-04", "70215") == [
        (None, "12000", "0", "0", "large_reference")]
    assert _codes(runs, "lakeshore", "2026-03-04", "70215") == ["PAYMENT_SHORT"]


def test_every_payment_adds_up_and_every_entry_balances(runs):
    """Per payment received tonight, its rows' applied_amount (the empty-invoice row is the
    unapplied rest) add up to the cash booked; every entry balances per currency."""
    cash_account = {"nordwind": "1200", "lakeshore": "1000"}
    for client in ("nordwind", "lakeshore"):
        for night, outputs in runs[client].items():
            if night == "state":
                continue
            applied = defaultdict(Decimal)
            for r in outputs["cash_applications"]:
                applied[r["payment_id"]] += r["applied_amount"]
            received = {j["document_id"]: j["debit"] for j in outputs["journal_entries"]
                        if j["document_type"] == "payment"
                        and j["account"] == cash_account[client]}
            assert received and {p: applied[p] for p in received} == received, (client, night)
            sums = defaultdict(Decimal)
            for j in outputs["journal_entries"]:
                sums[j["entry_id"], j["currency"]] += j["debit"] - j["credit"]
            assert set(sums.values()) == {Decimal(0)}, (client, night)


def _notices(runs, client: str, night: str, invoice: str | None = None) -> list[tuple]:
    rows = [r for r in runs[client][night].get("dunning_notices", [])
            if invoice is None or r["invoice_id"] == invoice]
    return money(rows, "notice_id", "invoice_id", "level", "days_overdue", "amount_open",
                 "fee_amount", "interest_amount", "template", "rule_id")


def test_nordwind_escalates_with_statutory_interest_and_holds_credit(runs):
    """NW-2026-000034 (535.50, due 02-11, level 1 from the opening items):
    03-11, 28 days >= 21 + 3: level 2, fee 5.00, interest 535.50 x 10.27% x 28 / 365 =
    4.2189 -> 4.22. 03-23, 40 days >= 35 + 3: level 3, fee 40.00, interest only from
    03-11: 535.50 x 10.27% x 12 / 365 = 1.8081 -> 1.81; level 3 holds C10002's credit."""
    assert _notices(runs, "nordwind", "2026-03-11", "NW-2026-000034") == [
        ("DN-20260311-C10002-2-EUR", "NW-2026-000034", 2, 28, "535.5", "5", "4.22",
         "nw_dunning_letter_DE", "first_dunning_letter")]
    assert _notices(runs, "nordwind", "2026-03-23", "NW-2026-000034") == [
        ("DN-20260323-C10002-3-EUR", "NW-2026-000034", 3, 40, "535.5", "40", "1.81",
         "nw_final_notice_DE", "final_notice")]
    # the 03-11 fee and interest are dunned themselves, with no fee or interest of their own
    assert [n[1:3] + n[5:7] for n in _notices(runs, "nordwind", "2026-03-23")
            if n[2] == 1] == [("DN-20260311-C10002-2-EUR-FEE", 1, "0", "0"),
                              ("NW-2026-000034-INT-20260311", 1, "0", "0")]
    (decision,) = [d for d in runs["nordwind"]["2026-03-23"]["credit_decisions"]
                   if d["customer_id"] == "C10002"]
    assert decision["decision"] == "hold"
    (hold,) = [e for e in runs["nordwind"]["2026-03-23"]["exceptions"]
               if e["code"] == "CREDIT_HOLD"]
    assert (hold["entity_id"], hold["rule_id"]) == ("C10002", "final_notice")


def test_lakeshore_ladder_blocked_notices_disputes_and_payments(runs):
    """Lakeshore charges no interest. LS-2026-000105 (480.00, due 02-20) rises one level
    per allowed night: 1 on 03-02, 2 on 03-11 (fee 1.5% = 7.20), 3 on 03-23 (31 days),
    which holds L20004's credit. L20005 is blocked on 03-03 (a notice on 03-02, five
    days between). The disputed LS-2026-000115 is never on a notice. LS-2026-000102 is
    noticed at level 2 on 03-02, paid on 03-03, and never noticed again."""
    levels = [n[2] for night in ("2026-03-02", "2026-03-11", "2026-03-23")
              for n in _notices(runs, "lakeshore", night, "LS-2026-000105")]
    assert levels == [1, 2, 3]
    assert _notices(runs, "lakeshore", "2026-03-11", "LS-2026-000105")[0][5] == "7.2"
    every = [n for night in runs["lakeshore"] if night != "state"
             for n in _notices(runs, "lakeshore", night)]
    assert all(n[6] == "0" for n in every)  # no interest at lakeshore
    assert not [n for n in every if n[1] == "LS-2026-000115"]
    assert [n[2] for n in every if n[1] == "LS-2026-000102"] == [2]
    assert [e["entity_id"] for e in runs["lakeshore"]["2026-03-03"]["exceptions"]
            if e["code"] == "DUNNING_BLOCKED"] == ["L20005"]
    (decision,) = [d for d in runs["lakeshore"]["2026-03-23"]["credit_decisions"]
                   if d["customer_id"] == "L20004"]
    assert decision["decision"] == "hold"
