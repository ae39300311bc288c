"""`ruledger check` on tax.yaml: overlaps under unique, dead rules, gaps in validity."""

from __future__ import annotations

import pytest
from conftest import replace_accounts

from engine.config.ruleset import load_ruleset
from engine.errors import RuleError

HEAD = """\
kind: tax
version: 1
hit_policy: {policy}
rounding_level: line
rules:
"""


def _load(client_dir, policy: str, rules: str):
    return load_ruleset(client_dir(tax_yaml=HEAD.format(policy=policy) + rules))


def _codes(diags) -> list[tuple[str, int, str]]:
    return [(d.code, d.ref.line, d.message) for d in diags]


def test_overlap_under_unique_is_an_error_with_an_example_line(client_dir):
    rules = """\
  - {id: eu_b2b, when: 'customer.country in EU and customer.vat_id is not null', code: RC, rate: 0%}
  - {id: de, when: 'ship_to_country == "DE"', code: DE, rate: 19%}
  - {id: at_b2c, when: 'customer.country == "AT" and customer.vat_id is null', code: AT, rate: 20%}
"""
    with pytest.raises(RuleError) as exc:
        _load(client_dir, "unique", rules)
    assert _codes(exc.value.diagnostics) == [
        ("E401", 7, 'rules eu_b2b and de both match a line such as customer.country = "AT", '
                    'customer.vat_id is not null, ship_to_country = "DE", but hit_policy is unique'),
        ("E401", 8, 'rules de and at_b2c both match a line such as customer.country = "AT", '
                    'customer.vat_id is null, ship_to_country = "DE", but hit_policy is unique')]
    # eu_b2b and at_b2c cannot overlap: one needs a VAT id, the other none.


def test_exclusive_rules_and_unprovable_ones_pass_under_unique(client_dir):
    rules = """\
  - {id: de, when: 'ship_to_country == "DE"', code: DE, rate: 19%}
  - {id: at, when: 'ship_to_country == "AT"', code: AT, rate: 20%}
  - {id: big, when: 'ship_to_country not in ["DE", "AT", "FR", "CH"] and quantity > 100',
     code: X, rate: 0%}
  - {id: regex, when: 'ship_to_country == "CH" and description matches "^A"', code: Y, rate: 0%}
  - {id: old_fr, when: 'ship_to_country == "FR"', code: F1, rate: 20%, valid_to: "2025-12-31"}
  - {id: new_fr, when: 'ship_to_country == "FR"', code: F2, rate: 21%, valid_from: "2026-01-01"}
"""
    ruleset = _load(client_dir, "unique", rules)
    assert ruleset.warnings == []


def test_a_rule_an_earlier_rule_always_catches_is_dead_under_first(client_dir):
    rules = """\
  - {id: eu, when: 'ship_to_country in EU', code: EU, rate: 0%}
  - {id: de_books, when: 'ship_to_country == "DE" and tax_category == "books"', code: B, rate: 7%}
  - {id: rest, when: 'true', code: S, rate: 19%}
  - {id: never, when: 'ship_to_country == "DE" and ship_to_country == "AT"', code: N, rate: 1%}
"""
    ruleset = _load(client_dir, "first", rules)
    assert _codes(ruleset.warnings) == [
        ("W402", 9, "rule never can never match: its condition and validity window cannot both "
                    "hold"),
        ("W403", 7, "rule de_books can never match: every line it matches is taken by the "
                    "earlier rule eu (hit_policy first)")]
    # `rest` still matches lines shipped outside the EU, so it is not reported.


def test_a_gap_between_a_rule_and_its_predecessor_is_reported(client_dir):
    rules = """\
  - {id: hosp_old, when: 'tax_category == "hospitality"', code: S, rate: 19%, valid_to: "2025-12-31"}
  - {id: hosp_new, when: 'tax_category == "hospitality"', code: R, rate: 7%, valid_from: "2026-01-05"}
  - {id: rest, when: 'true', code: S, rate: 19%}
"""
    ruleset = _load(client_dir, "first", rules)
    assert _codes(ruleset.warnings) == [(
        "W404", 7, "rule hosp_new starts on 2026-01-05, but hosp_old with the same condition "
                   "ends on 2025-12-31: lines dated 2026-01-01 to 2026-01-04 match neither")]


def test_the_shipped_clients_pass_every_tax_check():
    from conftest import ROOT
    for client in ("nordwind", "lakeshore"):
        assert load_ruleset(ROOT / "rules" / client).warnings == []


def test_gaps_are_found_by_meaning_and_rates_keep_six_places(client_dir):
    rules = """\
  - {id: a, when: 'tax_category == "x" and ship_to_country == "DE"', code: S, rate: 19%, valid_to: "2025-12-31"}
  - {id: b, when: 'ship_to_country == "DE" and tax_category == "x"', code: R, rate: 7%, valid_from: "2026-01-05"}
  - {id: rest, when: 'true', code: S, rate: 19%}
"""
    ruleset = _load(client_dir, "first", rules)
    assert [d.code for d in ruleset.warnings] == ["W404"]
    with pytest.raises(RuleError) as exc:
        _load(client_dir, "first", "  - {id: odd, when: 'true', code: S, rate: 8.87525%}\n")
    assert _codes(exc.value.diagnostics) == [
        ("E406", 6, "rate 8.87525% of rule odd has more than four decimal places of a percent")]


def test_a_tax_code_without_its_own_account_is_reported(client_dir):
    extra = """\
    accounts:
      ar_control: "1400"
      cash: "1200"
      revenue: "8400"
      tax_payable: {default: "1776", by: {"DE-*": "1776"}}
      write_off: "2400"
      unapplied_cash: "1590"
      dunning_fees: "2700"
      interest_income: "2650"
    """
    folder = client_dir(tax_yaml=HEAD.format(policy="first") + """\
  - {id: de, when: 'ship_to_country == "DE"', code: DE-STD, rate: 19%}
  - {id: be, when: 'ship_to_country == "BE"', code: OSS-BE, rate: 21%}
  - {id: rc, when: 'true', code: RC, rate: 0%}
""")
    replace_accounts(folder, extra)
    ruleset = load_ruleset(folder)
    assert _codes(ruleset.warnings) == [(
        "W405", 7, "tax code OSS-BE of rule be has no account under accounts.tax_payable.by; "
                   "its tax books to the default 1776")]
