"""Crash safety: a run killed with SIGKILL at any point, then run again.

The kill is real: the run is a child process, and `RULEDGER_FAILPOINT` makes it
send itself SIGKILL at a named point (after a stage, with outputs staged, right
after the commit, ...), or the test kills it after a measured delay. Before the
commit point the books and the visible output folders must be exactly as before;
after it the night is posted. Either way the next run of the client puts things
right, and its tables are byte for byte those of a run never interrupted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT

from engine import safety
from engine.cli import main

NORDWIND = ROOT / "rules" / "nordwind"
NIGHTS = sorted((ROOT / "samples" / "nordwind").iterdir())[:2]


def _args(tmp: Path, night: Path, *extra: str) -> list[str]:
    return ["run", str(NORDWIND), "--drop", str(night), "--state", str(tmp / "state.duckdb"),
            "--out", str(tmp / "out"), *extra]


def _killed(tmp: Path, night: Path, point: str, *extra: str) -> None:
    """The run as a child process that dies by SIGKILL at `point`."""
    env = {**os.environ, safety.FAILPOINT_VARIABLE: point}
    done = subprocess.run([sys.executable, "-m", "engine.cli", *_args(tmp, night, *extra)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == -signal.SIGKILL, done.stderr


def _visible(tmp: Path) -> dict[str, str]:
    """What a reader of the output folder sees: every file not hidden, with its digest."""
    return {str(p.relative_to(tmp / "out")): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((tmp / "out").rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.parts)}


def _tables(tmp: Path) -> dict[str, str]:
    return {k: v for k, v in _visible(tmp).items() if k.endswith(".parquet")}


def _runs(tmp: Path) -> list[tuple]:
    con = duckdb.connect(str(tmp / "state.duckdb"), read_only=True)
    try:
        return con.sql("SELECT as_of::VARCHAR, run_id, status FROM runs "
                       "ORDER BY as_of, status = 'done'").fetchall()
    finally:
        con.close()


def _leftovers(tmp: Path) -> list[str]:
    """Files a finished run never leaves: staging, intents, state copies in the making."""
    names = [p.name for p in tmp.iterdir()] + [p.name for p in (tmp / "out").rglob(".*")]
    return sorted(n for n in names if n not in {
        "out", "state.duckdb", "state.duckdb.lock", "state.duckdb.before"})


@pytest.fixture(scope="module")
def first_night(tmp_path_factory) -> Path:
    """State and outputs after night 1, copied by each test that starts from there."""
    tmp = tmp_path_factory.mktemp("first")
    assert main(_args(tmp, NIGHTS[0])) == 0
    return tmp


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, first_night) -> Path:
    """Both nights run without a kill: what every interrupted history must end as."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(first_night, tmp, dirs_exist_ok=True)
    assert main(_args(tmp, NIGHTS[1])) == 0
    return tmp


BEFORE_COMMIT = ["stage:ingest", "stage:invoicing", "stage:matching", "stage:dunning",
                 "stage:credit", "staged"]
AFTER_COMMIT = ["committed", "kept"]


@pytest.mark.parametrize("point", BEFORE_COMMIT + AFTER_COMMIT)
def test_a_run_killed_at_any_point_is_put_right_by_the_next(tmp_path, point, first_night,
                                                          uninterrupted):
    shutil.copytree(first_night, tmp_path, dirs_exist_ok=True)
    out_before, runs_before = _visible(tmp_path), _runs(tmp_path)
    _killed(tmp_path, NIGHTS[1], point)
    assert not (tmp_path / "state.duckdb.wal").exists()  # a commit writes into the file
    assert _visible(tmp_path) == out_before  # a reader never sees a night half made
    if point in BEFORE_COMMIT:
        assert _runs(tmp_path) == runs_before
    else:  # posted; its folder comes with the next run of the client
        assert _runs(tmp_path)[:-1] == runs_before and _runs(tmp_path)[-1][0] == "2026-03-03"
    assert main(_args(tmp_path, NIGHTS[1])) == 0
    assert _tables(tmp_path) == _tables(uninterrupted)
    assert _runs(tmp_path) == _runs(uninterrupted)
    assert _leftovers(tmp_path) == []
    assert (safety.state_digest(tmp_path / "state.duckdb.before")
            == safety.state_digest(uninterrupted / "state.duckdb.before"))


