"""`ruledger test`: rule tests as real nights, their failures as readable tables."""

from __future__ import annotations

import json
import textwrap

from conftest import ROOT, STANDARD_TAX
from scenario import Scenario

from engine.cli import main

CUSTOMER = "{customer_id: C1, name: Alpha GmbH, country: DE, currency: EUR}"
LINE = ("{txn_id: T1, customer_id: C1, txn_date: 2026-03-02, product_code: P1, quantity: 3, "
        "unit_price: 0.35, currency: EUR}")


def _client(tmp_path, tests: str, tax: str = STANDARD_TAX):
    s = Scenario(tmp_path, tax=tax)
    (s.rules / "tests").mkdir()
    (s.rules / "tests" / "tax.yaml").write_text(textwrap.dedent(tests))
    return s.rules


def test_a_passing_and_a_failing_test(tmp_path, capsys):
    """3 x 0.35 = 1.05 at 19% = 0.1995, so 0.20 tax. The second test expects 0.21 and a
    line that does not exist: its failure shows both as a table, - expected, + actual."""
    rules = _client(tmp_path, f"""\
        tests:
          - name: nineteen_percent
            given:
              customers: [{CUSTOMER}]
              transactions: [{LINE}]
            expect:
              invoice_lines:
                - {{txn_id: T1, net_amount: 1.05, tax_amount: 0.20}}
              exceptions: {{absent: [{{code: TAX_NO_RULE}}]}}
          - name: wrong_on_purpose
            as_of: 2026-03-02
            given:
              customers: [{CUSTOMER}]
              transactions: [{LINE}]
            expect:
              invoice_lines:
                - {{txn_id: T1, net_amount: 1.05, tax_amount: 0.21}}
                - {{txn_id: T9}}
        """)
    assert main(["test", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "  ok    nineteen_percent\n" in out
    assert f"  FAIL  wrong_on_purpose  ({rules}/tests/tax.yaml:10:11)\n" in out
    assert "\n".join([
        "        invoice_lines: 2 expected row(s) not found, 1 row(s) not expected",
        "            txn_id  net_amount  tax_amount",
        "          - T1      1.05        0.21",
        "          - T9",
        "          + T1      1.05        0.20",
        "          (- expected, not in the output; + in the output, not expected)"]) in out
    assert out.rstrip().endswith(f"{rules}: 2 tests, 1 passed, 1 failed")

    assert main(["test", str(rules), "--json"]) == 1
    results = json.loads(capsys.readouterr().out)
    assert [(r["test"], r["passed"]) for r in results] == [
        ("nineteen_percent", True), ("wrong_on_purpose", False)]


def test_contains_and_absent(tmp_path, capsys):
    """No tax rule covers a US customer's line: TAX_NO_RULE is raised (contains), no
    invoice is made, and the absent check of the exception fails, naming the row."""
    rules = _client(tmp_path, tax=STANDARD_TAX.replace("'true'", "'customer.country == \"DE\"'"),
                    tests="""\
        tests:
          - name: no_rule
            given:
              customers: [{customer_id: C9, name: Far Inc, country: US, currency: EUR}]
              transactions:
                - {txn_id: T1, customer_id: C9, txn_date: 2026-03-02, product_code: P1,
                   quantity: 1, unit_price: 10.00, currency: EUR}
            expect:
              exceptions:
                contains: [{code: TAX_NO_RULE, entity_id: T1, severity: error}]
                absent: [{code: TAX_NO_RULE}]
              invoices: []
        """)
    assert main(["test", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "exceptions: 1 row(s) found that should be absent" in out
    assert "expected row(s) not found" not in out  # contains and the empty invoices hold


def test_bad_test_files_are_rule_errors_at_their_place(tmp_path, capsys):
    rules = _client(tmp_path, f"""\
        tests:
          - name: typos
            as_of: 2026-03-02
            given:
              customer: [{CUSTOMER}]
              transactions:
                - {{txn_id: T1, quantiy: 1}}
            expect:
              invoice_line: []
              invoices: [{{gross: 1}}]
        """)
    assert main(["test", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "tests/tax.yaml:5:7: error[E903]: unknown input table 'customer'" in err
    assert "did you mean customers?" in err
    assert "tests/tax.yaml:7:24: error[E905]: unknown column 'quantiy' of transactions" in err
    assert "did you mean quantity?" in err
    assert "tests/tax.yaml:9:7: error[E903]: unknown output table 'invoice_line'" in err
    assert "tests/tax.yaml:10:19: error[E905]: unknown column 'gross' of invoices" in err
    assert "columns: invoice_id, document_type, customer_id" in err


def test_a_night_that_cannot_run_fails_the_test(tmp_path, capsys):
    """Lines of a customer that is in neither the rows nor the state: the first night has
    no customers, which is refused, and the test says so."""
    rules = _client(tmp_path, f"""\
        tests:
          - name: no_customers
            given:
              transactions: [{LINE}]
            expect:
              invoices: []
        """)
    assert main(["test", str(rules)]) == 1
    assert "the night did not run:" in capsys.readouterr().out


def test_the_shipped_clients_tests_pass(capsys):
    folders = [str(ROOT / "rules" / c) for c in ("nordwind", "lakeshore")]
    assert main(["test", *folders]) == 0
    out = capsys.readouterr().out
    for client in ("nordwind", "lakeshore"):
        for kind in ("tax", "matching", "credit", "dunning", "custom"):
            assert f"rules/{client}/tests/{kind}.yaml" in out
    assert "FAIL" not in out


def test_every_malformed_test_is_named(tmp_path, capsys):
    rules = _client(tmp_path, f"""\
        tests:
          - name: no_expectation
            as_of: 2026-03-02
            given: {{customers: [{CUSTOMER}]}}
          - name: twice
            as_of: 2026-03-02
            expect: {{invoices: []}}
          - name: twice
            as_of: 2026-03-02
            expect: {{invoices: []}}
            expected: {{}}
          - name: bad_shape
            as_of: 2026-03-02
            expect: {{invoices: {{maybe: []}}}}
          - name: no_date
            given: {{customers: [{CUSTOMER}]}}
            expect: {{invoices: []}}
          - name: bad_date
            as_of: 2026-02-30
            expect: {{invoices: []}}
        """)
    assert main(["test", str(rules)]) == 2
    err = capsys.readouterr().err
    for expected in (
            "tax.yaml:2:5: error[E900]: test no_expectation expects nothing",
            "tax.yaml:11:5: error[E902]: unknown key 'expected' in a test",
            "did you mean expect?",
            "tax.yaml:14:24: error[E904]: expect.invoices is a list of rows, or `contains:` / "
            "`absent:` lists",
            "tax.yaml:15:5: error[E906]: test no_date needs an as_of",
            "tax.yaml:19:12: error[E906]: as_of '2026-02-30' is not a date YYYY-MM-DD",
            "tax.yaml:5:11: error[E901]: two tests named twice"):
        assert expected in err
    (rules / "tests" / "tax.yaml").write_text("- just a list\n")
    assert main(["test", str(rules)]) == 2
    assert "error[E900]: a test file holds `tests:`, a list of tests" in capsys.readouterr().err
