"""samples/bench_history.py runs a client night after night on one state file; here at a
toy size, for what it reports. And the generator's nights spaced over days, as it uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import ROOT

from engine.cli import main

sys.path.insert(0, str(ROOT / "samples"))
import bench_history  # noqa: E402

DROPS = bench_history.Drops(size=500, nights=3, every=12, paid=95, seed=3)
AS_OF = ["2026-03-02", "2026-03-14", "2026-03-26"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-nights")


@pytest.fixture(scope="module")
def rows(work) -> list[bench_history.NightRow]:
    return bench_history.run(DROPS, work, keep_before=3)


def outputs(work: Path, table: str) -> list[dict]:
    out = DROPS.folder(work) / "run" / "out" / "synth"
    return [r for night in AS_OF for r in pq.read_table(out / night / f"{table}.parquet")
            .to_pylist()]


def test_one_row_per_night_in_date_order(rows):
    assert [(r.night, r.as_of) for r in rows] == list(enumerate(AS_OF, start=1))
    assert all(r.figures.exit_code == 0 for r in rows)
    assert all(r.drop_rows > 500 for r in rows)  # the lines, and payments, customers, ...
    text = bench_history.report(rows)
    assert [line.split(" | ")[1] for line in text.splitlines() if line.startswith("| ")
            and line[2].isdigit()] == AS_OF
    assert "night 3 vs night 1: wall" in text and "night 3 vs night 2: wall" in text


def test_the_counts_are_the_state_files(work, rows):
    """Every night ran on the one state file; its items are the opening items, the
    invoices and the dunning charges of the outputs, and the counts are what it holds."""
    state = DROPS.folder(work) / "run" / "state.duckdb"
    with duckdb.connect(str(state), read_only=True) as con:
        runs = con.execute("SELECT as_of::VARCHAR, status FROM runs ORDER BY as_of").fetchall()
        open_, closed, settled = con.execute(
            "SELECT count(*) FILTER (WHERE closed_on IS NULL), count(*) FILTER (WHERE "
            "closed_on IS NOT NULL), count(*) FILTER (WHERE amount_open = 0) "
            "FROM open_items").fetchone()
        unapplied = con.execute("SELECT count(*) FROM unapplied_cash WHERE cash_open <> 0"
                                ).fetchone()[0]
    assert runs == [(night, "done") for night in AS_OF]
    last = rows[-1].ledger
    assert (last.open_items, last.closed_items, last.unapplied) == (open_, closed, unapplied)
    assert settled >= closed > rows[0].ledger.closed_items  # later nights settle items
    opening = pq.read_table(DROPS.folder(work) / "drops" / "synth" / AS_OF[0]
                            / "opening_items.parquet").num_rows
    notices = outputs(work, "dunning_notices")
    charges = sum((n["fee_amount"] > 0) + (n["interest_amount"] > 0) for n in notices)
    assert open_ + closed == opening + len(outputs(work, "invoices")) + charges


def test_items_close_night_after_night_and_the_state_grows(rows):
    items = [r.ledger.open_items + r.ledger.closed_items for r in rows]
    assert items == sorted(items) and items[0] < items[-1]
    closed = [r.ledger.closed_items for r in rows]
    assert closed == sorted(closed) and len(set(closed)) == len(closed)
    processed = [r.ledger.processed_ids for r in rows]
    assert processed == sorted(processed) and processed[0] < processed[-1]


def test_a_state_is_kept_to_profile_a_night(work, rows):
    kept = DROPS.folder(work) / "run" / "state-before-night-3.duckdb"
    before = bench_history.ledger(kept)
    assert (before.open_items, before.closed_items) == (rows[1].ledger.open_items,
                                                        rows[1].ledger.closed_items)


def test_the_drops_are_generated_once(work, rows):
    marker = DROPS.folder(work) / ".complete"
    made = marker.stat().st_mtime_ns
    assert bench_history.generated(work, DROPS) == DROPS.folder(work)
    assert marker.stat().st_mtime_ns == made


def test_nights_days_apart_pay_the_last_nights_invoices_by_their_numbers(tmp_path):
    """`--every 12`: the second night is 12 days later, pays the first night's invoices
    within the discount days by the numbers the engine gave them; `--paid 95` most of them."""
    subprocess.run([sys.executable, str(ROOT / "samples" / "generate.py"), str(tmp_path),
                    "--transactions", "2000", "--nights", "2", "--every", "12",
                    "--paid", "95", "--seed", "4", "--expected"], check=True,
                   capture_output=True)
    nights = sorted(p.name for p in (tmp_path / "drops" / "synth").iterdir())
    assert nights == ["2026-03-02", "2026-03-14"]
    state, out = tmp_path / "state.duckdb", tmp_path / "out" / "synth"
    made = {}
    for night in nights:
        assert main(["run", str(tmp_path / "rules" / "synth"), "--drop",
                     str(tmp_path / "drops" / "synth" / night), "--state", str(state),
                     "--out", str(tmp_path / "out")]) == 0
        made[night] = {r["invoice_id"]: r["gross_amount"]
                       for r in pq.read_table(out / night / "invoices.parquet").to_pylist()}
        expected = pq.read_table(tmp_path / "expected" / "synth" / night / "invoices.parquet")
        assert made[night] == {r["invoice_id"]: r["gross_amount"] for r in expected.to_pylist()}
    apps = pq.read_table(out / nights[1] / "cash_applications.parquet").to_pylist()
    paid = {a["invoice_id"] for a in apps} & set(made[nights[0]])
    assert any(a["discount_amount"] > 0 for a in apps)
    invoices = [i for i, gross in made[nights[0]].items() if gross > 0]
    assert len(paid) >= 0.8 * len(invoices)
