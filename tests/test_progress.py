"""Progress on a terminal, and silence when not on one."""

from __future__ import annotations

import io

from conftest import ROOT

from engine.cli import main
from engine.progress import CLEAR, Status


def test_on_a_terminal_a_status_line_stays_below_the_log(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    status = Status()
    status.enabled = True
    with status.step("acme 2026-03-02: matching"):
        status.log("a log line\n")
    out = err.getvalue()
    # the status is drawn, cleared for the log line, drawn again, and cleared at the end
    assert out.startswith(f"{CLEAR}▸ acme 2026-03-02: matching 0.")
    assert f"{CLEAR}a log line\n{CLEAR}▸ acme 2026-03-02: matching" in out
    assert out.endswith(CLEAR)


def test_without_a_terminal_only_log_lines(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    status = Status()
    with status.step("acme 2026-03-02: matching"):
        status.log("a log line\n")
    assert err.getvalue() == "a log line\n"


def test_a_run_writes_no_status_line_when_stderr_is_not_a_terminal(tmp_path, capsys):
    night = ROOT / "samples" / "nordwind" / "2026-03-02"
    assert main(["run", str(ROOT / "rules" / "nordwind"), "--drop", str(night),
                 "--state", str(tmp_path / "s.duckdb"), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "customers.csv: 13 rows" in err and "\r" not in err and "▸" not in err
