"""The run skeleton, through the real CLI: outputs, manifest, idempotency, refusal, atomicity."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CUSTOMERS_CSV, ROOT

from engine.cli import main

NORDWIND = ROOT / "rules" / "nordwind"
NIGHTS = sorted((ROOT / "samples" / "nordwind").iterdir())


def _run(rules: Path, drop: Path, tmp: Path, *extra: str) -> int:
    return main(["run", str(rules), "--drop", str(drop), "--state", str(tmp / "state.duckdb"),
                 "--out", str(tmp / "out"), *extra])


def _tree(folder: Path) -> dict[str, str]:
    """Every file below `folder` with its sha256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _runs(tmp: Path) -> list[tuple]:
    if not (tmp / "state.duckdb").exists():
        return []  # no run has committed: a first night that failed leaves no state file
    con = duckdb.connect(str(tmp / "state.duckdb"), read_only=True)
    try:
        if not con.sql("SELECT 1 FROM duckdb_tables() WHERE table_name = 'runs'").fetchall():
            return []  # never migrated: no run has committed
        return con.sql("SELECT as_of, run_id, status FROM runs ORDER BY as_of").fetchall()
    finally:
        con.close()


def test_sample_night_writes_rejects_and_a_manifest_that_matches_the_files(tmp_path):
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    folder = tmp_path / "out" / "nordwind" / "2026-03-02"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["client"] == "nordwind"
    rejects = pq.read_table(folder / "rejects.parquet").to_pylist()
    # samples/README.md: row 35 of Fakturadaten.csv has an ISO date; payment 6 an unknown payer.
    assert [(r["source_file"], r["row_number"], r["column"]) for r in rejects] == [
        ("Fakturadaten.csv", 35, "txn_date"), ("payments.jsonl", 6, "customer_id")]
    assert {r["run_id"] for r in rejects} == {manifest["run_id"]}
    inputs = {i["file"]: i for i in manifest["inputs"]}
    for name, entry in inputs.items():
        assert entry["sha256"] == hashlib.sha256((NIGHTS[0] / name).read_bytes()).hexdigest()
    assert (inputs["Fakturadaten.csv"]["rows"], inputs["Fakturadaten.csv"]["rejected"]) == (39, 1)
    assert manifest["counts"]["accepted"]["transactions"] == 38
    assert manifest["counts"]["rows_in"] - manifest["counts"]["rejected"] == sum(
        manifest["counts"]["accepted"].values())
    for name, entry in manifest["outputs"].items():
        assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if name.endswith(".parquet"):
            assert entry["rows"] == pq.read_metadata(folder / name).num_rows, name
    # cash applied to items, per currency, on the minor unit: the applications' own sum
    applications = pq.read_table(folder / "cash_applications.parquet").to_pylist()
    applied = sum(a["applied_amount"] for a in applications if a["invoice_id"])
    assert applied > 0 and {a["currency"] for a in applications} == {"EUR"}
    assert manifest["counts"]["cash_applied"] == {"EUR": str(applied.quantize(Decimal("0.01")))}
    rule_files = manifest["rules"]["files"]
    tax_digest = hashlib.sha256((NORDWIND / "tax.yaml").read_bytes()).hexdigest()
    assert rule_files["tax.yaml"] == tax_digest
    assert _runs(tmp_path) == [(dt.date(2026, 3, 2), manifest["run_id"], "done")]


def test_same_night_again_changes_nothing(tmp_path, capsys):
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    before = _tree(tmp_path)
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    assert "unchanged" in capsys.readouterr().out
    assert _tree(tmp_path) == before


def test_changed_drop_for_a_night_already_run_is_refused(tmp_path, capsys):
    drop = tmp_path / "drop" / "2026-03-02"
    shutil.copytree(NIGHTS[0], drop)
    assert _run(NORDWIND, drop, tmp_path) == 0
    before = _tree(tmp_path / "out")
    with (drop / "customers.csv").open("a") as f:
        f.write("C19999,Late Comer GmbH,DE,,,EUR,,,false,,\n")
    assert _run(NORDWIND, drop, tmp_path) == 3
    assert "the drop files differ" in capsys.readouterr().err
    assert _tree(tmp_path / "out") == before and len(_runs(tmp_path)) == 1


