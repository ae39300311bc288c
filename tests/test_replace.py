"""`ruledger run --replace`: the client's latest night undone and run again."""

from __future__ import annotations

import hashlib
import shutil

import duckdb
from conftest import ROOT

from engine.cli import main

NORDWIND = ROOT / "rules" / "nordwind"


def _run(tmp, night, *extra):
    return main(["run", str(NORDWIND), "--drop", str(night), "--state", str(tmp / "s.duckdb"),
                 "--out", str(tmp / "out"), *extra])


def _tables(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.parquet"))}


def _runs(tmp) -> list[tuple]:
    con = duckdb.connect(str(tmp / "s.duckdb"), read_only=True)
    try:
        return con.sql("SELECT as_of::VARCHAR, run_id, status FROM runs "
                       "ORDER BY as_of, status = 'done', finished_at").fetchall()
    finally:
        con.close()


def _drops(tmp):
    shutil.copytree(ROOT / "samples" / "nordwind", tmp / "drops")
    return sorted((tmp / "drops").iterdir())


def _change(night):
    path = night / "payments.jsonl"
    path.write_text(path.read_text().replace('"amount": "64.68"', '"amount": "64.00"')
                    .replace('"amount": "1190.00"', '"amount": "1189.00"'))


def test_replace_gives_what_a_first_run_with_the_new_files_gives(tmp_path, capsys):
    """Nights 1 and 2 posted; night 2's payments change; a plain run is refused, --replace
    undoes night 2 and posts it again. Its tables are byte for byte those of nights 1 and
    the new 2 run from scratch, and the run log keeps the undone run as `replaced`."""
    first, second = _drops(tmp_path / "a")[:2]
    assert _run(tmp_path / "a", first) == 0 and _run(tmp_path / "a", second) == 0
    undone = _runs(tmp_path / "a")[-1][1]
    _change(second)
    assert _run(tmp_path / "a", second) == 3
    assert "the drop files differ now" in capsys.readouterr().err
    assert _run(tmp_path / "a", second, "--replace") == 0
    assert "2026-03-03: replaced" in capsys.readouterr().out
    fresh_first, fresh_second = _drops(tmp_path / "b")[:2]
    _change(fresh_second)
    assert _run(tmp_path / "b", fresh_first) == 0 and _run(tmp_path / "b", fresh_second) == 0
    night = "out/nordwind/2026-03-03"
    assert _tables(tmp_path / "a" / night) == _tables(tmp_path / "b" / night)
    assert [r[2] for r in _runs(tmp_path / "a")] == ["done", "replaced", "done"]
    assert _runs(tmp_path / "a")[1][1] == undone
    assert _runs(tmp_path / "a")[2] == _runs(tmp_path / "b")[1]
    # the same files again: unchanged, with or without --replace
    assert _run(tmp_path / "a", second, "--replace") == 0
    assert "unchanged" in capsys.readouterr().out


def test_replace_is_for_the_latest_night_only(tmp_path, capsys):
    first, second = _drops(tmp_path)[:2]
    assert _run(tmp_path, first) == 0 and _run(tmp_path, second) == 0
    before = (tmp_path / "s.duckdb").read_bytes()
    _change(first)
    assert _run(tmp_path, first, "--replace") == 3
    assert "error[E313]: --replace is allowed for the client's latest night only" in (
        capsys.readouterr().err)
    assert (tmp_path / "s.duckdb").read_bytes() == before


def test_replace_of_a_clients_first_night_starts_from_nothing(tmp_path):
    (first,) = _drops(tmp_path / "a")[:1]
    assert _run(tmp_path / "a", first) == 0
    _change(first)
    assert _run(tmp_path / "a", first, "--replace") == 0
    (fresh,) = _drops(tmp_path / "b")[:1]
    _change(fresh)
    assert _run(tmp_path / "b", fresh) == 0
    night = "out/nordwind/2026-03-02"
    assert _tables(tmp_path / "a" / night) == _tables(tmp_path / "b" / night)


def test_replace_without_the_kept_state_is_refused(tmp_path, capsys):
    """The state from before the latest night is gone (or is another night's): the
    replace is refused (E314) and the state file is left as it was."""
    first, second = _drops(tmp_path)[:2]
    assert _run(tmp_path, first) == 0 and _run(tmp_path, second) == 0
    (tmp_path / "s.duckdb.before").unlink()
    before = (tmp_path / "s.duckdb").read_bytes()
    _change(second)
    assert _run(tmp_path, second, "--replace") == 3
    assert "error[E314]: the state from before the run of 2026-03-03 was not kept" in (
        capsys.readouterr().err)
    assert (tmp_path / "s.duckdb").read_bytes() == before
    assert not (tmp_path / "s.duckdb.replacing").exists()
