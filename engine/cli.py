"""The `ruledger` command: arguments, exit codes, and one clear message per error.

Each command calls one library function; `_handle` turns our errors into
their message and exit code, with a traceback only under --debug.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

from loguru import logger

from engine import __version__, log
from engine.errors import Diagnostic, RuledgerError, RuleError, diagnostics_json

DIALECTS = ("duckdb", "spark", "postgres", "snowflake", "bigquery", "trino")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def cmd_check(args: argparse.Namespace) -> int:
    """Load, validate, type-check and compile every rule file; list every problem."""
    from engine.config.ruleset import load_ruleset

    worst = 0
    every: list[Diagnostic] = []
    for folder in args.rules_dir:
        try:
            ruleset = load_ruleset(folder)
        except RuleError as exc:
            every += exc.diagnostics
            worst = 2
            if not args.json:
                print("\n\n".join(d.render() for d in exc.diagnostics), file=sys.stderr)
                print(f"{folder}: {len(exc.diagnostics)} error(s)", file=sys.stderr)
            continue
        every += ruleset.warnings
        if not args.json:
            for warning in ruleset.warnings:
                print(warning.render(), file=sys.stderr)
            print(f"{folder}: ok ({len(ruleset.files)} files, "
                  f"{len(ruleset.expressions)} expressions, {len(ruleset.custom)} custom rules, "
                  f"rules digest {ruleset.digest[:12]})")
    if args.json:
        print(diagnostics_json(every))
    return worst


def cmd_compile(args: argparse.Namespace) -> int:
    """Print each compiled expression and the ingest statement of each input table."""
    from engine.plan import compiled_sql

    print(compiled_sql(args.rules_dir, args.dialect))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The nightly batch for one client."""
    from engine.run import RunOptions, run_night

    options = RunOptions(rules_dir=args.rules_dir, drop_dir=args.drop, as_of=args.as_of,
                         state_path=args.state, out_root=args.out, fmt=args.format,
                         memory_limit=args.memory_limit, replace=args.replace)
    result = run_night(options)
    summary = {"client": result.client, "as_of": result.as_of.isoformat(),
               "status": result.status, "run_id": result.run_id,
               "outputs": str(result.folder), **result.counts}
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(_summary_text(summary))
    return 0


def cmd_run_all(args: argparse.Namespace) -> int:
    """Every client with a drop for the night, each in its own process; one table at the end."""
    from engine import batch

    as_of = args.as_of or dt.date.today()
    settings = batch.Settings(as_of, args.out, args.state_dir, args.format, args.log_json,
                              args.replace, args.memory_limit)
    outcomes = batch.run_all(args.rules_root, args.drops, settings, args.jobs)
    if args.json:
        print(json.dumps([{"client": o.job.name, "status": o.status, "exit_code": o.exit_code,
                           "seconds": round(o.seconds, 2), "message": o.message,
                           "log": str(o.log) if o.log else None, **o.summary}
                          for o in outcomes], default=str))
    else:
        print(batch.table(outcomes))
    return batch.worst(outcomes)


def cmd_test(args: argparse.Namespace) -> int:
    """Run the client's rule tests (RULES_DIR/tests/*.yaml): given rows, expected rows."""
    from engine.ruletest import run_tests

    if not args.debug:
        logger.remove()  # each test is a night; its log would bury the results
    worst = 0
    report = []
    for folder in args.rules_dir:
        results = run_tests(folder)
        count = sum(len(outcomes) for _, outcomes in results)
        failed = [o for _, outcomes in results for o in outcomes if not o.passed]
        worst = max(worst, 1 if failed else 0)
        if args.json:
            report += [{"client": str(folder), "file": str(path), "test": o.test.name,
                        "passed": o.passed, "failures": o.failures}
                       for path, outcomes in results for o in outcomes]
            continue
        for path, outcomes in results:
            print(path)
            for o in outcomes:
                print(f"  {'ok  ' if o.passed else 'FAIL'}  {o.test.name}"
                      + ("" if o.passed else f"  ({o.test.ref})"))
                for failure in o.failures:
                    print("\n".join("        " + line for line in failure.splitlines()))
        print(f"{folder}: {count} tests, {count - len(failed)} passed"
              + (f", {len(failed)} failed" if failed else "")
              + ("" if count else f" (no tests in {folder / 'tests'})"))
    if args.json:
        print(json.dumps(report))
    return worst


