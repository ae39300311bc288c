"""The CLI: every command has help; check and compile exit codes and output."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

from engine.cli import build_parser, main

COMMANDS = ["check", "compile", "run", "run-all", "runs", "test", "explain"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ruledger {command}") and len(out.splitlines()) > 5


def test_the_parser_knows_exactly_the_documented_commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)


def test_check_passes_on_the_shipped_clients(capsys):
    assert main(["check", str(ROOT / "rules" / "nordwind"), str(ROOT / "rules" / "lakeshore")]) == 0
    out = capsys.readouterr().out
    assert "rules/nordwind: ok (6 files" in out and "rules/lakeshore: ok (6 files" in out
    assert "2 custom rules" in out


def test_check_lists_every_error_with_its_place_and_exits_2(client_dir, capsys):
    rules = client_dir(tax_yaml="""\
    kind: tax
    version: 1
    hit_policy: first
    rounding_level: line
    rules:
      - id: r1
        when: 'customer.contry == "DE"'
        code: VAT
        rate: 19%
      - id: r2
        when: 'quantity > "3"'
        code: VAT
        rate: 19%
    """)
    assert main(["check", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}/tax.yaml:7:12: error[E210]: unknown field customer.contry" in err
    assert "   7 |     when: 'customer.contry == \"DE\"'\n     |            ^^^^^^^^^^^^^^^" in err
    assert "= hint: did you mean customer.country?" in err
    assert f"{rules}/tax.yaml:11:12: error[E212]: cannot compare a number with text" in err
    assert "2 error(s)" in err


def test_check_json_output(client_dir, capsys):
    rules = client_dir("rounding: half_down\n")
    assert main(["check", "--json", str(rules)]) == 2
    import json
    (problem,) = json.loads(capsys.readouterr().out)
    assert (problem["code"], problem["line"], problem["col"]) == ("E112", 23, 11)


@pytest.mark.parametrize("dialect", ["duckdb", "spark", "postgres", "snowflake", "bigquery"])
def test_compile_prints_every_expression_in_the_dialect(dialect, capsys):
    assert main(["compile", str(ROOT / "rules" / "nordwind"), "--dialect", dialect]) == 0
    out = capsys.readouterr().out
    assert out.count("-- rules/nordwind/") + out.count(f"-- {ROOT}/rules/nordwind/") >= 16
    assert "-- ingest transactions: type and check every row" in out
    marker = {"duckdb": "REGEXP_MATCHES(product_code", "spark": "product_code RLIKE",
              "postgres": "product_code ~ ", "snowflake": "REGEXP_LIKE(product_code",
              "bigquery": "REGEXP_CONTAINS(product_code"}[dialect]
    assert marker in out
    for stage in ("-- cash cash_refs", "-- cash by_reference: settle", "-- journal: payment"):
        assert stage in out


def test_bad_arguments_exit_2(capsys):
    assert main(["run", "rules/nordwind"]) == 2  # --drop is required
    assert main(["compile", "rules/nordwind", "--dialect", "oracle9"]) == 2


def test_console_script_runs_as_a_process():
    done = subprocess.run([sys.executable, "-m", "engine.cli", "--version"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("ruledger ")


def test_errors_in_client_yaml_do_not_hide_errors_in_other_files(client_dir, capsys):
    rules = client_dir("rounding: half-up\n", tax_yaml="""\
    kind: tax
    version: 1
    hit_policy: first
    rounding_level: line
    rules:
      - id: r1
        when: 'customer.contry in EU'
        code: VAT
        rate: 19%
    """)
    assert main(["check", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}/client.yaml:23:11: error[E112]: rounding: 'half-up'" in err
    assert "= hint: did you mean half_up?" in err
    # The set EU is still read from the client.yaml, so only the misspelt field is reported.
    assert f"{rules}/tax.yaml:7:12: error[E210]: unknown field customer.contry" in err
    assert "unknown set" not in err and "2 error(s)" in err


def test_one_broken_file_does_not_bury_the_others_under_false_errors(tmp_path, capsys):
    import shutil
    rules = tmp_path / "nordwind"
    shutil.copytree(ROOT / "rules" / "nordwind", rules)
    client = rules / "client.yaml"
    client.write_text(client.read_text().replace('name: "Nordwind Industriebedarf GmbH"',
                                                 "name: Nordwind: Industriebedarf"))
    tax = rules / "tax.yaml"
    doubled = "hit_policy: first\nhit_policy: first"
    tax.write_text(tax.read_text().replace("hit_policy: first", doubled)
                   .replace("customer.vat_id is not null", "customer.vatid is not null"))
    assert main(["check", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}/client.yaml:9:17: error[E100]: YAML syntax error" in err
    assert f"{rules}/tax.yaml:10:1: error[E101]: duplicate key 'hit_policy'" in err
    assert "unknown field customer.vatid" in err
    assert "unknown set" not in err and "3 error(s)" in err


def test_a_file_named_for_a_kind_must_be_that_kind(client_dir, capsys):
    rules = client_dir(tax_yaml="kind: dunning\nversion: 1\n")
    assert main(["check", str(rules)]) == 2
    assert "tax.yaml:1:7: error[E124]: tax.yaml says kind: dunning" in capsys.readouterr().err


def test_knobs_that_would_be_dangerous_in_the_books_are_refused(client_dir, capsys):
    rules = client_dir("""\
    payment_terms: {net_days: 30, discount: {percent: 2, days: 10}}
    inputs:
      payment:
        delimiter: ";"
      transactions:
        date_format: "%d.%m.%Q"
    """, tax_yaml="""\
    kind: tax
    version: 1
    hit_policy: first
    rounding_level: line
    rules:
      - id: r1
        when: 'product_code matches "^(?!BK-)" and ship_to_country not in [CH, US]'
        code: VAT
        rate: 19
    """)
    (rules / "client.yaml").write_text((rules / "client.yaml").read_text().replace(
        'credit_note: "TC-{year}-{seq:04}"', 'credit_note: "TC-{seq:04}"'))
    assert main(["check", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "client.yaml:10:16: error[E113]: invoice_numbering.credit_note: 'TC-{seq:04}' does " \
           "not have the expected form" in err
    assert "the sequence restarts each year, so the year must be in the number" in err
    assert "client.yaml:23:51: error[E113]: payment_terms.discount.percent: 2 is not valid" in err
    assert "a bare number above 1 is refused: write 19%" in err
    assert "client.yaml:25:3: error[E114]: 'payment' is not allowed as a key in inputs" in err
    assert "did you mean payments?" in err
    assert "tax.yaml:9:11: error[E113]: rules[0].rate: 19 is not valid here" in err
    assert "tax.yaml:7:33: error[E215]: the SQL engine's regular expressions (RE2)" in err
    assert "unknown field CH\n" in err and '= hint: text is quoted: write "CH"' in err


def test_date_format_must_be_readable(client_dir, capsys):
    rules = client_dir('inputs:\n  transactions:\n    date_format: "%d.%m.%Q"\n')
    assert main(["check", str(rules)]) == 2
    assert "error[E135]: date_format '%d.%m.%Q' of transactions" in capsys.readouterr().err


def test_a_single_equals_sign_gets_a_hint(client_dir, capsys):
    rules = client_dir(tax_yaml="""\
    kind: tax
    version: 1
    hit_policy: first
    rounding_level: line
    rules:
      - {id: r1, when: 'ship_to_country = "DE"', code: VAT, rate: 19%}
    """)
    assert main(["check", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "tax.yaml:6:37: error[E200]: syntax error: unexpected '='" in err
    assert "= hint: compare with == (a single = is not an operator)" in err


def test_runs_lists_the_run_log_without_changing_the_state(tmp_path, capsys):
    night = sorted((ROOT / "samples" / "lakeshore").iterdir())[0]
    state = tmp_path / "lakeshore.duckdb"
    assert main(["run", str(ROOT / "rules" / "lakeshore"), "--drop", str(night), "--state",
                 str(state), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    before = state.read_bytes()
    assert main(["runs", "lakeshore", "--state", str(state)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["as-of", "run", "id"] and len(table) == 2
    assert table[1].split()[0] == "2026-03-02" and table[1].split()[2] == "done"
    assert main(["runs", str(ROOT / "rules" / "lakeshore"), "--state", str(state), "--json"]) == 0
    (record,) = __import__("json").loads(capsys.readouterr().out)
    assert (record["as_of"], record["counts"]["rows_in"], record["counts"]["invoices"]) == (
        "2026-03-02", 86, 16)
    assert state.read_bytes() == before
    assert main(["runs", "lakeshore", "--state", str(tmp_path / "none.duckdb")]) == 2


def test_rule_folder_errors_of_every_kind_are_named(tmp_path, client_dir, capsys):
    """No client.yaml; two files of one kind; a rule file that is not UTF-8; numbering that
    reuses one format; a *.rules file that is not UTF-8."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty)]) == 2
    assert f"{empty}/client.yaml:1:1: error[E123]: {empty} has no client.yaml" in (
        capsys.readouterr().err)

    rules = client_dir(vat_yaml="kind: tax\nversion: 1\nhit_policy: first\n"
                                "rounding_level: line\nrules:\n  - {id: a, when: 'true', "
                                "code: S, rate: 19%}\n",
                       tax_yaml="kind: tax\nversion: 1\nhit_policy: first\nrounding_level: "
                                "line\nrules:\n  - {id: b, when: 'true', code: S, rate: 7%}\n")
    (rules / "notes.yaml").write_bytes(b"kind: tax\n# caf\xe9\n")
    client = rules / "client.yaml"
    client.write_text(client.read_text().replace('"TC-{year}-{seq:04}"', '"T-{year}-{seq:04}"'))
    assert main(["check", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "vat.yaml:1:7: error[E122]: a second tax file; the first is tax.yaml" in err
    assert "notes.yaml:1:1: error[E102]: not UTF-8 text (byte 15)" in err
    assert "error[E132]: invoices and credit notes need different number formats" in err

    ok = client_dir()  # the same folder, its client.yaml written afresh
    for name in ("notes.yaml", "vat.yaml", "tax.yaml"):
        (ok / name).unlink()
    (ok / "review.rules").write_bytes(b"rule x on invoices\n  raise info X \"caf\xe9\"\n")
    assert main(["check", str(ok)]) == 2
    assert "review.rules:1:1: error[E102]: not UTF-8 text (byte 38)" in capsys.readouterr().err