def test_three_nights_in_a_row_and_identical_runs_give_identical_bytes(tmp_path):
    for night in NIGHTS:
        assert _run(NORDWIND, night, tmp_path / "a") == 0
        assert _run(NORDWIND, night, tmp_path / "b") == 0
    assert [r[0].isoformat() for r in _runs(tmp_path / "a")] == [n.name for n in NIGHTS]
    tables_a = {k: v for k, v in _tree(tmp_path / "a" / "out").items() if k.endswith(".parquet")}
    tables_b = {k: v for k, v in _tree(tmp_path / "b" / "out").items() if k.endswith(".parquet")}
    assert tables_a == tables_b and len(tables_a) == 9 * len(NIGHTS)  # 9 tables a night


def test_a_state_from_before_version_4_is_migrated_and_runs_on_the_same(tmp_path):
    """Versions 3 and 4 dropped the key indexes of processed_ids, customers and open_items:
    an older state has them rebuilt without, keeps every row, and its next night gives the
    same outputs as a state made new."""
    keys = {"processed_ids": "kind, id", "customers": "customer_id", "open_items": "invoice_id"}
    for state in ("old", "new"):
        assert _run(NORDWIND, NIGHTS[0], tmp_path / state) == 0
    con = duckdb.connect(str(tmp_path / "old" / "state.duckdb"))
    for table, key in keys.items():
        columns = ", ".join(f"{name} {kind}" for name, kind in con.sql(
            f"SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '{table}' "
            "ORDER BY column_index").fetchall())
        con.execute(f"CREATE TABLE keyed ({columns}, PRIMARY KEY ({key}))")
        con.execute(f"INSERT INTO keyed SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE keyed RENAME TO {table}")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    assert len(con.sql("SELECT * FROM duckdb_constraints() "
                       "WHERE constraint_type = 'PRIMARY KEY'").fetchall()) >= 3
    con.close()
    for state in ("old", "new"):
        assert _run(NORDWIND, NIGHTS[1], tmp_path / state) == 0
    second = {state: {k: v for k, v in _tree(tmp_path / state / "out").items()
                      if k.endswith(".parquet") and NIGHTS[1].name in k}
              for state in ("old", "new")}
    assert second["old"] == second["new"] and len(second["old"]) == 9

    def ledger(state: str) -> tuple:
        con = duckdb.connect(str(tmp_path / state / "state.duckdb"), read_only=True)
        try:
            return (tuple(con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
                          for table in keys),
                    con.sql("SELECT table_name, constraint_type FROM duckdb_constraints() "
                            "WHERE list_contains(?, table_name) AND constraint_type <> 'NOT NULL' "
                            "ORDER BY ALL", params=[list(keys)]).fetchall(),
                    con.sql("SELECT value FROM meta WHERE key = 'schema_version'").fetchall())
        finally:
            con.close()

    assert all(ledger("old")[0]) and ledger("old") == ledger("new")
    assert ledger("old")[1:] == ([], [("4",)])


def test_a_number_the_subledger_holds_already_refuses_the_night(tmp_path, capsys):
    """An invoice number is the key of the books: a sequence set back (a state restored
    in part) refuses the night before anything is posted, rather than numbering a second
    item the same."""
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    con = duckdb.connect(str(tmp_path / "state.duckdb"))
    last = con.sql("SELECT last_seq FROM sequences WHERE series = 'invoice'").fetchall()[0][0]
    con.execute("UPDATE sequences SET last_seq = last_seq - 3")
    before = con.sql("SELECT * FROM open_items ORDER BY ALL").fetchall()
    con.close()
    assert _run(NORDWIND, NIGHTS[1], tmp_path) == 3
    err = capsys.readouterr().err
    assert [int(n) for n in re.findall(
        r"error\[E324\]: document NW-2026-(\d+) would be a second item of that id in the "
        r"subledger", err)] == [last - 2, last - 1, last]
    assert "state.sequences restored from an older copy" in err
    con = duckdb.connect(str(tmp_path / "state.duckdb"), read_only=True)
    assert con.sql("SELECT * FROM open_items ORDER BY ALL").fetchall() == before
    con.close()
    assert [r[0] for r in _runs(tmp_path)] == [dt.date.fromisoformat(NIGHTS[0].name)]