@pytest.mark.parametrize("torn", [False, True])
def test_a_log_left_beside_the_state_is_folded_in_before_the_state_is_kept(
        tmp_path, first_night, uninterrupted, torn):
    """A process killed in its commit can leave the state's write-ahead log, whole or torn
    (DuckDB leaves a torn one in place when it attaches the file). The next run keeps the
    state as it was (for --replace) as the file alone, the log folded in."""
    shutil.copytree(first_night, tmp_path, dirs_exist_ok=True)
    state = tmp_path / "state.duckdb"
    # Whole: a table made and dropped, a log that changes nothing. Torn: the log of one
    # commit cut in half, a commit that never happened (the table must not appear).
    sql = "CREATE TABLE scratch AS SELECT 1 AS x" + ("" if torn else "; DROP TABLE scratch")
    subprocess.run([sys.executable, "-c", (
        "import duckdb, os\n"
        f"con = duckdb.connect({str(state)!r}, config={{'checkpoint_threshold': '1GB'}})\n"
        f"con.execute({sql!r})\n"
        "os._exit(0)\n")], check=True)  # committed to the log, never checkpointed
    log = safety.wal(state)
    if torn:
        log.write_bytes(log.read_bytes()[:len(log.read_bytes()) // 2])
    assert log.exists()
    assert main(_args(tmp_path, NIGHTS[1])) == 0
    con = duckdb.connect(str(state), read_only=True)
    try:
        assert con.sql("SELECT table_name FROM duckdb_tables() WHERE table_name IN "
                       "('scratch', 'ruledger_fold_log')").fetchall() == []
    finally:
        con.close()
    assert _tables(tmp_path) == _tables(uninterrupted)
    assert _leftovers(tmp_path) == []
    assert (safety.state_digest(tmp_path / "state.duckdb.before")
            == safety.state_digest(uninterrupted / "state.duckdb.before"))


@pytest.mark.parametrize("point", ["staged", "replace:logged", "replace:committed"])
def test_a_replacement_killed_at_any_point_is_put_right_by_the_next(tmp_path, point):
    """Night 2 posted, then replaced with other payments; the replacement is killed."""
    drops = tmp_path / "drops"
    for night in NIGHTS:
        shutil.copytree(night, drops / night.name)
    first, second = sorted(drops.iterdir())
    for night in (first, second):
        assert main(_args(tmp_path, night)) == 0
    out_before, runs_before = _visible(tmp_path), _runs(tmp_path)
    payments = second / "payments.jsonl"
    payments.write_text(payments.read_text().replace('"amount": "64.68"', '"amount": "64.00"'))
    _killed(tmp_path, second, point, "--replace")
    assert _visible(tmp_path) == out_before
    if point == "replace:committed":
        assert [r[2] for r in _runs(tmp_path)] == ["done", "replaced", "done"]
    else:
        assert _runs(tmp_path) == runs_before
    assert main(_args(tmp_path, second, "--replace")) == 0
    fresh = tmp_path / "fresh"
    for night in (first, second):
        assert main(_args(fresh, night)) == 0
    assert _tables(tmp_path) == _tables(fresh)
    assert [r[2] for r in _runs(tmp_path)] == ["done", "replaced", "done"]
    assert _leftovers(tmp_path) == ["drops", "fresh"]  # the test's own folders


def test_a_kill_at_any_moment_of_a_real_run(tmp_path, first_night, uninterrupted):
    """No failpoint: SIGKILL after a delay, at five moments spread over a whole run."""
    timing = tmp_path / "timing"
    shutil.copytree(first_night, timing)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "engine.cli", *_args(timing, NIGHTS[1])],
                   check=True, capture_output=True, cwd=ROOT)
    whole = time.monotonic() - started
    for i in range(5):
        tmp = tmp_path / f"kill{i}"
        shutil.copytree(first_night, tmp)
        out_before, runs_before = _visible(tmp), _runs(tmp)
        child = subprocess.Popen([sys.executable, "-m", "engine.cli", *_args(tmp, NIGHTS[1])],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        time.sleep(whole * (0.4 + 0.15 * i))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert _visible(tmp) == out_before or _tables(tmp) == _tables(uninterrupted)
        assert _runs(tmp) in (runs_before, _runs(uninterrupted))
        assert main(_args(tmp, NIGHTS[1])) == 0
        assert _tables(tmp) == _tables(uninterrupted) and _leftovers(tmp) == []


def test_a_run_of_a_client_already_running_is_refused(tmp_path, capsys):
    with safety.client_lock(tmp_path / "state.duckdb", "nordwind"):
        assert main(_args(tmp_path, NIGHTS[0])) == 3
    assert "another run of client nordwind holds its state file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "state.duckdb").exists()
    assert main(_args(tmp_path, NIGHTS[0])) == 0


def test_outputs_that_cannot_be_put_in_place_are_put_there_by_the_next_run(
        tmp_path, first_night, uninterrupted, monkeypatch, capsys):
    """The rename after the commit fails (a disk error): the night is posted and says so,
    its outputs wait in their hidden folder, and the next run of the client puts them in
    place, as after a kill."""
    shutil.copytree(first_night, tmp_path, dirs_exist_ok=True)
    out_before = _visible(tmp_path)

    def broken(path):
        raise OSError("no space left on device")

    monkeypatch.setattr("engine.safety.finish", broken)
    assert main(_args(tmp_path, NIGHTS[1])) == 0
    assert "the night is posted, but its outputs could not be put in place" in (
        capsys.readouterr().err)
    assert _visible(tmp_path) == out_before and _runs(tmp_path) == _runs(uninterrupted)
    monkeypatch.undo()
    assert main(_args(tmp_path, NIGHTS[1])) == 0  # unchanged, once its folder is in place
    assert _tables(tmp_path) == _tables(uninterrupted) and _leftovers(tmp_path) == []
