"""`ruledger run-all`: many clients, each in its own process, failures kept apart."""

from __future__ import annotations

import json
import shutil

from conftest import ROOT

from engine.cli import main

NIGHT = "2026-03-02"


def _clients(tmp):
    """nordwind and lakeshore with their night; `broken` with a typo in client.yaml;
    `empty`, whose first night has no customers (refused); `idle`, with no drop."""
    rules, drops = tmp / "rules", tmp / "drops"
    for name, source in (("nordwind", "nordwind"), ("lakeshore", "lakeshore"),
                         ("broken", "nordwind"), ("empty", "lakeshore"), ("idle", "lakeshore")):
        shutil.copytree(ROOT / "rules" / source, rules / name)
        text = (rules / name / "client.yaml").read_text().replace(f"id: {source}", f"id: {name}")
        if name == "broken":
            text = text.replace("rounding: half_up", "rounding: half-up")
        (rules / name / "client.yaml").write_text(text)
        if name != "idle":
            shutil.copytree(ROOT / "samples" / source / NIGHT, drops / name / NIGHT)
    (drops / "empty" / NIGHT / "customers.csv").unlink()
    return rules, drops


def test_run_all_isolates_failures_and_ends_with_the_worst_exit_code(tmp_path, capsys):
    rules, drops = _clients(tmp_path)
    args = ["run-all", str(rules), "--drops", str(drops), "--as-of", NIGHT, "--jobs", "3",
            "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "out")]
    assert main(args) == 3  # refused (3) is worse than bad rules (2)
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:-1]
            if line and not line.startswith(" ")}
    assert rows["nordwind"][:4] == ["done", "83", "18", "2"]
    assert rows["lakeshore"][:4] == ["done", "86", "16", "6"]  # one from review.rules
    assert rows["broken"][:2] == ["bad", "rules"] and rows["empty"][0] == "refused"
    assert rows["idle"][:2] == ["no", "drop"]
    assert "client.yaml:26: rounding: 'half-up' is not one of half_up, half_even" in out
    assert "4 of 5 clients had a drop; exit 3" in out
    for name in ("nordwind", "lakeshore"):  # the good clients are posted in full
        assert (tmp_path / "out" / name / NIGHT / "manifest.json").exists()
        assert (tmp_path / "state" / f"{name}.duckdb").exists()
    assert not (tmp_path / "out" / "broken").exists()
    assert "first night and has no customers" in (
        tmp_path / "out" / ".logs" / NIGHT / "empty.log").read_text()

    # Again: the posted nights are unchanged, the others fail as before.
    assert main([*args, "--json"]) == 3
    status = {r["client"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert status == {"broken": "bad rules", "empty": "refused", "idle": "no drop",
                      "lakeshore": "unchanged", "nordwind": "unchanged"}


def test_run_all_replace_runs_again_only_the_clients_whose_night_changed(tmp_path, capsys):
    """nordwind's payments of the night change, lakeshore's do not: with --replace the
    batch replaces nordwind's night and finds lakeshore's unchanged; without it, the
    changed night is refused."""
    rules, drops = _clients(tmp_path)
    for name in ("broken", "empty", "idle"):
        shutil.rmtree(rules / name)
    args = ["run-all", str(rules), "--drops", str(drops), "--as-of", NIGHT, "--json",
            "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    first = {r["client"]: r["run_id"] for r in json.loads(capsys.readouterr().out)}
    payments = drops / "nordwind" / NIGHT / "payments.jsonl"
    payments.write_text(payments.read_text().replace('"amount": "1190.00"',
                                                      '"amount": "1189.00"'))
    assert main(args) == 3
    assert {r["client"]: r["status"] for r in json.loads(capsys.readouterr().out)} == {
        "lakeshore": "unchanged", "nordwind": "refused"}
    assert main([*args, "--replace"]) == 0
    again = {r["client"]: (r["status"], r["run_id"]) for r in json.loads(capsys.readouterr().out)}
    assert again["lakeshore"] == ("unchanged", first["lakeshore"])
    assert again["nordwind"][0] == "replaced" and again["nordwind"][1] != first["nordwind"]
    manifest = json.loads((tmp_path / "out" / "nordwind" / NIGHT / "manifest.json").read_text())
    assert manifest["run_id"] == again["nordwind"][1]
