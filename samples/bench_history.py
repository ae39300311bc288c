"""`make bench-nights`: one client night after night on one state file, as history grows.

    python samples/bench_history.py [--size 20000] [--nights 30] [--every 12] [--paid 95]
                                    [--seed 1] [--work DIR] [--memory-limit SIZE]
                                    [--keep-before NIGHT]

Generates NIGHTS nights of SIZE billable lines with `samples/generate.py`, one night every
`--every` days (30 nights 12 days apart are a year), the next night paying `--paid` percent
of each night's invoices, so most items end closed (the rest stay open and are dunned, with
fee and interest items of their own); the drops are kept in WORK and reused when the same
arguments are asked again. Then it runs `ruledger run` on every night in date order on one
state file, each night a child process measured like `make bench` does (`bench.measure`:
wall time, CPU time, peak resident memory by `wait4`), and after each night reads the state
file, read only: its open and closed items, the payments carried as unapplied cash, the ids
processed so far, and its size.

It prints one table, a row per night, and how the last night compares with the first (and
with the second, as the first also loads every customer and the opening items): the
incremental promise of issue 8 is that wall time grows no faster than the open items.
`--keep-before N` keeps a copy of the state file as it was before night N, to profile
that night alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import CLIENT, Figures, generate_once, measure  # noqa: E402


@dataclass(frozen=True)
class Drops:
    """The generated rules and nights of one set of generator arguments."""

    size: int
    nights: int
    every: int
    paid: int
    seed: int

    def folder(self, work: Path) -> Path:
        return work / (f"synth-{self.size}-x{self.nights}-every{self.every}"
                       f"-paid{self.paid}-{self.seed}")


@dataclass(frozen=True)
class Ledger:
    """What the state file holds after a night: items open and closed, payments carried as
    unapplied cash, ids processed, and its size."""

    open_items: int
    closed_items: int
    unapplied: int
    processed_ids: int
    state_bytes: int


@dataclass(frozen=True)
class NightRow:
    night: int
    as_of: str
    figures: Figures
    drop_rows: int
    ledger: Ledger


def generated(work: Path, drops: Drops) -> Path:
    """The rules and every night of `drops` (made once per set of arguments)."""
    return generate_once(drops.folder(work), "--transactions", drops.size, "--nights",
                         drops.nights, "--every", drops.every, "--paid", drops.paid, "--seed",
                         drops.seed)


def drop_rows(drop: Path) -> int:
    """Data rows over every input file of the drop (Parquet or CSV)."""
    total = 0
    for path in sorted(drop.iterdir()):
        if path.suffix == ".parquet":
            total += pq.ParquetFile(path).metadata.num_rows
        elif path.suffix == ".csv":
            with path.open("rb") as f:
                total += max(0, sum(1 for _ in f) - 1)
    return total


def ledger(state: Path) -> Ledger:
    """Open items (not closed) and closed (settled) items of the state file, read only."""
    with duckdb.connect(str(state), read_only=True) as con:
        open_items, closed = con.execute(
            "SELECT count(*) FILTER (WHERE closed_on IS NULL), "
            "count(*) FILTER (WHERE closed_on IS NOT NULL) FROM open_items").fetchone()
        unapplied = con.execute(
            "SELECT count(*) FROM unapplied_cash WHERE closed_on IS NULL").fetchone()[0]
        processed = con.execute("SELECT count(*) FROM processed_ids").fetchone()[0]
    size = sum(p.stat().st_size for p in (state, state.with_name(state.name + ".wal"))
               if p.exists())
    return Ledger(open_items, closed, unapplied, processed, size)


def run(drops: Drops, work: Path, memory_limit: str | None = None,
        keep_before: int | None = None) -> list[NightRow]:
    """Every night in date order on one fresh state file, each a measured child."""
    folder = generated(work, drops)
    rules = folder / "rules" / CLIENT
    scratch = folder / "run"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    state = scratch / "state.duckdb"
    rows = []
    for night, drop in enumerate(sorted((folder / "drops" / CLIENT).iterdir()), start=1):
        if night == keep_before and state.exists():
            shutil.copyfile(state, scratch / f"state-before-night-{night}.duckdb")
        command = [sys.executable, "-m", "engine.cli", "run", str(rules), "--drop", str(drop),
                   "--state", str(state), "--out", str(scratch / "out")]
        command += ["--memory-limit", memory_limit] if memory_limit else []
        log = scratch / f"night-{night:02d}.log"
        figures = measure(command, log)
        if figures.exit_code != 0:
            raise SystemExit(f"night {night} ({drop.name}) exited {figures.exit_code}; see {log}")
        rows.append(NightRow(night, drop.name, figures, drop_rows(drop), ledger(state)))
    return rows


def table(rows: list[NightRow]) -> str:
    lines = ["| night | as-of | wall s | CPU s | peak MiB | drop rows | open items | "
             "closed items | unapplied cash | processed ids | state MiB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.night} | {r.as_of} | {r.figures.wall:.1f} | {r.figures.cpu:.1f} | "
              f"{r.figures.peak_mib:,.0f} | {r.drop_rows:,} | {r.ledger.open_items:,} | "
              f"{r.ledger.closed_items:,} | {r.ledger.unapplied:,} | "
              f"{r.ledger.processed_ids:,} | {r.ledger.state_bytes / 2**20:,.1f} |"
              for r in rows]
    return "\n".join(lines)


def compare(late: NightRow, early: NightRow) -> str:
    """How much slower a late night is than an early one, next to how many more items
    are open (what an incremental run may cost) and closed (what it must not)."""
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "n/a"

    return (f"night {late.night} vs night {early.night}: "
            f"wall {ratio(late.figures.wall, early.figures.wall)}, "
            f"CPU {ratio(late.figures.cpu, early.figures.cpu)}, "
            f"peak memory {ratio(late.figures.peak_mib, early.figures.peak_mib)}; "
            f"open items {ratio(late.ledger.open_items, early.ledger.open_items)} "
            f"({early.ledger.open_items:,} -> {late.ledger.open_items:,}), "
            f"closed items {early.ledger.closed_items:,} -> {late.ledger.closed_items:,}, "
            f"drop rows {ratio(late.drop_rows, early.drop_rows)}")


def report(rows: list[NightRow]) -> str:
    lines = [table(rows), ""]
    lines += [compare(rows[-1], rows[0])]
    if len(rows) > 2:
        lines += [compare(rows[-1], rows[1])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="billable lines a night")
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--every", type=int, default=12, metavar="DAYS",
                        help="days from one night to the next")
    parser.add_argument("--paid", type=int, default=95, metavar="PERCENT",
                        help="share of each night's invoices the next night pays")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ruledger-bench"),
                        help="where generated drops and runs are kept")
    parser.add_argument("--memory-limit", help="DuckDB memory limit of each ruledger run")
    parser.add_argument("--keep-before", type=int, metavar="NIGHT",
                        help="keep a copy of the state file as it was before this night")
    args = parser.parse_args(argv)
    if args.nights < 1 or args.size < 1:
        parser.error("--size and --nights must be at least 1")
    drops = Drops(args.size, args.nights, args.every, args.paid, args.seed)
    print(report(run(drops, args.work, args.memory_limit, args.keep_before)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