def test_a_charge_id_the_subledger_holds_already_refuses_the_night(tmp_path, capsys):
    """Night 2 of nordwind charges C10001 a dunning fee DN-20260303-C10001-2-EUR-FEE: an
    item of that id put in the subledger by hand refuses the night, nothing posted."""
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    con = duckdb.connect(str(tmp_path / "state.duckdb"))
    con.execute("INSERT INTO open_items (invoice_id, customer_id, item_type, invoice_date, "
                "due_date, currency, amount_original, amount_open, opened_on) VALUES "
                "('DN-20260303-C10001-2-EUR-FEE', 'C10001', 'opening', DATE '2026-03-01', "
                "DATE '2026-03-01', 'EUR', 1, 1, DATE '2026-03-01')")
    before = con.sql("SELECT * FROM open_items ORDER BY ALL").fetchall()
    con.close()
    assert _run(NORDWIND, NIGHTS[1], tmp_path) == 3
    assert ("error[E324]: charge DN-20260303-C10001-2-EUR-FEE would be a second item of that "
            "id in the subledger") in capsys.readouterr().err
    con = duckdb.connect(str(tmp_path / "state.duckdb"), read_only=True)
    assert con.sql("SELECT * FROM open_items ORDER BY ALL").fetchall() == before
    con.close()


def test_a_state_of_a_newer_schema_is_not_touched(tmp_path, capsys):
    """A state file a newer ruledger wrote is refused before anything in it changes: this
    one would set its version back and not keep what the newer one relies on."""
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    con = duckdb.connect(str(tmp_path / "state.duckdb"))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = _tree(tmp_path)
    assert _run(NORDWIND, NIGHTS[1], tmp_path) == 2
    assert "error[E010]: the state file is of schema version 99, newer than this ruledger's" in (
        capsys.readouterr().err)
    assert _tree(tmp_path) == before


