"""Crash safety: one run per client at a time, and a killed run undone or finished.

A run's commit point is the state store's COMMIT (for `--replace`, the rename of
the replacing state file over the client's state). Before it nothing outside a
hidden staging folder changes; after it the outputs are renamed into place.
Between the two a killed process would leave a night that is posted but not
published, so before it writes anything a run records its intent beside the
state file (`<state>.publishing`): run id, staging folder, target folder. The
next run of the client, under the client lock, reads the intent and the run log:
a committed run has its outputs published, an uncommitted one its staging folder
removed. Either way the books and the folders agree again, and a rerun gives
what the uninterrupted run would have given.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
from loguru import logger

from engine.errors import Diagnostic, DropRefused

FAILPOINT_VARIABLE = "RULEDGER_FAILPOINT"


def failpoint(name: str) -> None:
    """The crash tests' `kill -9`: the process dies here when RULEDGER_FAILPOINT names it."""
    if os.environ.get(FAILPOINT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def client_lock(state_path: Path, client: str) -> Iterator[None]:
    """Hold `<state>.lock` for the whole run; a second run of the client is refused (E311).

    The lock file stays in place: removing it would let two runs lock two files.
    The kernel drops the lock when the process ends, however it ends.
    """
    path = state_path.with_name(state_path.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(state_path, client) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def busy(state_path: Path, client: str) -> DropRefused:
    return DropRefused([Diagnostic(
        "E311", f"another run of client {client} holds its state file {state_path}",
        hint="wait for it to end; two runs of one client never share the state")])


# -- state files ------------------------------------------------------------------------

def wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def before(state_path: Path) -> Path:
    """Where the state as it was before the client's latest run is kept, for --replace."""
    return state_path.with_name(state_path.name + ".before")


def before_next(state_path: Path) -> Path:
    """The copy a run makes before it changes the state; `before` once it commits."""
    return state_path.with_name(state_path.name + ".before-next")


def replacing(state_path: Path) -> Path:
    """The state a --replace run works on until it commits."""
    return state_path.with_name(state_path.name + ".replacing")


def copy_state(source: Path, target: Path) -> None:
    """The state file and its write-ahead log, if any, copied whole to `target`."""
    pending = target.with_name(target.name + ".pending")
    drop_state(pending)
    shutil.copyfile(source, pending)
    if wal(source).exists():
        shutil.copyfile(wal(source), wal(pending))
    move_state(pending, target)


def move_state(source: Path, target: Path) -> None:
    """Rename a state file, with its write-ahead log, over `target`."""
    wal(target).unlink(missing_ok=True)
    if wal(source).exists():
        wal(source).replace(wal(target))
    source.replace(target)


def drop_state(path: Path) -> None:
    for p in (path, wal(path)):
        p.unlink(missing_ok=True)


def state_digest(path: Path) -> str | None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'state_digest'").fetchall()
        return rows[0][0] if rows else None
    finally:
        con.close()


# -- publication ------------------------------------------------------------------------

@dataclass(frozen=True)
class Intent:
    """What a run will put in place once it commits."""

    run_id: str
    staging: str
    target: str

    @property
    def aside(self) -> Path:
        """Where the folder the target replaces waits until the new one is in place."""
        target = Path(self.target)
        return target.parent / f".{target.name}.old-{self.run_id}"


def intent_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".publishing")


def record_intent(path: Path, intent: Intent) -> None:
    """Written whole (temporary file, fsync, rename) before the staging folder is made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pending = path.with_name(path.name + ".tmp")
    with pending.open("w", encoding="utf-8") as f:
        json.dump(asdict(intent), f)
        f.flush()
        os.fsync(f.fileno())
    pending.replace(path)
    fsync_dir(path.parent)


def read_intent(path: Path) -> Intent | None:
    try:
        return Intent(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return None  # torn before its rename: nothing was staged under it


def publish(staging: Path, target: Path, aside: Path) -> None:
    """Rename `staging` into `target`; a folder already there goes `aside`, then away.

    Safe to repeat after a crash at any step: each step checks what is left to do.
    """
    if staging.exists():
        if target.exists():
            if aside.exists():
                shutil.rmtree(aside)
            os.replace(target, aside)
        os.replace(staging, target)
        fsync_dir(target.parent)
    if aside.exists():
        shutil.rmtree(aside)


def finish(path: Path) -> None:
    """A committed run's outputs put in place, and its intent done with."""
    intent = read_intent(path)
    if intent is not None:
        publish(Path(intent.staging), Path(intent.target), intent.aside)
    path.unlink(missing_ok=True)


def abandon(path: Path) -> None:
    """An uncommitted run's staging folder removed, and its intent with it."""
    intent = read_intent(path)
    if intent is not None:
        shutil.rmtree(intent.staging, ignore_errors=True)
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)


def recover(state_path: Path) -> None:
    """After a killed run: finish what committed, undo what did not. Under the client lock."""
    marker, saved = intent_path(state_path), before_next(state_path)
    drop_state(replacing(state_path))
    drop_state(saved.with_name(saved.name + ".pending"))
    if not (marker.exists() or saved.exists()):
        return  # the last run ended as it should
    done = _committed_runs(state_path) if state_path.exists() else {}
    intent = read_intent(marker)
    if intent is not None and intent.run_id in done:
        logger.warning(f"run {intent.run_id} was interrupted after it committed; its outputs "
                       f"are put in place now: {intent.target}")
        finish(marker)
    else:
        if intent is not None:
            logger.warning(f"run {intent.run_id} was interrupted before it committed; nothing "
                           "of it was posted, and its staged outputs are removed")
        abandon(marker)
    if saved.exists():
        latest = max(done.values(), default=None)
        if latest is not None and latest[1] == state_digest(saved):
            move_state(saved, before(state_path))  # the run committed: its before-state stays
        else:
            drop_state(saved)


def _committed_runs(state_path: Path) -> dict[str, tuple[str, str]]:
    """run id -> (finished at, state before) of every committed run still in force."""
    con = duckdb.connect(str(state_path), read_only=True)
    try:
        if not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'runs'").fetchall():
            return {}
        rows = con.execute("SELECT run_id, as_of::VARCHAR || finished_at, state_before "
                           "FROM runs WHERE status = 'done'").fetchall()
        return {run_id: (order, before) for run_id, order, before in rows}
    finally:
        con.close()


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
