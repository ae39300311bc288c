"""`ruledger run-all`: every client with a drop for the night, each in its own process.

A client's bad rules, refused drop or crash never stops the others: each runs as
`ruledger run --json` in a child process, its log goes to a file, and its exit code
and summary come back here. The batch ends with one table and the worst exit code.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml
from loguru import logger

STATUS = {0: "done", 2: "bad rules", 3: "refused", 4: "failed"}


@dataclass(frozen=True)
class Job:
    name: str  # the rules folder's name, which is the drop folder's
    client_id: str
    rules_dir: Path
    drop_dir: Path | None  # None: no drop tonight


@dataclass
class Outcome:
    job: Job
    status: str
    exit_code: int
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)
    message: str = ""
    log: Path | None = None


def client_id(rules_dir: Path) -> str:
    """The client id of client.yaml, or the folder's name when it cannot be read."""
    try:
        data = yaml.safe_load((rules_dir / "client.yaml").read_text(encoding="utf-8"))
        found = data["client"]["id"]
        return found if isinstance(found, str) and found else rules_dir.name
    except Exception:  # a broken client.yaml is the child's to report
        return rules_dir.name


def find_jobs(rules_root: Path, drops_root: Path, as_of: dt.date) -> list[Job]:
    """Every client folder (one holding a client.yaml), with its drop for `as_of` if any."""
    jobs = []
    for rules in sorted(p for p in rules_root.iterdir() if (p / "client.yaml").is_file()):
        cid = client_id(rules)
        drop = next((d for d in (drops_root / rules.name / as_of.isoformat(),
                                 drops_root / cid / as_of.isoformat()) if d.is_dir()), None)
        jobs.append(Job(rules.name, cid, rules, drop))
    return jobs


@dataclass(frozen=True)
class Settings:
    """What every client's run of the batch shares."""

    as_of: dt.date
    out: Path
    state_dir: Path
    fmt: str = "parquet"
    log_json: bool = False
    replace: bool = False  # each client's latest night, if it is this one, run again
    memory_limit: str | None = None

    @property
    def log_dir(self) -> Path:
        return self.out / ".logs" / self.as_of.isoformat()


def _run_one(job: Job, settings: Settings) -> Outcome:
    if job.drop_dir is None:
        return Outcome(job, "no drop", 0)
    command = [sys.executable, "-m", "engine.cli", "run", str(job.rules_dir),
               "--drop", str(job.drop_dir), "--as-of", settings.as_of.isoformat(),
               "--state", str(settings.state_dir / f"{job.client_id}.duckdb"),
               "--out", str(settings.out), "--format", settings.fmt, "--json"]
    command += ["--log-json"] if settings.log_json else []
    command += ["--replace"] if settings.replace else []
    command += ["--memory-limit", settings.memory_limit] if settings.memory_limit else []
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log = settings.log_dir / f"{job.name}.log"
    log.write_text(done.stderr, encoding="utf-8")
    outcome = Outcome(job, STATUS.get(done.returncode, "failed"), done.returncode, seconds,
                      log=log)
    try:
        reply = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        reply = None
    if done.returncode == 0 and isinstance(reply, dict):
        outcome.status, outcome.summary = reply["status"], reply
    elif isinstance(reply, list) and reply:  # diagnostics
        first = reply[0]
        where = f"{first['file']}:{first['line']}: " if first.get("file") else ""
        outcome.message = f"{where}{first['message']}" + (
            f" (and {len(reply) - 1} more)" if len(reply) > 1 else "")
    else:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        outcome.message = lines[-1] if lines else f"exit {done.returncode}"
    return outcome


def run_all(rules_root: Path, drops_root: Path, settings: Settings,
            jobs: int = 2) -> list[Outcome]:
    """Run every client's night; return the outcomes in client order."""
    found = find_jobs(rules_root, drops_root, settings.as_of)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_run_one, job, settings) for job in found]
        outcomes = []
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            if outcome.status != "no drop":
                say = logger.info if outcome.exit_code == 0 else logger.error
                say(f"{outcome.job.name}: {outcome.status} in {outcome.seconds:.1f}s"
                    + (f": {outcome.message}" if outcome.message else ""))
    return outcomes


def worst(outcomes: list[Outcome]) -> int:
    """The batch's exit code: the worst of its clients' (4 over 3 over 2 over 0)."""
    return max((o.exit_code for o in outcomes), default=0)


def _cash(summary: dict) -> str:
    applied = summary.get("cash_applied") or {}
    return ", ".join(f"{Decimal(v):,f} {c}" for c, v in applied.items()) or "-"


def table(outcomes: list[Outcome]) -> str:
    """The end-of-batch table: one line per client."""
    header = (f"{'client':<14} {'status':<10} {'rows in':>8} {'invoices':>8} "
              f"{'exceptions':>10} {'seconds':>8}  cash applied")
    lines = [header, "-" * len(header)]
    for o in outcomes:
        s = o.summary
        lines.append(f"{o.job.name:<14} {o.status:<10} {s.get('rows_in', '-'):>8} "
                     f"{s.get('invoices', '-'):>8} {s.get('exceptions', '-'):>10} "
                     f"{o.seconds:>8.1f}  {_cash(s)}")
        if o.message:
            lines.append(f"{'':<14} {o.message}")
    ran = [o for o in outcomes if o.status != "no drop"]
    lines.append(f"{len(ran)} of {len(outcomes)} clients had a drop; "
                 f"exit {worst(outcomes)}")
    return "\n".join(lines)
