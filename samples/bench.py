"""`make bench`: `ruledger run` on a generated drop, next to hand-written SQL and I/O.

    python samples/bench.py [--sizes 100000,1000000] [--seed 1] [--work DIR]
                            [--memory-limit SIZE] [--repeat 3]

For each size it generates one night with `samples/generate.py` (kept in WORK and
reused when the same size and seed are asked again), then runs, each as a child
process of this one and measured with `wait4` (wall time, CPU time, peak resident
memory of that child):

- `floor`: read every input file of the drop and write it back as Parquet, the least
  any engine must do with the night;
- `sql`: `samples/baseline.sql`, the same night's work written by hand in plain DuckDB
  SQL for this one client (its rules hard-coded): tax, invoicing, cash application,
  dunning, credit, journal entries and aging, each output table written as Parquet,
  in one DuckDB connection;
- `ruledger`: the full `ruledger run` from an empty state.

Each run writes into its own folder WORK/synth-<size>-<seed>/run/<name>/. The three are
run `--repeat` times, in turn (floor, sql, ruledger, floor, ...), so that a busy moment
of the machine falls on all of them; each figure is the median of its runs. It prints
one table with each run's wall time over the SQL baseline's and over the floor's.
`--memory-limit` is given to DuckDB in the SQL baseline and in the ruledger run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "samples" / "baseline.sql"
CLIENT = "synth"
NIGHT = "2026-03-02"


@dataclass(frozen=True)
class Figures:
    wall: float
    cpu: float
    peak_mib: float
    exit_code: int


def measure(command: list[str], log: Path) -> Figures:
    """Run `command` as a child; its own wall time, CPU time and peak RSS."""
    with log.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return Figures(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                   child.returncode)


def median(runs: list[Figures]) -> Figures:
    """Each figure the median of the runs' (the runs all succeeded)."""
    return Figures(*(statistics.median(getattr(f, name) for f in runs)
                     for name in ("wall", "cpu", "peak_mib")), exit_code=0)


def generate_once(folder: Path, *arguments: object) -> Path:
    """`samples/generate.py FOLDER ARGUMENTS`, unless a finished run left its marker."""
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, str(ROOT / "samples" / "generate.py"), str(folder),
                        *map(str, arguments)], check=True, stderr=subprocess.DEVNULL)
        (folder / ".complete").touch()
    return folder


def generated(work: Path, size: int, seed: int) -> Path:
    """The generated rules and drop of `size` lines (made once per size and seed)."""
    return generate_once(work / f"synth-{size}-{seed}", "--transactions", size, "--seed", seed)


def floor(drop: Path, out: Path) -> None:
    """Every input file read and written back as Parquet: the I/O any run must do."""
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in drop.iterdir() if not p.name.startswith(".")):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        elif path.suffix == ".csv":
            table = pacsv.read_csv(path)
        elif path.suffix == ".jsonl":
            table = pajson.read_json(path)
        else:
            continue
        pq.write_table(table, out / f"{path.stem}.parquet", compression="zstd")


def baseline(drop: Path, out: Path, as_of: str, memory_limit: str | None = None) -> None:
    """`samples/baseline.sql` over the drop, in one DuckDB connection: its outputs in `out`."""
    import duckdb

    script = BASELINE.read_text(encoding="utf-8")
    for name, value in (("drop", drop.resolve()), ("out", out.resolve()), ("as_of", as_of)):
        script = script.replace("{" + name + "}", str(value))
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit} if memory_limit else {})
    try:
        con.execute(script)
    finally:
        con.close()


def commands(folder: Path, scratch: Path, memory_limit: str | None) -> dict[str, list[str]]:
    """The measured runs of one drop, each writing into its own folder under `scratch`."""
    drop = folder / "drops" / CLIENT / NIGHT
    limit = ["--memory-limit", memory_limit] if memory_limit else []
    return {
        "floor": [sys.executable, __file__, "--floor", str(drop), str(scratch / "floor")],
        "sql": [sys.executable, __file__, "--sql", str(drop), str(scratch / "sql" / "out"),
                NIGHT] + limit,
        "ruledger": [sys.executable, "-m", "engine.cli", "run", str(folder / "rules" / CLIENT),
                     "--drop", str(drop), "--state", str(scratch / "ruledger" / "state.duckdb"),
                     "--out", str(scratch / "ruledger" / "out")] + limit,
    }


def run(sizes: list[int], seed: int, work: Path, memory_limit: str | None,
        repeat: int = 1) -> list[tuple]:
    """(lines, run, wall s, CPU s, peak MiB, wall / sql, wall / floor) of every run, each
    figure the median of `repeat` runs."""
    rows = []
    for size in sizes:
        folder = generated(work, size, seed)
        scratch = folder / "run"
        runs: dict[str, list[Figures]] = {}
        for _ in range(repeat):
            for name, command in commands(folder, scratch, memory_limit).items():
                shutil.rmtree(scratch / name, ignore_errors=True)
                (scratch / name).mkdir(parents=True)
                figures = measure(command, folder / f"{name}.log")
                if figures.exit_code != 0:
                    raise SystemExit(f"{name} failed at {size:,} lines; see {folder}/{name}.log")
                runs.setdefault(name, []).append(figures)
        results = {name: median(figures) for name, figures in runs.items()}
        sql, io = results["sql"], results["floor"]
        for name, f in results.items():
            rows.append((size, name, f.wall, f.cpu, f.peak_mib, f.wall / sql.wall,
                         f.wall / io.wall))
    return rows


def table(rows: list[tuple]) -> str:
    lines = ["| lines | run | wall s | CPU s | peak MiB | wall / sql | wall / floor |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    # Ratios to two places: the target is 1.5x, which one place would round 1.46x up to.
    lines += [f"| {size:,} | {name} | {wall:.2f} | {cpu:.1f} | {peak:,.0f} | {to_sql:.2f}x "
              f"| {to_floor:.1f}x |"
              for size, name, wall, cpu, peak, to_sql, to_floor in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="billable lines of the night, comma separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ruledger-bench"),
                        help="where generated drops and runs are kept")
    parser.add_argument("--memory-limit",
                        help="DuckDB memory limit of the SQL baseline and the ruledger run")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each, in turn; each figure is their median")
    parser.add_argument("--floor", nargs=2, type=Path, metavar=("DROP", "OUT"),
                        help=argparse.SUPPRESS)  # the floor's own child process
    parser.add_argument("--sql", nargs=3, metavar=("DROP", "OUT", "AS_OF"),
                        help=argparse.SUPPRESS)  # the SQL baseline's own child process
    args = parser.parse_args(argv)
    if args.floor:
        floor(*args.floor)
        return 0
    if args.sql:
        drop, out, as_of = args.sql
        baseline(Path(drop), Path(out), as_of, args.memory_limit)
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    repeat = max(args.repeat, 1)
    print(table(run(sizes, args.seed, args.work, args.memory_limit, repeat)))
    print("\n(one run each)" if repeat == 1 else f"\n(each figure the median of {repeat} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
