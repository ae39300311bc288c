"""Rule files load with their positions; schema errors point at the offending value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config.ruleset import load_ruleset
from engine.config.yamlpos import load_yaml
from engine.errors import RuleError

DOC = """\
kind: tax
version: 1
rules:
  - id: a
    rate: 19.5
    when: 'quantity > 0'
    valid_from: 2026-01-01
    flags: [yes, no, NO, true]
  - id: b
    note: |
      first line
      second {customer.name}
"""


def test_every_value_and_key_knows_its_line_and_column():
    data, pos = load_yaml(DOC, "tax.yaml")
    assert pos.ref(("rules", 0, "rate")).line == 5 and pos.ref(("rules", 0, "rate")).col == 11
    assert pos.key_ref(("rules", 0, "when")).line == 6
    assert pos.key_ref(("rules", 0, "when")).col == 5
    assert pos.ref(("rules", 1, "id")).line == 9
    # Inside a quoted scalar, text positions move past the quote.
    assert pos.text_ref(("rules", 0, "when"), 1, 1).col == 12
    # Inside a block scalar, line 2 of the text is the file's line 12, at the block indent.
    ref = pos.text_ref(("rules", 1, "note"), 2, 8)
    assert (ref.line, ref.col) == (12, 14)


def test_yaml_values_are_exact_and_the_norway_problem_is_avoided():
    data, _ = load_yaml(DOC, "tax.yaml")
    rule = data["rules"][0]
    assert rule["rate"] == Decimal("19.5") and isinstance(rule["rate"], Decimal)
    assert rule["valid_from"] == "2026-01-01"  # dates stay text; the schema checks them
    assert rule["flags"] == ["yes", "no", "NO", True]


def test_yaml_syntax_error_and_duplicate_key_point_at_their_line():
    with pytest.raises(RuleError) as exc:
        load_yaml("kind: tax\nrules:\n  - id: a\n   when: x\n", "t.yaml")
    d = exc.value.diagnostics[0]
    assert (d.code, d.ref.line) == ("E100", 4)
    data, pos = load_yaml("kind: tax\nversion: 1\nkind: client\n", "t.yaml")
    (d,) = pos.problems  # reported, and loading goes on with the later value
    assert (d.code, d.ref.line, d.ref.col, d.message) == ("E101", 3, 1, "duplicate key 'kind'")
    assert data["kind"] == "client"


def _errors(client_dir, extra="", **files):
    with pytest.raises(RuleError) as exc:
        load_ruleset(client_dir(extra, **files))
    return [(d.code, d.ref.file.rsplit("/", 1)[-1], d.ref.line, d.ref.col, d.message, d.hint)
            for d in exc.value.diagnostics]


def test_schema_errors_are_reported_at_the_line_of_the_value(client_dir):
    tax = """\
    kind: tax
    version: 1
    hit_polcy: first
    rounding_level: per_line
    rules:
      - id: r1
        when: 'true'
        code: VAT
        rate: 19 percent
    """
    errors = _errors(client_dir, tax_yaml=tax)
    assert ("E110", "tax.yaml", 3, 1, "unknown key 'hit_polcy' in the file",
            "did you mean hit_policy?") in errors
    assert any(e[0] == "E112" and e[2:4] == (4, 17) for e in errors)  # per_line: not an enum
    assert any(e[0] == "E113" and e[2:4] == (9, 11) for e in errors)  # 19 percent
    assert any(e[0] == "E111" and "hit_policy" in e[4] for e in errors)


def test_every_problem_of_every_file_is_listed_at_once(client_dir):
    extra = """\
    rounding: half_down
    aging_buckets:
      - {name: current, max_days: 0}
      - {name: late}
      - {name: later, max_days: 30}
    """
    errors = _errors(client_dir, extra, notes_yaml="kind: notes\nversion: 1\n")
    codes = sorted(e[0] for e in errors)
    assert codes == ["E112", "E121"]  # client.yaml's typed checks wait for its schema errors
    client = client_dir()  # the same buckets with a valid rounding reach the typed checks
    (client / "client.yaml").write_text((client / "client.yaml").read_text() + extra.replace(
        "half_down", "half_even").replace("    ", ""))
    with pytest.raises(RuleError) as exc:
        load_ruleset(client)
    messages = [d.message for d in exc.value.diagnostics]
    assert "bucket late has no max_days but is not the last" in messages
    assert "the last bucket later must be open-ended" in messages


def test_client_yaml_is_typed(client_dir):
    folder = client_dir("""\
    payment_terms: {net_days: 14, discount: {percent: 2%, days: 10}}
    rounding: half_even
    """)
    with pytest.raises(RuleError) as exc:  # a discount needs an account to book it to
        load_ruleset(folder)
    assert [(d.code, d.ref.line) for d in exc.value.diagnostics] == [("E501", 23)]
    text = (folder / "client.yaml").read_text()
    (folder / "client.yaml").write_text(text.replace('  write_off: "2400"\n',
                                                     '  write_off: "2400"\n  discount: "8736"\n'))
    ruleset = load_ruleset(folder)
    client = ruleset.client
    assert (client.id, client.base_currency, client.net_days) == ("testco", "EUR", 14)
    assert client.discount_percent == Decimal("0.02") and client.discount_days == 10
    assert client.sets["EU"] == ("DE", "AT", "FR", "NO")
    assert client.rounding == "half_even" and client.max_reject_ratio == Decimal("0.5")
    assert [b.name for b in client.aging_buckets] == ["current", "d1_30", "d31_60", "d61_90",
                                                      "over_90"]
    assert client.accounts.revenue.default == "8400"
    assert ruleset.file_digests().keys() == {"client.yaml"}
    assert len(ruleset.digest) == 64


def test_computed_column_must_give_the_column_type(client_dir):
    extra = """\
    inputs:
      transactions:
        computed:
          quantity: '"one"'
          tax_categry: '"standard"'
    """
    errors = _errors(client_dir, extra)
    assert ("E212", "client.yaml", 26, 18, "expected a number, found text", None) in errors
    assert any(e[0] == "E133" and e[5] == "did you mean tax_category?" for e in errors)
