"""Custom rules (`*.rules`): raise and set through real runs, and their diagnostics.

Most runs use the dunning ladder of test_dunning.py: level 2 (`letter`) is reached 24
days past due with a fixed fee of 5.00 and interest of 9.12% act/365. An item of
1,000.00 due 2025-12-31, seeded at level 1 with its last notice on 2026-02-01, rises to
level 2 on 2026-03-08 (67 days): fee 5.00, interest 1,000.00 x 9.12% x 67 / 365 = 16.74.
"""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal

from scenario import details, line
from test_dunning import CREDIT, charge_journal, charges, customer, item, notices, scenario

from engine.cli import main

D = Decimal


def _dunned(tmp_path, rules: str, **more: str):
    """C1 (strategic) and C2 (not), each with the item above; the night 2026-03-08."""
    s = scenario(tmp_path, **{"custom.rules": textwrap.dedent(rules), **more})
    items = [item(1, "2025-12-31", "1000.00", "C1", level=1, last="2026-02-01"),
             item(2, "2025-12-31", "1000.00", "C2", level=1, last="2026-02-01")]
    customers = [customer("C1", segment="strategic"), customer("C2")]
    assert s.night("2026-03-08", customers=customers, opening_items=items) == 0
    return s


def _custom(s, as_of: str | None = None) -> list[tuple]:
    return [(p["severity"], p["code"], p["entity_id"], p["message"], p["rule_id"],
             p["rule_ref"]) for p in s.rows("exceptions", as_of) if p["stage"] == "custom"]


def _two_payments() -> list[dict]:
    """Two payments of customer C1 received on 2026-03-02: P1 names "x", P2 names "y"."""
    return [{"payment_id": "P1", "received_on": "2026-03-02", "amount": "200.00",
             "currency": "EUR", "customer_id": "C1", "reference": "x"},
            {"payment_id": "P2", "received_on": "2026-03-02", "amount": "12.34",
             "currency": "EUR", "customer_id": "C1", "reference": "y"}]


NO_FEE = """\
    # Strategic accounts are never charged a dunning fee.
    rule strategic_no_fee on dunning_notices
      when customer.segment == "strategic"
      set fee_amount = 0
    """


def test_a_set_fee_is_what_the_books_follow(tmp_path):
    """C1's fee is set to 0: its notice shows 0 and names the rule, no fee item is opened
    and no fee is journaled; its interest stays. C2 keeps the ladder's fee."""
    s = _dunned(tmp_path, NO_FEE)
    assert [n[:8] + n[10:] for n in notices(s)] == [
        ("DN-20260308-C1-2-EUR", "C1", "T-2026-0001", 2, 67, "1000", "0", "16.74",
         "strategic_no_fee", "custom.rules:2"),
        ("DN-20260308-C2-2-EUR", "C2", "T-2026-0002", 2, 67, "1000", "5", "16.74",
         "letter", "dunning.yaml:10")]
    assert [c[:2] + c[4:5] for c in charges(s)] == [
        ("DN-20260308-C2-2-EUR-FEE", "fee", D("5")),
        ("T-2026-0001-INT-20260308", "interest", D("16.74")),
        ("T-2026-0002-INT-20260308", "interest", D("16.74"))]
    journal = charge_journal(s)  # balanced, dated, one per item
    assert {e[0] for e in journal} == {"JE-DN-20260308-C2-2-EUR-FEE",
                                       "JE-T-2026-0001-INT-20260308",
                                       "JE-T-2026-0002-INT-20260308"}
    assert _custom(s) == [
        ("info", "RULE_SET", "DN-20260308-C1-2-EUR",
         "rule strategic_no_fee set fee_amount from 5.0000 to 0.0000 on notice_id "
         "DN-20260308-C1-2-EUR invoice_id T-2026-0001", "strategic_no_fee", "custom.rules:2")]