def cmd_explain(args: argparse.Namespace) -> int:
    """For one invoice, payment or customer of a night: each rule tried, and what it made."""
    from engine.explain import explain
    from engine.run import RunOptions, as_of_from

    if not args.debug:
        logger.remove()  # the sandbox night's log is not the answer
    as_of = as_of_from(RunOptions(rules_dir=args.rules_dir, drop_dir=args.drop,
                                  as_of=args.as_of))
    print("\n".join(explain(args.rules_dir, args.drop, args.entity, as_of, args.state)))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List a client's runs from its state store: as-of, run id, status, digests, counts."""
    from engine.config.ruleset import load_ruleset
    from engine.run import run_log

    client = (load_ruleset(args.client).client.id if args.client.is_dir()
              else str(args.client))
    records = run_log(args.state or Path("state") / f"{client}.duckdb", client)
    if args.json:
        print(json.dumps([{**r.__dict__, "as_of": r.as_of.isoformat()} for r in records]))
        return 0
    print(f"{'as-of':<10}  {'run id':<16}  {'status':<8}  {'rules':<12}  {'inputs':<12}  "
          f"{'rows':>6}  {'rejected':>8}  {'invoices':>8}  {'exceptions':>10}  finished")
    for r in records:
        c = r.counts
        print(f"{r.as_of.isoformat():<10}  {r.run_id:<16}  {r.status:<8}  {r.rules_digest[:12]}  "
              f"{r.inputs_digest[:12]}  {c.get('rows_in', 0):>6}  {c.get('rejected', 0):>8}  "
              f"{c.get('invoices', 0):>8}  {c.get('exceptions', 0):>10}  {r.finished_at}")
    return 0


def _summary_text(summary: dict) -> str:
    accepted = summary.get("accepted", {})
    lines = [f"{summary['client']} {summary['as_of']}: {summary['status']} "
             f"(run {summary['run_id']})",
             f"  rows in      {summary.get('rows_in', 0):>8}",
             f"  rejected     {summary.get('rejected', 0):>8}"]
    lines += [f"  {table:<12} {n:>8} accepted" for table, n in accepted.items()]
    made = [("invoices", "invoices"), ("credit_notes", "credit notes"),
            ("lines_held", "lines held"), ("cash_applied", "cash applied"),
            ("payments_unmatched", "unmatched"), ("exceptions", "exceptions")]
    for key, label in made:
        if key in summary:
            value = summary[key]
            if isinstance(value, dict):  # money per currency
                value = ", ".join(f"{Decimal(v):,f} {c}" for c, v in value.items()) or "0"
            lines.append(f"  {label:<12} {value:>8}")
    lines.append(f"  outputs      {summary['outputs']}")
    return "\n".join(lines)


