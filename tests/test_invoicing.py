"""Invoicing and tax, through real runs, with the arithmetic written out by hand."""

from __future__ import annotations

import duckdb
from conftest import CLIENT_YAML, replace_accounts
from scenario import CUSTOMER, Scenario, details, line, money

TAX_19 = """\
kind: tax
version: 1
hit_policy: first
rounding_level: {level}
prices_include_tax: {included}
rules:
  - id: de_standard
    when: 'ship_to_country == "DE"'
    code: VAT19
    rate: 19%
"""


def tax_19(level: str = "line", included: str = "false") -> str:
    return TAX_19.format(level=level, included=included)


THREE_035 = [line("T1", "1", "0.35"), line("T2", "1", "0.35"), line("T3", "1", "0.35")]


def test_the_rounding_trap_per_line(tmp_path):
    """Three lines of 0.35 at 19%: each 0.35 x 0.19 = 0.0665 -> 0.07; 3 x 0.07 = 0.21."""
    s = Scenario(tmp_path, tax_19("line"))
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=THREE_035) == 0
    assert money(s.rows("invoice_lines"), "line_no", "net_amount", "tax_amount") == [
        (1, "0.35", "0.07"), (2, "0.35", "0.07"), (3, "0.35", "0.07")]
    assert money(s.rows("invoices"), "net_amount", "tax_amount", "gross_amount") == [
        ("1.05", "0.21", "1.26")]


def test_the_rounding_trap_per_invoice(tmp_path):
    """Per invoice: 1.05 x 0.19 = 0.1995 -> 0.20, rounded once. Each line's exact tax
    0.0665 is cut to 0.06 (0.18 in all); the 2 cents left go to the lines with the
    largest remainder (all 0.0065: ties go to the lower line numbers 1 and 2)."""
    s = Scenario(tmp_path, tax_19("invoice"))
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=THREE_035) == 0
    assert money(s.rows("invoice_lines"), "line_no", "tax_amount") == [
        (1, "0.07"), (2, "0.07"), (3, "0.06")]
    assert money(s.rows("invoices"), "tax_amount", "gross_amount") == [("0.2", "1.25")]