def test_set_money_is_rounded_and_a_negative_fee_is_refused(tmp_path):
    """C1: 5.00 x 33.3% = 1.665, rounded half-up to 1.67, also in the fee's entry. C2: a
    second rule would set its fee to 5.00 - 10 = -5.00: refused (error), the fee stays."""
    s = _dunned(tmp_path, """\
        rule third_of_the_fee on dunning_notices
          when customer_id == "C1"
          set fee_amount = fee_amount * 33.3%

        rule bad_discount on dunning_notices
          when customer_id == "C2"
          set fee_amount = fee_amount - 10
        """)
    assert [n[6] for n in notices(s)] == ["1.67", "5"]
    fee_lines = [e for e in charge_journal(s) if e[0].endswith("-FEE")]
    assert sorted(fee_lines) == [
        ("JE-DN-20260308-C1-2-EUR-FEE", "1400", "1.67", "0"),
        ("JE-DN-20260308-C1-2-EUR-FEE", "2700", "0", "1.67"),
        ("JE-DN-20260308-C2-2-EUR-FEE", "1400", "5", "0"),
        ("JE-DN-20260308-C2-2-EUR-FEE", "2700", "0", "5")]
    assert [p[:3] + p[4:] for p in _custom(s)] == [
        ("info", "RULE_SET", "DN-20260308-C1-2-EUR", "third_of_the_fee", "custom.rules:1"),
        ("error", "RULE_SET_REFUSED", "DN-20260308-C2-2-EUR", "bad_discount",
         "custom.rules:5")]
    assert "to -5.0000; fee_amount is kept at 5.0000" in _custom(s)[1][3]


def test_raise_on_invoices_payments_and_lines_names_the_rule(tmp_path):
    """Three rules that raise, with messages from templates; the exception rows carry the
    rule's name and file:line and the customer, so the report can filter them."""
    s = scenario(tmp_path, **{"review.rules": textwrap.dedent("""\
        rule big_invoice on invoices
          when gross_amount >= 1000
          raise warning BIG_INVOICE "invoice {invoice_id} is {gross_amount} {currency}"

        rule round_payment on payments
          when amount > 0 and
               amount == round(amount, 0)   # a when may go on over lines
          raise info ROUND_PAYMENT "payment {payment_id}: round amount"

        rule a_lot_of_units on invoice_lines
          when quantity > 50 and invoice.currency == "EUR"
          raise info MANY_UNITS "{quantity} units on line {line_no} of {invoice_id}"
        """), "matching.yaml": "kind: matching\nversion: 1\nstrategies:\n"
              "  - {id: by_reference, type: reference}\n"})
    assert s.night("2026-03-02", customers=[customer("C1"), customer("C2")],
                   transactions=[line("T1", "10", "100.00"), line("T2", "60", "1.00", "C2")],
                   payments=_two_payments()) == 0
    invoices = {i["customer_id"]: i for i in s.rows("invoices")}
    c1, c2 = invoices["C1"]["invoice_id"], invoices["C2"]["invoice_id"]
    assert invoices["C1"]["gross_amount"] == D("1190")  # 1,000.00 + 19% VAT
    raised = sorted(_custom(s))
    assert raised == sorted([
        ("warning", "BIG_INVOICE", c1, f"invoice {c1} is 1190.0000 EUR", "big_invoice",
         "review.rules:1"),
        ("info", "ROUND_PAYMENT", "P1", "payment P1: round amount", "round_payment",
         "review.rules:5"),
        ("info", "MANY_UNITS", c2, f"60.000000 units on line 1 of {c2}", "a_lot_of_units",
         "review.rules:10")])
    by_code = {p["code"]: p for p in s.rows("exceptions") if p["stage"] == "custom"}
    assert details(by_code["BIG_INVOICE"]) == {"customer_id": "C1", "table": "invoices"}
    assert details(by_code["ROUND_PAYMENT"])["customer_id"] == "C1"


def test_a_set_decision_replaces_the_hold_and_its_exception(tmp_path):
    """C1 owes 1,190.00 against a limit of 1,000 (over: hold); the rule releases it to
    `ok`, so no CREDIT_HOLD is raised. C2 under its limit is untouched."""
    credit = CREDIT.replace("default_limit: 100000", "default_limit: 1000")
    s = scenario(tmp_path, **{"credit.yaml": credit, "release.rules": textwrap.dedent("""\
        rule cfo_release on credit_decisions
          when customer_id == "C1" and decision == "hold"
          set decision = "ok"
        """)})
    assert s.night("2026-03-02", customers=[customer("C1"), customer("C2")],
                   transactions=[line("T1", "10", "100.00"), line("T2", "1", "10.00", "C2")]
                   ) == 0
    decisions = {d["customer_id"]: (d["decision"], d["rule_id"], d["rule_ref"])
                 for d in s.rows("credit_decisions")}
    assert decisions == {"C1": ("ok", "cfo_release", "release.rules:1"),
                         "C2": ("ok", "default", "credit.yaml:3")}
    assert not [p for p in s.rows("exceptions") if p["code"] == "CREDIT_HOLD"]
    assert [p[:3] for p in _custom(s)] == [("info", "RULE_SET", "C1")]
    assert "set decision from hold to ok" in _custom(s)[0][3]


