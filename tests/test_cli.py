"""The CLI: every command has help; check and compile exit codes and output."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

from engine.cli import build_parser, main

COMMANDS = ["check", "compile", "run"]


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
    assert "rules/nordwind: ok (5 files" in out and "rules/lakeshore: ok (5 files" in out


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


@pytest.mark.parametrize("dialect", ["duckdb", "spark", "postgres", "snowflake"])
def test_compile_prints_every_expression_in_the_dialect(dialect, capsys):
    assert main(["compile", str(ROOT / "rules" / "nordwind"), "--dialect", dialect]) == 0
    out = capsys.readouterr().out
    assert out.count("-- rules/nordwind/") + out.count(f"-- {ROOT}/rules/nordwind/") >= 16
    assert "-- ingest transactions: type and check every row" in out
    marker = {"duckdb": "REGEXP_MATCHES(product_code", "spark": "product_code RLIKE",
              "postgres": "product_code ~ ", "snowflake": "REGEXP_LIKE(product_code"}[dialect]
    assert marker in out


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