def test_a_refused_drop_whose_rejects_cannot_be_written_leaves_nothing(
        tmp_path, client_dir, drop_dir, monkeypatch):
    """The refusal's own outputs fail to write (a full disk): no refused folder, no
    staging folder, no state."""
    drop = drop_dir(customers__csv=CUSTOMERS_CSV + "C4,Delta,DE,,EURO,,,\nC5,,DE,,EUR,,,\n",
                    transactions__csv="txn_id,customer_id\nT1,C1\n")

    def full_disk(self, table, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    assert _run(client_dir(), drop, tmp_path) == 4
    out = tmp_path / "out"
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []
    assert _runs(tmp_path) == []


def test_bad_rules_stop_before_the_drop_is_read(tmp_path, client_dir, capsys):
    rules = client_dir()
    (rules / "client.yaml").write_text((rules / "client.yaml").read_text().replace(
        "base_currency: EUR", "base_curency: EUR"))
    assert _run(rules, tmp_path / "no-such-drop" / "2026-03-02", tmp_path) == 2
    err = capsys.readouterr().err
    assert "client.yaml:6:3: error[E110]: unknown key 'base_curency'" in err
    assert "did you mean base_currency?" in err
    assert not (tmp_path / "state.duckdb").exists()


def test_refused_drop_posts_nothing_and_leaves_its_rejects(tmp_path, client_dir, drop_dir, capsys):
    rules = client_dir()
    drop = drop_dir(customers__csv=CUSTOMERS_CSV + "C4,Delta,DE,,EURO,,,\nC5,,DE,,EUR,,,\n"
                                                   "C6,Zeta,Germany,,EUR,,,\n",
                    transactions__csv="txn_id,customer_id\nT1,C1\n")
    assert _run(rules, drop, tmp_path) == 3
    err = capsys.readouterr().err
    assert "4 of 7 rows rejected (57.1%), above the client's max_reject_ratio of 50.0%" in err
    assert (f"{drop}/transactions.csv: missing required column txn_date, product_code, quantity, "
            "unit_price, currency; 1 row rejected") in err
    refused = tmp_path / "out" / "testco" / "2026-03-02.refused"
    assert json.loads((refused / "manifest.json").read_text())["status"] == "refused"
    reasons = [r["reason"] for r in pq.read_table(refused / "rejects.parquet").to_pylist()]
    assert reasons == ["currency: not an ISO 4217 currency code", "name: a value is required",
                       "country: not an ISO 3166-1 alpha-2 country code (GB, not UK; GR, not EL)",
                       "missing required column txn_date, product_code, quantity, unit_price, "
                       "currency"]
    assert not (tmp_path / "out" / "testco" / "2026-03-02").exists()
    assert _runs(tmp_path) == []


def test_a_refused_drop_whose_rejects_cannot_be_written_leaves_nothing_behind(
        tmp_path, client_dir, drop_dir, monkeypatch):
    rules = client_dir()
    drop = drop_dir(customers__csv=CUSTOMERS_CSV + "C4,Delta,DE,,EURO,,,\nC5,,DE,,EUR,,,\n"
                                                   "C6,Zeta,Germany,,EUR,,,\n",
                    transactions__csv="txn_id,customer_id\nT1,C1\n")

    def broken_manifest(folder, manifest):
        raise OSError("disk full")

    monkeypatch.setattr("engine.output.write_manifest", broken_manifest)
    assert _run(rules, drop, tmp_path) == 4
    assert _tree(tmp_path / "out") == {}
    monkeypatch.undo()
    assert _run(rules, drop, tmp_path) == 3
    assert sorted(_tree(tmp_path / "out")) == [
        "testco/2026-03-02.refused/manifest.json", "testco/2026-03-02.refused/rejects.parquet"]


def test_a_failure_while_writing_leaves_outputs_and_state_as_they_were(tmp_path, monkeypatch):
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    before_out, before_runs = _tree(tmp_path / "out"), _runs(tmp_path)

    def broken_manifest(folder, manifest):
        raise OSError("disk full")

    monkeypatch.setattr("engine.output.write_manifest", broken_manifest)
    assert _run(NORDWIND, NIGHTS[1], tmp_path) == 4
    assert _tree(tmp_path / "out") == before_out and _runs(tmp_path) == before_runs
    monkeypatch.undo()
    assert _run(NORDWIND, NIGHTS[1], tmp_path) == 0
    assert len(_runs(tmp_path)) == 2


def test_a_write_that_fails_on_the_writing_thread_fails_the_night(tmp_path, monkeypatch):
    """Output files are written on a thread of their own: its failure still stops the
    night before the commit, and leaves nothing behind."""
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    before_out, before_runs = _tree(tmp_path / "out"), _runs(tmp_path)
    written = []

    def full_disk(self, table, *args, **kwargs):
        written.append(threading.current_thread().name)
        raise OSError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    assert _run(NORDWIND, NIGHTS[1], tmp_path) == 4
    assert written and written[0].startswith("ruledger-write")
    assert _tree(tmp_path / "out") == before_out and _runs(tmp_path) == before_runs
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out", "state.duckdb", "state.duckdb.lock"]


def test_a_failed_commit_leaves_outputs_and_state_as_they_were(tmp_path, monkeypatch):
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    before_out, before_runs = _tree(tmp_path / "out"), _runs(tmp_path)
    monkeypatch.setattr("engine.executor.DuckDBExecutor.execute", _fail_on_commit)
    assert _run(NORDWIND, NIGHTS[1], tmp_path) == 4
    assert _tree(tmp_path / "out") == before_out and _runs(tmp_path) == before_runs
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out", "state.duckdb", "state.duckdb.lock"]  # no staging, intent or state copy left


def _fail_on_commit(self, statement):
    if statement == "COMMIT":
        raise RuntimeError("commit failed")
    self.con.execute(self.render(statement)).fetchall()


def test_log_json_lines_carry_client_and_run_id(tmp_path, capsys):
    assert _run(NORDWIND, NIGHTS[0], tmp_path, "--log-json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines and all(line["client"] == "nordwind" for line in lines)
    assert {line["run_id"] for line in lines[1:]} == {lines[1]["run_id"]}
    assert any(line["message"].startswith("Fakturadaten.csv: 39 rows") for line in lines)


@pytest.mark.parametrize("fmt", ["csv"])
def test_csv_output_format(tmp_path, fmt):
    assert _run(NORDWIND, NIGHTS[0], tmp_path, "--format", fmt) == 0
    text = (tmp_path / "out" / "nordwind" / "2026-03-02" / "rejects.csv").read_text()
    assert text.splitlines()[0] == '"source_file","row_number","column","value","reason","run_id"'


def test_the_journal_written_stage_by_stage_is_one_table_in_either_format(tmp_path):
    """Invoice, cash and dunning entries are appended to one writer as each stage ends."""
    as_csv, as_parquet = tmp_path / "csv", tmp_path / "parquet"
    for folder, fmt in ((as_csv, "csv"), (as_parquet, "parquet")):
        for night in NIGHTS[:3]:
            assert _run(NORDWIND, night, folder, "--format", fmt) == 0
    night = NIGHTS[2].name
    journal = pq.read_table(as_parquet / "out" / "nordwind" / night / "journal_entries.parquet")
    lines = (as_csv / "out" / "nordwind" / night / "journal_entries.csv").read_text().splitlines()
    assert lines[0].startswith('"entry_id"') and sum(x.startswith('"entry_id"') for x in lines) == 1
    assert len(lines) - 1 == journal.num_rows
    kinds = {d for d in journal.column("document_type").to_pylist()}
    assert {"invoice", "payment"} <= kinds  # parts of more than one stage in the one file
    manifest = json.loads((as_parquet / "out" / "nordwind" / night / "manifest.json").read_text())
    assert manifest["outputs"]["journal_entries.parquet"]["rows"] == journal.num_rows
    assert list(manifest["outputs"])[-3:] == ["rejects.parquet", "exceptions.parquet",
                                              "exceptions.html"]


def test_debug_logs_each_stage_with_its_time_and_memory(tmp_path, capsys):
    assert _run(NORDWIND, NIGHTS[0], tmp_path, "--debug") == 0
    err = capsys.readouterr().err
    for stage in ("ingest", "invoicing", "matching", "dunning", "credit", "aging"):
        line = next(x for x in err.splitlines() if f"{stage} took " in x)
        assert "memory: DuckDB" in line and "Arrow" in line and "peak" in line
        assert re.search(r"resident [0-9,]+ MiB", line)


def test_a_file_no_table_claims_refuses_the_drop(tmp_path, client_dir, drop_dir, capsys):
    drop = drop_dir(customers__csv=CUSTOMERS_CSV, payment__csv="payment_id\nP1\n",
                    _SUCCESS="")
    assert _run(client_dir(), drop, tmp_path) == 3
    err = capsys.readouterr().err
    assert "payment.csv in" in err and "is not a table the client reads" in err
    assert "did you mean payments.csv?" in err and "_SUCCESS" not in err


def test_first_night_needs_customers_and_a_missing_drop_is_an_argument_error(
        tmp_path, client_dir, drop_dir, capsys):
    assert _run(client_dir(), drop_dir(payments__csv="payment_id\n"), tmp_path) == 3
    assert "is the client's first night and has no customers" in capsys.readouterr().err
    assert _run(client_dir(), tmp_path / "nowhere" / "2026-03-02", tmp_path) == 2


def test_a_partial_customer_row_keeps_what_it_does_not_send(tmp_path, client_dir, drop_dir):
    """A customer sent again is updated in place (state.customers has no key index to
    replace it by), a new one is added: one row each."""
    rules = client_dir()
    assert _run(rules, drop_dir(customers__csv=CUSTOMERS_CSV), tmp_path) == 0
    later = drop_dir("2026-03-03", customers__csv="customer_id,name,country,currency,email\n"
                                                  "C1,Alpha AG,DE,EUR,ap@alpha.example\n"
                                                  "C4,Delta BV,NL,EUR,\n")
    assert _run(rules, later, tmp_path) == 0
    con = duckdb.connect(str(tmp_path / "state.duckdb"), read_only=True)
    rows = con.sql("SELECT customer_id, name, vat_id, payment_terms_days, tax_exempt, email, "
                   "updated_on FROM customers ORDER BY customer_id").fetchall()
    con.close()
    assert [r[0] for r in rows] == ["C1", "C2", "C3", "C4"]
    assert rows[0][1:] == ("Alpha AG", "DE123456789", 30, False, "ap@alpha.example",
                           dt.date(2026, 3, 3))
    assert rows[1][-1] == dt.date(2026, 3, 2)  # not sent again: not touched
    assert rows[3][1:3] == ("Delta BV", None)


def test_a_second_run_of_the_same_client_is_refused_while_the_first_holds_the_state(tmp_path,
                                                                                   capsys):
    import subprocess
    import sys
    import time
    state = tmp_path / "state.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; "
                               f"c = duckdb.connect({str(state)!r}); print('held', flush=True); "
                               "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _run(NORDWIND, NIGHTS[0], tmp_path) == 3
        assert f"another run of client nordwind holds its state file {state}" in (
            capsys.readouterr().err)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0


def test_changing_one_rule_file_changes_the_digest_and_the_rows_it_produced(tmp_path):
    """Lower one German rate in a copy of nordwind's tax.yaml: the manifest's rule-set
    digest and that file's sha256 change, the other files' do not, and exactly the lines
    taxed by that rule change (with their rule_ref still naming the line)."""
    rules = tmp_path / "nordwind"
    shutil.copytree(NORDWIND, rules)
    assert _run(rules, NIGHTS[0], tmp_path / "a") == 0
    tax = rules / "tax.yaml"
    text = tax.read_text()
    at = text.index("- id: de_reduced")
    tax.write_text(text[:at] + text[at:].replace("rate: 7%", "rate: 5%", 1))
    assert _run(rules, NIGHTS[0], tmp_path / "b") == 0

    def night(folder):
        out = folder / "out" / "nordwind" / "2026-03-02"
        return (json.loads((out / "manifest.json").read_text()),
                {r["txn_id"]: r for r in pq.read_table(out / "invoice_lines.parquet").to_pylist()})

    (ma, la), (mb, lb) = night(tmp_path / "a"), night(tmp_path / "b")
    assert ma["rules"]["digest"] != mb["rules"]["digest"] and ma["run_id"] != mb["run_id"]
    changed_files = {n for n in ma["rules"]["files"] if ma["rules"]["files"][n] != mb["rules"]["files"][n]}
    assert changed_files == {"tax.yaml"}
    changed = {t for t in la if (la[t]["tax_rate"], la[t]["tax_amount"]) != (lb[t]["tax_rate"], lb[t]["tax_amount"])}
    assert changed and changed == {t for t in la if la[t]["rule_id"] == "de_reduced"}
    assert {lb[t]["rule_ref"] for t in changed} == {"tax.yaml:71"}


def test_bytes_that_are_not_utf8_never_crash_a_night(tmp_path, client_dir, drop_dir, capfd):
    """A bad row with stray bytes and an extra field, and a header with stray bytes: the
    row and the file are rejected with reasons; nothing is printed as a traceback."""
    drop = drop_dir(customers__csv=CUSTOMERS_CSV.encode() + b"C4,B\x80eta,DE,EUR,surplus\n",
                    open_orders__csv=b"order_id,customer_id,currency,amount,no\xffte\n"
                                     b"O1,C1,EUR,5,x\n")
    assert _run(client_dir(), drop, tmp_path) == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err
    rejects = pq.read_table(tmp_path / "out" / "testco" / "2026-03-02" / "rejects.parquet")
    assert [r["reason"] for r in rejects.to_pylist()] == [
        "not valid UTF-8 text", "the header has bytes that are not UTF-8 text"]


def test_an_invoice_past_what_the_books_hold_is_refused_clearly(tmp_path, client_dir,
                                                                drop_dir, capsys):
    rules = client_dir(tax_yaml="kind: tax\nversion: 1\nhit_policy: first\nrounding_level: line\n"
                                "rules:\n  - {id: all, when: 'true', code: S, rate: 19%}\n")
    lines = "".join(f"T{i},C1,2026-03-01,P1,1,999999999999.99,EUR\n" for i in range(85))
    drop = drop_dir(customers__csv=CUSTOMERS_CSV, transactions__csv=(
        "txn_id,customer_id,txn_date,product_code,quantity,unit_price,currency\n" + lines))
    assert _run(rules, drop, tmp_path) == 3
    assert "error[E321]: the invoice of customer C1 in EUR would total" in capsys.readouterr().err
    assert not (tmp_path / "state.duckdb").exists()  # a first night that did not commit


def test_billable_lines_without_a_tax_table_are_refused(tmp_path, client_dir, drop_dir, capsys):
    drop = drop_dir(customers__csv=CUSTOMERS_CSV, transactions__csv=(
        "txn_id,customer_id,txn_date,product_code,quantity,unit_price,currency\n"
        "T1,C1,2026-03-01,P1,1,10,EUR\n"))
    assert _run(client_dir(), drop, tmp_path) == 3
    assert "error[E320]: the drop has 1 billable lines but" in capsys.readouterr().err
    assert _runs(tmp_path) == [] and not (tmp_path / "out" / "testco" / "2026-03-02").exists()


def test_big_outputs_are_streamed_in_pieces_cut_by_count(tmp_path):
    """A query's rows reach their file in pieces of STREAM_ROWS, whatever batches DuckDB
    gives, and an empty result still gives a file with its columns."""
    from engine.executor import DuckDBExecutor
    from engine.output import Staged
    from engine.run import STREAM_ROWS, _streamed

    executor = DuckDBExecutor(threads=2)
    try:
        n = 2 * STREAM_ROWS + 1
        query = f"SELECT range AS i, 'x' || range AS s FROM range({n}) ORDER BY i"
        staged = Staged(tmp_path, "parquet")
        staged.put("big", _streamed(executor, query))
        staged.put("none", _streamed(executor, "SELECT 1 AS i, 'a' AS s WHERE false"))
        staged.close_parts()
    finally:
        executor.close()
    meta = pq.ParquetFile(tmp_path / "big.parquet").metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [
        STREAM_ROWS, STREAM_ROWS, 1]
    big = pq.read_table(tmp_path / "big.parquet")
    assert big.column("i").to_pylist() == list(range(n)) and big.column("s")[n - 1].as_py() \
        == f"x{n - 1}"
    none = pq.read_table(tmp_path / "none.parquet")
    assert none.num_rows == 0 and none.column_names == ["i", "s"]
    assert staged.rows == {tmp_path / "big.parquet": n, tmp_path / "none.parquet": 0}


def test_a_stopped_night_closes_the_files_it_still_had_open(tmp_path):
    """A night that fails mid-stage stops its staged outputs: a table written in parts
    (the journal) has its writer closed, so the staging folder can go."""
    from engine.output import Staged

    staged = Staged(tmp_path, "parquet")
    staged.append("journal_entries", pa.table({"i": [1, 2]}))
    writer = staged.open["journal_entries"][1]
    assert writer.is_open
    staged.stop()
    assert not writer.is_open and staged.open == {}


def test_duckdb_spills_beside_the_state_past_its_memory_limit(tmp_path):
    """Past --memory-limit DuckDB writes to `<state>.spill/`, not the working directory,
    and leaves nothing there once the run's connection closes."""
    from engine.executor import DuckDBExecutor

    spill = tmp_path / "state.duckdb.spill"
    executor = DuckDBExecutor(memory_limit="64MB", spill=spill)
    try:
        executor.execute("CREATE TEMP TABLE big AS SELECT range AS i, repeat('x', 40) || range "
                         "AS s FROM range(3000000)")
        assert executor.query("SELECT count(*) FROM big") == [(3000000,)]
        assert any(spill.iterdir())
    finally:
        executor.close()
    assert not spill.exists() or not any(spill.iterdir())


def test_a_night_commits_with_its_work_tables_dropped(tmp_path, monkeypatch):
    """The night's temp tables (the drop's rows, every stage's work) are dropped before its
    commit, which then has none to merge into DuckDB's catalog; what the night posted is
    committed all the same."""
    from engine.executor import DuckDBExecutor

    seen: list[list[str]] = []
    execute = DuckDBExecutor.execute

    def watched(self, statement):
        if statement == "COMMIT":
            seen.append([r[0] for r in self.query(
                "SELECT table_name FROM duckdb_tables() WHERE temporary")])
        return execute(self, statement)

    monkeypatch.setattr(DuckDBExecutor, "execute", watched)
    assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    assert seen and seen[-1] == []
    con = duckdb.connect(str(tmp_path / "state.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM open_items").fetchall()[0][0] > 0
        assert con.execute("SELECT count(*) FROM processed_ids").fetchall()[0][0] > 0
    finally:
        con.close()
    assert [status for _d, _r, status in _runs(tmp_path)] == ["done"]


def test_a_night_makes_no_full_collection_and_gives_the_thresholds_back(tmp_path, monkeypatch):
    """Python's full collections walk every live object, and a night holds big ones: they
    wait until the night is over. Young objects are still collected during it."""
    import gc

    from engine.executor import DuckDBExecutor

    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    full: list[int] = []
    execute = DuckDBExecutor.execute

    def watched(self, statement):
        during.append(gc.get_threshold())
        return execute(self, statement)

    def collected(phase, info):
        if phase == "stop" and info["generation"] == 2:
            full.append(1)

    monkeypatch.setattr(DuckDBExecutor, "execute", watched)
    gc.callbacks.append(collected)
    try:
        gc.collect()  # what the tests before left; then none until the night is over
        full.clear()
        assert _run(NORDWIND, NIGHTS[0], tmp_path) == 0
    finally:
        gc.callbacks.remove(collected)
    assert during and all(t[:2] == before[:2] and t[2] > 1_000_000 for t in during)
    assert full == [] and gc.get_threshold() == before


def test_nights_side_by_side_give_the_thresholds_back_when_the_last_ends():
    """`ruledger batch` runs clients' nights on threads of one process, whose collector
    thresholds they share: the first to start sets them, the last to end gives them back."""
    import gc

    from engine.run import _young_collections_only as young

    before = gc.get_threshold()
    a_started, b_started, a_ended = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int, int]] = {}

    def night_a():
        with young:
            a_started.set()
            b_started.wait(5)
        a_ended.set()

    def night_b():
        a_started.wait(5)
        with young:
            b_started.set()
            a_ended.wait(5)
            seen["b after a ended"] = gc.get_threshold()

    threads = [threading.Thread(target=night_a), threading.Thread(target=night_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["b after a ended"][2] > 1_000_000  # b still runs: no full collections
    assert gc.get_threshold() == before
