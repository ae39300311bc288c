"""`ruledger explain`: one record's rules, from a sandbox run that changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import ROOT

from engine.cli import main

NORDWIND = ROOT / "rules" / "nordwind"
FIRST, SECOND = sorted((ROOT / "samples" / "nordwind").iterdir())[:2]


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def after_first(tmp_path_factory) -> Path:
    """nordwind's state after its first sample night."""
    tmp = tmp_path_factory.mktemp("explain")
    assert main(["run", str(NORDWIND), "--drop", str(FIRST), "--state", str(tmp / "s.duckdb"),
                 "--out", str(tmp / "out")]) == 0
    return tmp


def _explain(tmp: Path, entity: str, capsys, night: Path = SECOND) -> tuple[int, str]:
    code = main(["explain", str(NORDWIND), "--drop", str(night), "--entity", entity,
                 "--state", str(tmp / "s.duckdb")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_invoice_shows_every_tax_rule_tried_and_changes_nothing(after_first, capsys):
    """NW-2026-000070 (2026-03-03): its one line is German standard-rated: the rules above
    de_standard do not match, de_standard does, and gives 238.80 x 19% = 45.372 -> 45.37."""
    before = _tree(after_first)
    code, out = _explain(after_first, "invoice:NW-2026-000070", capsys)
    assert code == 0
    assert "invoice NW-2026-000070: customer C10002, EUR net 238.80, tax 45.37, gross " \
           "284.17, due 2026-04-02" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("  tax.yaml:")]
    assert [(w[0], w[1], w[2]) for w in lines] == [
        ("tax.yaml:18", "export_non_eu", "no"), ("tax.yaml:27", "reverse_charge_eu_b2b", "no"),
        ("tax.yaml:38", "oss_at_standard", "no"), ("tax.yaml:43", "oss_fr_standard", "no"),
        ("tax.yaml:48", "oss_nl_standard", "no"),
        ("tax.yaml:57", "de_hospitality_until_2025", "no"),
        ("tax.yaml:62", "de_hospitality_from_2026", "no"), ("tax.yaml:71", "de_reduced", "no"),
        ("tax.yaml:75", "de_standard", "yes")]
    assert out.splitlines()[-1] == "  (none)" and "-> DE-STD 19%, tax 45.37" in out
    assert "review.rules:4     credit_note_review on invoices (raise CREDIT_NOTE_REVIEW) no" \
        in out
    assert _tree(after_first) == before  # a sandbox: state and outputs as they were


def test_a_payment_shows_the_strategies_in_order(after_first, capsys):
    """E2E-260303-001 pays NW-2026-000048 (1,011.50) by reference, 2% early: 991.27 and
    a discount of 20.23. E2E-260303-002 names no invoice; the amount strategy finds it."""
    code, out = _explain(after_first, "payment:E2E-260303-001", capsys)
    assert code == 0
    assert ("matching.yaml:17   by_reference (reference)                     yes  -> "
            "NW-2026-000048 991.27 (+ discount 20.23)") in out
    assert "matching.yaml:27   by_amount (amount)                           no" in out
    code, out = _explain(after_first, "payment:E2E-260303-002", capsys)
    assert "by_reference (reference)                     no" in out
    assert "by_amount (amount)                           yes  -> NW-2026-000060 64.68" in out


def test_a_customer_shows_the_limit_and_the_decision(after_first, capsys):
    """C10017 has an override of 120,000 through 03-31, so the `new` segment's rule is not
    the limit. Exposure 108,377.23 / 120,000 = 0.9031: over 80% (warn), under 100%."""
    code, out = _explain(after_first, "customer:C10017", capsys)
    assert code == 0
    assert "credit.yaml:26     override:C10017 120,000.00                   yes  -> the limit" \
        in out
    assert "credit.yaml:21     new_or_small 10,000.00                       yes\n" in out
    assert "credit.yaml:33     over_limit: 100% -> hold                     no" in out
    assert "credit.yaml:36     near_limit: 80% -> warn                      yes" in out
    assert "exposure 108377.23, utilization 0.9031: warn (override:C10017, credit.yaml:26)" \
        in out


def test_the_latest_night_is_explained_from_the_state_before_it(after_first, tmp_path, capsys):
    """Explaining night 2 once it is posted gives what explaining it beforehand gave."""
    _, first = _explain(after_first, "invoice:NW-2026-000070", capsys)
    for name in ("s.duckdb", "s.duckdb.before"):
        if (after_first / name).exists():
            (tmp_path / name).write_bytes((after_first / name).read_bytes())
    assert main(["run", str(NORDWIND), "--drop", str(SECOND), "--state",
                 str(tmp_path / "s.duckdb"), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    code, again = _explain(tmp_path, "invoice:NW-2026-000070", capsys)
    assert code == 0 and again == first


def test_unknown_records_and_bad_entities_are_said_plainly(after_first, capsys):
    code, out = _explain(after_first, "invoice:NW-2099-000001", capsys)
    assert code == 3 and "invoice:NW-2099-000001 is not in the night of 2026-03-03" in out
    code, out = _explain(after_first, "order:42", capsys)
    assert code == 2 and "--entity 'order:42' is not KIND:ID" in out


def test_a_custom_rule_that_matched_says_what_it_raised(after_first, capsys):
    """The credit note of 2026-03-04 (-1,595.00, over 1,000) trips review.rules."""
    night = sorted((ROOT / "samples" / "nordwind").iterdir())[2]
    code, out = _explain(after_first, "invoice:NW-CN-2026-000002", capsys, night)
    assert code == 0
    assert ("review.rules:4     credit_note_review on invoices (raise CREDIT_NOTE_REVIEW) yes  "
            "credit note NW-CN-2026-000002 of -1595.0000 USD needs sign-off") in out
    assert "tax.yaml:18        export_non_eu                                yes  -> EXPORT 0%" \
        in out


def test_a_night_before_the_latest_is_refused(after_first, tmp_path, capsys):
    (tmp_path / "s.duckdb").write_bytes((after_first / "s.duckdb").read_bytes())
    assert main(["run", str(NORDWIND), "--drop", str(SECOND), "--state",
                 str(tmp_path / "s.duckdb"), "--out", str(tmp_path / "out")]) == 0
    code, out = _explain(tmp_path, "invoice:NW-2026-000001", capsys, FIRST)
    assert code == 3
    assert "error[E009]: 2026-03-02 is not the client's latest night (2026-03-03)" in out


def test_a_first_night_already_posted_is_explained_from_nothing(after_first, tmp_path,
                                                                capsys):
    """The client's only night started from no state; explaining it again starts there."""
    night = sorted((ROOT / "samples" / "nordwind").iterdir())[0]
    code, out = _explain(after_first, "payment:E2E-260302-001", capsys, night)
    assert code == 0 and "2026-03-02, run in a sandbox" in out
    assert "payment E2E-260302-001:" in out