def test_changing_a_rules_file_changes_the_digest_and_the_rows(tmp_path):
    """The manifest names the .rules file's sha256; editing the rule changes the rule-set
    digest and the notice rows the rule made."""
    first = _dunned(tmp_path / "a", NO_FEE)
    second = _dunned(tmp_path / "b", NO_FEE.replace("= 0", "= 1"))
    manifests = [json.loads((s.tmp / "out" / "testco" / "2026-03-08" / "manifest.json")
                            .read_text()) for s in (first, second)]
    assert manifests[0]["rules"]["files"]["custom.rules"] != (
        manifests[1]["rules"]["files"]["custom.rules"])
    assert manifests[0]["rules"]["digest"] != manifests[1]["rules"]["digest"]
    assert [n[6] for n in notices(first)] == ["0", "5"]
    assert [n[6] for n in notices(second)] == ["1", "5"]


# --- diagnostics ----------------------------------------------------------------------

def _check(tmp_path, rules: str, capsys) -> tuple[int, str]:
    s = scenario(tmp_path, **{"my.rules": textwrap.dedent(rules)})
    code = main(["check", str(s.rules)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_errors_name_file_line_column_and_what_was_expected(tmp_path, capsys):
    code, out = _check(tmp_path, """\
        rule one on invoice
          raise warning X "x"

        rule two on invoices
          when gross_amount > 10 and
               customer.contry == "DE"
          raise warning TWO "two"

        rule three on invoices
          raise loud THREE "three"

        rule four on invoices
          when net_amount >
          raise info FOUR "four"

        rule five on dunning_notices
          set amount_open = 0

        rule six on dunning_notices
          set fee_amount = "none"

        rule seven on invoices
          when gross_amount > 0
        """, capsys)
    assert code == 2
    assert "my.rules:1:13: error[E801]: unknown table 'invoice' for rule one" in out
    assert "did you mean invoices?" in out
    assert "my.rules:6:8: error[E210]: unknown field customer.contry" in out
    assert "did you mean customer.country?" in out
    assert "my.rules:10:9: error[E804]: unknown severity 'loud'" in out
    assert "my.rules:13:20: error[E200]: syntax error: unexpected the end of the expression" in (
        out)
    assert ("my.rules:17:7: error[E806]: dunning_notices.amount_open cannot be set: it is "
            "computed from other values") in out
    assert "fields a rule may set on dunning_notices: fee_amount, interest_amount" in out
    assert "my.rules:20:20: error[E212]: expected a number, found text" in out
    assert "my.rules:22:1: error[E802]: rule seven neither raises nor sets" in out


def test_the_lint_warns_of_codes_sets_and_rules_that_cannot_match(tmp_path, capsys):
    code, out = _check(tmp_path, """\
        rule a on invoices
          when gross_amount > 100
          raise warning BIG "big"

        rule b on invoices
          when gross_amount > 1000
          raise error BIG "bigger"

        rule c on invoices
          when gross_amount > 10 and gross_amount < 5
          raise info NEVER "never"

        rule d on dunning_notices
          set template = "letter_friendly"

        rule e on payments
          raise error PAYMENT_UNMATCHED "mine"

        rule f on aging
          when total_open > 0 and customer.segment == "strategic"
          raise info STRATEGIC_OPEN "{customer_id} owes {total_open}"
        """, capsys)
    assert code == 0  # warnings: the rules load
    assert "my.rules:5:1: warning[W810]: BIG is raised as error here and as warning by" in out
    assert "my.rules:10:8: warning[W812]: rule c can never match" in out
    assert ("my.rules:14:18: warning[W811]: no later stage reads dunning_notices.template"
            in out)
    assert ("my.rules:16:1: warning[W810]: PAYMENT_UNMATCHED is an engine code, raised as "
            "warning, and as error here") in out
    code, out = _check(tmp_path / "again", """\
        rule a on invoices
          raise info A "a"
        rule a on aging
          raise info A "a again"
        """, capsys)
    assert code == 2 and "my.rules:3:1: error[E808]: a second rule named a" in out


def test_compile_shows_one_statement_per_rule(tmp_path, capsys):
    s = scenario(tmp_path, **{"custom.rules": textwrap.dedent(NO_FEE)})
    assert main(["compile", str(s.rules), "--dialect", "postgres"]) == 0
    out = capsys.readouterr().out
    head = out.index("-- custom rule strategic_no_fee on dunning_notices")
    shown = out[head:]
    assert "set fee_amount; the rows it gives are written back by key" in shown
    assert "FROM dunning_notices AS t" in shown
    assert "LEFT JOIN state.customers AS customer" in shown
    assert "customer.segment = 'strategic'" in shown


def test_the_engine_codes_table_names_every_code_the_stages_raise():
    """ENGINE_CODES (what W810 compares custom codes with) against the source: every
    `Problem("<severity>", "<CODE>", ...)` of engine/ is listed with that severity."""
    import re

    from conftest import ROOT

    from engine.exceptions import ENGINE_CODES

    raised: dict[str, set[str]] = {}
    pattern = re.compile(r'Problem\(\s*"(info|warning|error)",\s*"([A-Z_]+)"')
    for path in (ROOT / "engine").rglob("*.py"):
        for severity, code in pattern.findall(path.read_text()):
            raised.setdefault(code, set()).add(severity)
    assert len(raised) >= 18
    assert {c: set(s) for c, s in ENGINE_CODES.items()} == raised


def test_malformed_clauses_are_named_at_their_place(tmp_path, capsys):
    code, out = _check(tmp_path, """\
        when amount > 0
        rule a on payments
          when amount > 0
          when amount < 10
          raise info A "a"
        rule b on payments
          raise info not_upper "b"
        rule c on payments
          raise info C unquoted
        rule d on dunning_notices
          set fee_amount 0
        rule e on dunning_notices
          set fee_amount = 1
          set fee_amount = 2
        rule f on credit_decisions
          set decision = "Hold!"
        """, capsys)
    assert code == 2
    assert "my.rules:1:1: error[E800]: expected a rule: `rule <name> on <table>`" in out
    assert "my.rules:4:3: error[E803]: rule a has a second `when`" in out
    assert "my.rules:7:14: error[E804]: exception code 'not_upper' is not UPPER_SNAKE_CASE" in out
    assert "my.rules:9:16: error[E804]: the message is a quoted string" in out
    assert "my.rules:11:3: error[E805]: expected `set <field> = <value>`" in out
    assert "my.rules:14:3: error[E807]: rule e sets fee_amount twice" in out
    assert "my.rules:16:18: error[E806]: 'Hold!' is not a value of credit_decisions.decision" in out


def test_a_set_that_gives_no_value_is_refused(tmp_path):
    """C1's notice action would be set to nothing (C1 has no vat_id): refused, kept."""
    s = _dunned(tmp_path, """\
        rule action_from_the_vat_id on dunning_notices
          when customer_id == "C1"
          set action = customer.vat_id
        """)
    assert [n[8] for n in notices(s)] == ["letter", "letter"]
    assert [p[:3] + p[4:] for p in _custom(s)] == [
        ("error", "RULE_SET_REFUSED", "DN-20260308-C1-2-EUR", "action_from_the_vat_id",
         "custom.rules:1")]
    assert "to no value; action is kept at letter" in _custom(s)[0][3]


def test_a_rule_on_cash_applications_reads_the_payment_it_applies(tmp_path):
    """`payment.*` in a rule on cash_applications is tonight's accepted payment row: P1's
    reference is "x", P2's "y"; each is unmatched, so each has one row of unapplied cash,
    and only P1's is raised."""
    s = scenario(tmp_path, **{"review.rules": textwrap.dedent("""\
        rule from_x on cash_applications
          when payment.reference == "x"
          raise info FROM_X "{payment_id} keeps {applied_amount} unapplied"
        """), "matching.yaml": "kind: matching\nversion: 1\nstrategies:\n"
              "  - {id: by_reference, type: reference}\n"})
    assert s.night("2026-03-02", customers=[customer("C1")],
                   payments=_two_payments()) == 0
    assert _custom(s) == [("info", "FROM_X", "P1", "P1 keeps 200.0000 unapplied", "from_x",
                           "review.rules:1")]