def test_largest_remainder_goes_to_the_largest_remainder_not_the_first_line(tmp_path):
    """Lines 0.31, 0.35, 0.33 at 19%: exact 0.0589, 0.0665, 0.0627 (sum 0.1881 -> 0.19).
    Cut: 0.05 + 0.06 + 0.06 = 0.17, so 2 cents go out by remainder: 0.0089 (line 1),
    0.0065 (line 2), 0.0027 (line 3) -> lines 1 and 2: 0.06, 0.07, 0.06 = 0.19."""
    s = Scenario(tmp_path, tax_19("invoice"))
    lines = [line("T1", "1", "0.31"), line("T2", "1", "0.35"), line("T3", "1", "0.33")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert money(s.rows("invoice_lines"), "line_no", "tax_amount") == [
        (1, "0.06"), (2, "0.07"), (3, "0.06")]


def test_a_credit_note_rounded_per_invoice_shares_out_negative_units(tmp_path):
    """Three lines of -0.35 at 19%: each exact -0.0665 is cut toward zero to -0.06 (-0.18
    in all); the credit note's tax -1.05 x 0.19 = -0.1995 rounds to -0.20, so -2 cents go
    out by remainder (all -0.0065: ties to lines 1 and 2): -0.07, -0.07, -0.06."""
    s = Scenario(tmp_path, tax_19("invoice"))
    lines = [line(t, "-1", "0.35") for t in ("T1", "T2", "T3")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert money(s.rows("invoice_lines"), "line_no", "tax_amount") == [
        (1, "-0.07"), (2, "-0.07"), (3, "-0.06")]
    assert money(s.rows("invoices"), "document_type", "tax_amount", "gross_amount") == [
        ("credit_note", "-0.2", "-1.25")]


TWO_RATES = """\
kind: tax
version: 1
hit_policy: first
rounding_level: invoice
rules:
  - {id: reduced, when: 'tax_category == "reduced"', code: VAT7, rate: 7%}
  - {id: standard, when: 'ship_to_country == "DE"', code: VAT19, rate: 19%}
"""


def test_each_tax_group_of_an_invoice_is_rounded_on_its_own(tmp_path):
    """One invoice, two groups. VAT19: three lines of 0.35, 2 cents to share out as in
    the rounding trap (0.07, 0.07, 0.06). VAT7: 1.00 x 0.07 = 0.07 exactly, nothing to
    share out. Lines are numbered across both groups by date, then id."""
    s = Scenario(tmp_path, TWO_RATES)
    lines = [line("T1", "1", "0.35"), line("T2", "1", "1.00", tax_category="reduced"),
             line("T3", "1", "0.35"), line("T4", "1", "0.35")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert money(s.rows("invoice_lines"), "line_no", "txn_id", "tax_code", "tax_amount") == [
        (1, "T1", "VAT19", "0.07"), (2, "T2", "VAT7", "0.07"), (3, "T3", "VAT19", "0.07"),
        (4, "T4", "VAT19", "0.06")]
    assert money(s.rows("invoices"), "tax_amount", "gross_amount") == [("0.27", "2.32")]


def test_prices_that_include_tax(tmp_path):
    """Gross 119.00 at 19%: tax = 119 x 0.19 / 1.19 = 19.00, net 100.00.
    Gross 10.00: tax = 1.5966... -> 1.60, net 8.40. net + tax = gross on every line."""
    s = Scenario(tmp_path, tax_19("line", "true"))
    lines = [line("T1", "1", "119.00"), line("T2", "2", "5.00")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert money(s.rows("invoice_lines"), "txn_id", "net_amount", "tax_amount") == [
        ("T1", "100", "19"), ("T2", "8.4", "1.6")]
    assert money(s.rows("invoices"), "net_amount", "tax_amount", "gross_amount") == [
        ("108.4", "20.6", "129")]


def test_prices_that_include_tax_rounded_per_invoice(tmp_path):
    """Three gross 0.35 at 19%: 1.05 x 0.19 / 1.19 = 0.16764... -> 0.17 for the invoice.
    Each line: 0.35 x 0.19 / 1.19 = 0.05588 -> cut 0.05 (0.15); 2 cents to lines 1, 2.
    Nets are gross - tax: 0.29, 0.29, 0.30."""
    s = Scenario(tmp_path, tax_19("invoice", "true"))
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=THREE_035) == 0
    assert money(s.rows("invoice_lines"), "line_no", "net_amount", "tax_amount") == [
        (1, "0.29", "0.06"), (2, "0.29", "0.06"), (3, "0.3", "0.05")]


def test_jpy_has_no_minor_unit_and_rounding_follows_the_client(tmp_path):
    """3 x 333.5 JPY = 1000.5: half_up 1001, half_even 1000. Tax 10%: 100.05 -> 100."""
    tax = tax_19().replace("19%", "10%")
    for mode, net, tax_amount in (("half_up", "1001", "100"), ("half_even", "1000", "100")):
        s = Scenario(tmp_path / mode, tax, client_extra=f"rounding: {mode}\n")
        customer = {**CUSTOMER, "currency": "JPY"}
        lines = [line("T1", "3", "333.5", currency="JPY")]
        assert s.night("2026-03-02", customers=[customer], transactions=lines) == 0
        assert money(s.rows("invoices"), "currency", "net_amount", "tax_amount") == [
            ("JPY", net, tax_amount)]


VALIDITY = """\
kind: tax
version: 1
hit_policy: first
rounding_level: line
rules:
  - id: catering_old
    when: 'tax_category == "hospitality"'
    code: STD
    rate: 19%
    valid_to: "2025-12-31"
  - id: catering_new
    when: 'tax_category == "hospitality"'
    code: RED
    rate: 7%
    valid_from: "2026-01-01"
  - id: standard
    when: 'true'
    code: STD
    rate: 19%
    note: "Customer {customer.name}, VAT ID {customer.vat_id}"
"""


def test_rules_are_picked_by_txn_date_with_inclusive_bounds_and_notes_render(tmp_path):
    """100.00 of catering on 2025-12-31 is 19% (19.00); on 2026-01-01 it is 7% (7.00)."""
    s = Scenario(tmp_path, VALIDITY)
    customer = {**CUSTOMER, "vat_id": "DE123456789"}
    lines = [line("T1", "1", "100", txn_date="2025-12-31", tax_category="hospitality"),
             line("T2", "1", "100", txn_date="2026-01-01", tax_category="hospitality"),
             line("T3", "1", "10", txn_date="2026-01-02")]
    assert s.night("2026-03-02", customers=[customer], transactions=lines) == 0
    rows = s.rows("invoice_lines")
    assert money(rows, "txn_id", "tax_code", "tax_rate", "tax_amount", "rule_id", "rule_ref") == [
        ("T1", "STD", "0.19", "19", "catering_old", "tax.yaml:6"),
        ("T2", "RED", "0.07", "7", "catering_new", "tax.yaml:11"),
        ("T3", "STD", "0.19", "1.9", "standard", "tax.yaml:16")]
    assert rows[2]["tax_note"] == "Customer Alpha GmbH, VAT ID DE123456789"
    assert rows[0]["tax_note"] is None


UNIQUE = """\
kind: tax
version: 1
hit_policy: unique
rounding_level: line
rules:
  - id: de
    when: 'ship_to_country == "DE"'
    code: DE
    rate: 19%
  - id: books
    when: 'tax_category == "books" and product_code matches "^BK-"'
    code: RED
    rate: 7%
"""


def test_no_rule_or_two_rules_under_unique_hold_the_line_back(tmp_path):
    """T2 ships to FR (no rule); T3 is a German book (two rules): both are held back with
    an error naming the line; T1 is invoiced alone."""
    s = Scenario(tmp_path, UNIQUE)
    lines = [line("T1", "1", "10"), line("T2", "1", "10", ship_to_country="FR"),
             line("T3", "1", "10", tax_category="books", product_code="BK-1")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert [r["txn_id"] for r in s.rows("invoice_lines")] == ["T1"]
    problems = s.rows("exceptions")
    assert [(p["severity"], p["code"], p["entity_id"]) for p in problems] == [
        ("error", "TAX_NO_RULE", "T2"), ("error", "TAX_AMBIGUOUS", "T3")]
    assert problems[0]["message"] == (
        "no rule of tax.yaml matches line T2 (customer C1, ship to FR, category standard, "
        "dated 2026-03-01); held back since tonight, retried every night")
    assert details(problems[1])["matched"] == ["de", "books"]
    assert s.state("SELECT txn_id FROM held_lines ORDER BY txn_id") == [("T2",), ("T3",)]


def test_under_first_the_first_rule_decides_and_only_no_rule_holds_a_line(tmp_path):
    """The same rules under hit_policy first: the German book T3 is taxed by `de`, the
    first that matches, and only T2 (no rule) is held. The rules that match are not
    counted under `first` (nothing is held for matching two)."""
    s = Scenario(tmp_path, UNIQUE.replace("hit_policy: unique", "hit_policy: first"))
    lines = [line("T1", "1", "10"), line("T2", "1", "10", ship_to_country="FR"),
             line("T3", "1", "10", tax_category="books", product_code="BK-1")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert money(s.rows("invoice_lines"), "txn_id", "tax_code", "rule_id") == [
        ("T1", "DE", "de"), ("T3", "DE", "de")]
    (problem,) = s.rows("exceptions")
    assert (problem["code"], problem["entity_id"]) == ("TAX_NO_RULE", "T2")
    assert s.state("SELECT txn_id FROM held_lines") == [("T2",)]


def test_an_invoice_and_a_credit_note_numbered_alike_refuse_the_night(tmp_path, capsys):
    """Formats T-{year}-{seq:04} and T-{year}-{seq} differ, but give the same number from
    10000 on: the night whose invoice and credit note would both be T-2026-10000 is
    refused before anything is posted (E324), the numbers left as they were."""
    s = Scenario(tmp_path, tax_19())
    (s.rules / "client.yaml").write_text(CLIENT_YAML.replace("TC-{year}-{seq:04}",
                                                              "T-{year}-{seq}"))
    customers = [CUSTOMER, {**CUSTOMER, "customer_id": "C2"}]
    nights = [[line("T1", "1", "10"), line("T2", "-1", "10", customer="C2")],
              [line("T3", "1", "10"), line("T4", "-1", "10", customer="C2")]]
    assert s.night("2026-03-02", customers=customers, transactions=nights[0]) == 0
    assert [r["invoice_id"] for r in s.rows("invoices")] == ["T-2026-0001", "T-2026-1"]
    con = duckdb.connect(str(tmp_path / "state.duckdb"))
    con.execute("UPDATE sequences SET last_seq = 9999")
    con.close()
    assert s.night("2026-03-03", transactions=nights[1]) == 3
    err = capsys.readouterr().err
    assert ("error[E324]: document T-2026-10000 would be a second item of that id in the "
            "subledger (two of tonight's have it)") in err
    assert "give an invoice and a credit note the same number" in err
    assert s.state("SELECT series, last_seq FROM sequences ORDER BY 1") == [
        ("credit_note", 9999), ("invoice", 9999)]


def test_a_held_line_is_retried_each_night_under_that_nights_rules(tmp_path):
    s = Scenario(tmp_path, UNIQUE)
    lines = [line("T1", "1", "10", ship_to_country="FR")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert s.night("2026-03-03") == 0  # not sent again: still held, still reported
    (problem,) = s.rows("exceptions")
    assert "held back since 2026-03-02" in problem["message"]
    (s.rules / "tax.yaml").write_text(UNIQUE + """\
  - id: fr
    when: 'ship_to_country == "FR"'
    code: FR
    rate: 20%
""")
    assert s.night("2026-03-04") == 0
    assert money(s.rows("invoice_lines"), "txn_id", "tax_code", "tax_amount") == [
        ("T1", "FR", "2")]
    assert s.rows("exceptions") == []
    assert s.state("SELECT count(*) FROM held_lines") == [(0,)]
    # Sent again later, it is a duplicate of a billed line.
    assert s.night("2026-03-05", transactions=[*lines, line("T2", "1", "1")]) == 0
    assert [r["reason"] for r in s.rows("rejects")] == [
        "txn_id T1 was already processed on 2026-03-04"]


def test_grouping_numbering_due_dates_and_credit_notes(tmp_path):
    """Invoices per customer, currency and PO, numbered in that order (no PO first); a
    negative total is a credit note with its own series; due = as-of + terms."""
    s = Scenario(tmp_path, tax_19(), client_extra="payment_terms: {net_days: 14}\n")
    customers = [CUSTOMER, {**CUSTOMER, "customer_id": "C2", "payment_terms_days": "60"}]
    lines = [line("T1", "1", "100", po_number="PO-9"), line("T2", "1", "50"),
             line("T3", "2", "10", customer="C2"), line("T4", "-1", "80", customer="C2",
                                                         po_number="RMA-1"),
             line("T5", "-1", "30")]
    assert s.night("2026-03-02", customers=customers, transactions=lines) == 0
    assert money(s.rows("invoices"), "invoice_id", "document_type", "customer_id", "po_number",
                 "gross_amount", "due_date") == [
        ("T-2026-0001", "invoice", "C1", None, "23.8", __import__("datetime").date(2026, 3, 16)),
        ("T-2026-0002", "invoice", "C1", "PO-9", "119", __import__("datetime").date(2026, 3, 16)),
        ("T-2026-0003", "invoice", "C2", None, "23.8", __import__("datetime").date(2026, 5, 1)),
        ("TC-2026-0001", "credit_note", "C2", "RMA-1", "-95.2",
         __import__("datetime").date(2026, 3, 2))]  # a credit note is due when issued
    # 50 - 30 = 20 net on T-2026-0001: the return reduces the invoice (20 x 1.19 = 23.80).
    assert s.night("2026-03-03", transactions=[line("T6", "1", "1")]) == 0
    assert [r["invoice_id"] for r in s.rows("invoices")] == ["T-2026-0004"]
    assert s.state("SELECT series, year, last_seq FROM sequences ORDER BY series") == [
        ("credit_note", 2026, 1), ("invoice", 2026, 4)]


def test_numbering_continues_after_the_opening_items_of_the_same_year(tmp_path):
    s = Scenario(tmp_path, tax_19())
    opening = [{"invoice_id": f"T-2026-{n:04d}", "customer_id": "C1",
                "invoice_date": "2026-01-10", "due_date": "2026-02-09", "currency": "EUR",
                "amount_open": "10.00"} for n in (7, 41)]
    opening.append({**opening[0], "invoice_id": "T-2025-0099", "invoice_date": "2025-12-01"})
    opening += [{**opening[0], "invoice_id": i} for i in ("T-2026-0A99", "T-2026-", "XT-2026-0077",
                                                          "T-2026-0088-B")]  # not numbers of ours
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=[line("T1", "1", "1")],
                   opening_items=opening) == 0
    assert [r["invoice_id"] for r in s.rows("invoices")] == ["T-2026-0042"]


ACCOUNTS = """\
accounts:
  ar_control: "1400"
  cash: "1200"
  revenue: {default: "8400", by: {"BK-*": "8300"}}
  tax_payable: {default: "1770", by: {VAT19: "1776"}}
  write_off: "2400"
  unapplied_cash: "1590"
  dunning_fees: "2700"
  interest_income: "2650"
"""


def test_journal_entries_balance_and_name_their_rules(tmp_path):
    """Invoice of 100.00 (P-1 -> 8400) + 50.00 (BK-1 -> 8300) at 19%: Dr 1400 178.50 /
    Cr 8300 50.00 / Cr 8400 100.00 / Cr 1776 28.50."""
    s = Scenario(tmp_path, tax_19())
    replace_accounts(s.rules, ACCOUNTS)
    lines = [line("T1", "1", "100"), line("T2", "1", "50", product_code="BK-1")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    entries = s.rows("journal_entries")
    assert money(entries, "entry_id", "line_no", "account", "debit", "credit", "rule_id",
                 "rule_ref") == [
        ("JE-T-2026-0001", 1, "1400", "178.5", "0", "accounts.ar_control", "client.yaml:14"),
        ("JE-T-2026-0001", 2, "8300", "0", "50", "accounts.revenue.by.BK-*", "client.yaml:16"),
        ("JE-T-2026-0001", 3, "8400", "0", "100", "accounts.revenue.default", "client.yaml:16"),
        ("JE-T-2026-0001", 4, "1776", "0", "28.5", "de_standard", "tax.yaml:7")]
    assert sum(e["debit"] for e in entries) == sum(e["credit"] for e in entries)
    assert {(e["document_type"], e["document_id"], e["currency"]) for e in entries} == {
        ("invoice", "T-2026-0001", "EUR")}
    assert s.state("SELECT invoice_id, item_type, amount_original, amount_open FROM open_items"
                   ) == [("T-2026-0001", "invoice", __import__("decimal").Decimal("178.5000"),
                          __import__("decimal").Decimal("178.5000"))]


def test_a_journal_without_a_receivable_numbers_its_lines_from_one(tmp_path):
    """10.00 of P-1 (8400) and -10.00 of BK-1 (8300) at 19%: the invoice nets to zero, so
    no receivable and no tax line (1.90 - 1.90); the two revenue lines are lines 1 and 2."""
    s = Scenario(tmp_path, tax_19())
    replace_accounts(s.rules, ACCOUNTS)
    lines = [line("T1", "1", "10"), line("T2", "-1", "10", product_code="BK-1")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert money(s.rows("journal_entries"), "entry_id", "line_no", "account", "debit",
                 "credit", "memo") == [
        ("JE-T-2026-0001", 1, "8300", "10", "0", "revenue T-2026-0001"),
        ("JE-T-2026-0001", 2, "8400", "0", "10", "revenue T-2026-0001")]


REGIONS = """\
kind: tax
version: 1
hit_policy: unique
rounding_level: line
rules:
  - {id: ca, when: 'ship_to_region == "US-CA"', code: CA, rate: 7.25%}
  - {id: foreign, when: 'ship_to_region is null', code: EX, rate: 0%}
"""


def test_the_customers_region_is_the_ship_to_region_only_in_the_customers_country(tmp_path):
    """A Californian customer: a line without ship-to is taxed CA (100 x 7.25% = 7.25);
    one shipped to Mexico is not taken for California."""
    s = Scenario(tmp_path, REGIONS)
    customer = {**CUSTOMER, "country": "US", "region": "US-CA"}
    lines = [line("T1", "1", "100"), line("T2", "1", "100", ship_to_country="MX")]
    assert s.night("2026-03-02", customers=[customer], transactions=lines) == 0
    assert money(s.rows("invoice_lines"), "txn_id", "tax_code", "tax_amount") == [
        ("T1", "CA", "7.25"), ("T2", "EX", "0")]


def test_a_corrected_line_sent_again_replaces_the_held_one(tmp_path):
    s = Scenario(tmp_path, REGIONS)
    customer = {**CUSTOMER, "country": "US", "region": "US-FL"}
    assert s.night("2026-03-02", customers=[customer],
                   transactions=[line("T1", "1", "100"), line("T2", "1", "1", ship_to_country="MX")]) == 0
    assert [p["entity_id"] for p in s.rows("exceptions")] == ["T1"]  # Florida: no rule
    assert s.state("SELECT ship_to_country, ship_to_region FROM held_lines") == [(None, None)]
    fixed = line("T1", "1", "100", ship_to_country="US", ship_to_region="US-CA")
    assert s.night("2026-03-03", transactions=[fixed, line("T3", "1", "1", ship_to_country="MX")]) == 0
    assert money(s.rows("invoice_lines"), "txn_id", "tax_code") == [("T1", "CA"), ("T3", "EX")]
    assert s.state("SELECT count(*) FROM held_lines") == [(0,)]


def test_a_number_past_its_padding_keeps_every_digit(tmp_path):
    s = Scenario(tmp_path, tax_19())
    opening = [{"invoice_id": "T-2026-9998", "customer_id": "C1", "invoice_date": "2026-01-10",
                "due_date": "2026-02-09", "currency": "EUR", "amount_open": "10.00"}]
    customers = [CUSTOMER, {**CUSTOMER, "customer_id": "C2"}, {**CUSTOMER, "customer_id": "C3"}]
    lines = [line("T1", "1", "1"), line("T2", "1", "1", customer="C2"),
             line("T3", "1", "1", customer="C3")]
    assert s.night("2026-03-02", customers=customers, transactions=lines,
                   opening_items=opening) == 0
    assert [r["invoice_id"] for r in s.rows("invoices")] == [
        "T-2026-9999", "T-2026-10000", "T-2026-10001"]


def test_a_document_that_nets_to_zero_is_closed_at_once(tmp_path):
    s = Scenario(tmp_path, tax_19())
    lines = [line("T1", "1", "10"), line("T2", "-1", "10")]
    assert s.night("2026-03-02", customers=[CUSTOMER], transactions=lines) == 0
    assert money(s.rows("invoices"), "invoice_id", "gross_amount") == [("T-2026-0001", "0")]
    assert s.rows("journal_entries") == []  # nothing to book
    assert s.state("SELECT amount_open, closed_on FROM open_items") == [
        (__import__("decimal").Decimal("0.0000"), __import__("datetime").date(2026, 3, 2))]


def test_nights_run_in_date_order_and_future_lines_are_flagged(tmp_path):
    s = Scenario(tmp_path, tax_19())
    assert s.night("2026-03-02", customers=[CUSTOMER],
                   transactions=[line("T1", "1", "1", txn_date="2026-09-01")]) == 0
    (problem,) = s.rows("exceptions")
    assert (problem["severity"], problem["code"], problem["entity_id"]) == (
        "warning", "FUTURE_DATED", "T1")
    assert s.night("2026-03-04", transactions=[line("T2", "1", "1")]) == 0
    assert s.night("2026-03-03", transactions=[line("T3", "1", "1")]) == 3
    assert s.state("SELECT count(*) FROM runs") == [(2,)]


def test_a_held_line_is_not_billed_in_a_currency_its_customer_no_longer_uses(tmp_path):
    s = Scenario(tmp_path, UNIQUE)
    assert s.night("2026-03-02", customers=[CUSTOMER],
                   transactions=[line("T1", "1", "10", ship_to_country="FR")]) == 0
    (s.rules / "tax.yaml").write_text(UNIQUE + "  - {id: fr, when: 'ship_to_country == \"FR\"', "
                                               "code: FR, rate: 20%}\n")
    assert s.night("2026-03-03", customers=[{**CUSTOMER, "currency": "USD"}]) == 0
    assert s.rows("invoices") == []
    (problem,) = s.rows("exceptions")
    assert (problem["code"], problem["entity_id"]) == ("CURRENCY_CHANGED", "T1")
    assert problem["message"] == ("line T1 is in EUR, but customer C1 bills in USD now; held "
                                  "back since 2026-03-02: send it again in USD")