def _night_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments that name one client's night: rules, drop, as-of, state."""
    p.add_argument("rules_dir", type=Path, metavar="RULES_DIR")
    p.add_argument("--drop", type=Path, required=True, metavar="DIR", help="the night's drop")
    p.add_argument("--as-of", type=_date, metavar="DATE",
                   help="the business date (default: the drop folder's name)")
    p.add_argument("--state", type=Path, metavar="PATH",
                   help="the client's state file (default: state/<client>.duckdb)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ruledger", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ruledger {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-json", action="store_true", help="logs as JSON lines on stderr")
    common.add_argument("--debug", action="store_true", help="tracebacks and debug logs")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", parents=[common], help=cmd_check.__doc__,
                       description=cmd_check.__doc__)
    p.add_argument("rules_dir", nargs="+", type=Path, metavar="RULES_DIR")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("test", parents=[common], help=cmd_test.__doc__,
                       description=cmd_test.__doc__ + " Exit 0 all pass, 1 a test failed, "
                       "2 bad rules or tests.")
    p.add_argument("rules_dir", nargs="+", type=Path, metavar="RULES_DIR")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("explain", parents=[common], help=cmd_explain.__doc__,
                       description=cmd_explain.__doc__ + " The night runs in a sandbox: "
                       "nothing of the client changes.")
    _night_arguments(p)
    p.add_argument("--entity", required=True, metavar="KIND:ID",
                   help="invoice:<invoice id>, payment:<payment id> or customer:<customer id>")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("compile", parents=[common], help=cmd_compile.__doc__,
                       description=cmd_compile.__doc__)
    p.add_argument("rules_dir", type=Path, metavar="RULES_DIR")
    p.add_argument("--dialect", choices=DIALECTS, default="duckdb")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("run", parents=[common], help=cmd_run.__doc__, description=cmd_run.__doc__)
    _night_arguments(p)
    p.add_argument("--out", type=Path, default=Path("out"), metavar="DIR",
                   help="output root; the night goes to OUT/<client>/<as-of>/")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument("--memory-limit", metavar="SIZE", help="DuckDB memory limit, e.g. 2GB")
    p.add_argument("--replace", action="store_true",
                   help="run the client's latest night again with changed files or rules, "
                        "undoing its first run")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("run-all", parents=[common], help=cmd_run_all.__doc__,
                       description=cmd_run_all.__doc__)
    p.add_argument("rules_root", type=Path, metavar="RULES_ROOT",
                   help="a folder of client rule folders (rules/<client>/)")
    p.add_argument("--drops", type=Path, required=True, metavar="DROPS_ROOT",
                   help="a folder of drops: DROPS_ROOT/<client>/<as-of>/")
    p.add_argument("--as-of", type=_date, metavar="DATE", help="the night (default: today)")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="clients run at once, each in its own process (default 2)")
    p.add_argument("--state-dir", type=Path, default=Path("state"), metavar="DIR",
                   help="state files, DIR/<client>.duckdb (default: state)")
    p.add_argument("--out", type=Path, default=Path("out"), metavar="DIR",
                   help="output root; each client's log goes to OUT/.logs/<as-of>/")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument("--memory-limit", metavar="SIZE", help="DuckDB memory limit of each client's "
                   "run, e.g. 2GB")
    p.add_argument("--replace", action="store_true",
                   help="run each client's latest night again if it is this one and its files "
                        "or rules changed (see run --replace); other clients run as usual")
    p.set_defaults(func=cmd_run_all)

    p = sub.add_parser("runs", parents=[common], help=cmd_runs.__doc__,
                       description=cmd_runs.__doc__)
    p.add_argument("client", type=Path, metavar="CLIENT",
                   help="a client id, or its rules folder")
    p.add_argument("--state", type=Path, metavar="PATH",
                   help="the client's state file (default: state/<client>.duckdb)")
    p.set_defaults(func=cmd_runs)
    return parser


def _handle(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except RuledgerError as exc:
        if getattr(args, "json", False):
            print(diagnostics_json(exc.diagnostics))
        print("\n\n".join(d.render() for d in exc.diagnostics), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was committed", file=sys.stderr)
        return 4
    except Exception as exc:
        if args.debug:
            raise
        logger.opt(exception=exc).debug("internal failure")
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the "
              "traceback); nothing was committed", file=sys.stderr)
        return 4


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad arguments, 0 on --help
        return int(exc.code or 0)
    log.setup(json_lines=args.log_json, verbose=args.debug)
    return _handle(args.func, args)


def entry() -> None:
    """The `ruledger` process: `main`, then exit. What the command made is written and
    closed by then; the objects left are frozen, so the interpreter's last collection does
    not walk them all on its way out (at a million lines that walk was 0.13 s of the
    run's 0.17 s of exit). Only here, not in `main`: tests run it many times in one
    process, and frozen objects are never collected."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
