"""The nightly run: rules, drop, state, stages, outputs; both committed or neither.

Order of the commit: the client is locked and any run killed before is put
right (`engine.safety`); outputs are written to a hidden staging folder, the
state commits, then the folder is renamed into place. A failure before the
commit removes the staging folder; a kill anywhere is settled by the next run.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger
from sqlglot import exp

from engine import __version__, progress, safety, tables
from engine.config.credit import credit_rules
from engine.config.dunning import dunning_rules
from engine.config.matching import matching_rules
from engine.config.ruleset import RuleSet, load_ruleset
from engine.config.tax import tax_table
from engine.dsl.compile import bind_as_of
from engine.errors import Diagnostic, DropRefused, InternalError, RuledgerError, RuleError
from engine.exceptions import Problem
from engine.executor import DuckDBExecutor
from engine.ingest import (
    Drop,
    DropFile,
    check_reject_ratio,
    drop_files,
    ingest,
    inputs_digest,
    rows,
)
from engine.money import quantize
from engine.output import Staged, pieces, staging_folder, staging_name, with_run_id
from engine.references import check_references
from engine.report import ExceptionsBuilder, render_exceptions
from engine.stages import aging, cash, credit, custom, dunning, invoicing, journal, subledger
from engine.stages.sql import currencies_table
from engine.state import RunRecord, StateStore


@dataclass
class RunOptions:
    rules_dir: Path
    drop_dir: Path
    as_of: dt.date | None = None
    state_path: Path | None = None
    out_root: Path = Path("out")
    fmt: str = "parquet"
    memory_limit: str | None = None
    replace: bool = False  # undo the client's latest night first, then run it again
    keep_before: bool = True  # save the state as it was before this run, for --replace
    intent: Path | None = None  # where the publication intent is kept (beside the state)
    publish: bool = True  # put the outputs in place once committed (--replace does it later)
    ruleset: RuleSet | None = None  # already loaded (`ruledger test`); else from rules_dir
    # Called with the connection and the outputs before the commit (`ruledger explain`).
    inspect: Callable[[DuckDBExecutor, dict[str, pa.Table]], None] | None = None


@dataclass
class RunResult:
    status: str  # done, unchanged
    client: str
    as_of: dt.date
    run_id: str
    folder: Path
    counts: dict = field(default_factory=dict)


def as_of_from(options: RunOptions) -> dt.date:
    """The run's date: --as-of, else the drop folder's name (drops/<client>/YYYY-MM-DD)."""
    if options.as_of:
        return options.as_of
    try:
        return dt.date.fromisoformat(options.drop_dir.name)
    except ValueError:
        raise RuleError([Diagnostic("E002", f"cannot tell the as-of date of {options.drop_dir}",
                                    hint="name the drop folder YYYY-MM-DD or pass --as-of")]
                        ) from None


def run_night(options: RunOptions) -> RunResult:
    """Run one client's night; raise RuledgerError with the exit code on failure."""
    ruleset = options.ruleset or load_ruleset(options.rules_dir)
    as_of = as_of_from(options)
    client = ruleset.client.id
    state_path = options.state_path or Path("state") / f"{client}.duckdb"
    with logger.contextualize(client=client), safety.client_lock(state_path, client), \
            _young_collections_only:
        safety.recover(state_path)
        if options.replace:
            replaced = _replace(options, ruleset, as_of, state_path)
            if replaced is not None:
                return replaced
        return _night(RunOptions(**{**options.__dict__, "state_path": state_path}),
                      ruleset, as_of)


class _YoungCollectionsOnly:
    """While any night runs, Python's cycle collector collects only the objects made since
    it last ran. A full collection walks every live object, and a night holds big ones (a
    column as a list walks all its items): at a million lines five of them took 0.25 s,
    on the thread every statement waits for, and found little. Young garbage (the
    compiler's trees, which point back to their parents) is still collected; what lived
    long goes at the next full collection after the last night ends. The thresholds are
    the process's: nights run side by side (`ruledger batch`) share them, and the last
    to end gives them back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nights = 0
        self._given: tuple[int, int, int] | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._nights == 0:
                self._given = gc.get_threshold()
                gc.set_threshold(self._given[0], self._given[1], 1 << 30)
            self._nights += 1

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._nights -= 1
            if self._nights == 0 and self._given is not None:
                gc.set_threshold(*self._given)


_young_collections_only = _YoungCollectionsOnly()


def _night(options: RunOptions, ruleset: RuleSet, as_of: dt.date) -> RunResult:
    state_path = options.state_path
    files = drop_files(options.drop_dir, ruleset)
    executor = DuckDBExecutor(memory_limit=options.memory_limit,
                              spill=state_path.with_name(state_path.name + ".spill"))
    new_state = not state_path.exists()
    try:
        _attach(executor, state_path, ruleset.client.id)
        return _run(options, ruleset, as_of, executor, files, state_path)
    except Exception as exc:  # nothing was committed: no trace of the run is left
        _forget(executor, state_path, new_state)
        safety.drop_state(safety.before_next(state_path))
        if isinstance(exc, RuledgerError):
            raise
        logger.opt(exception=exc).debug("internal failure")  # a failure of ours
        raise InternalError(f"internal failure: {type(exc).__name__}: {exc}") from exc
    finally:
        executor.close()


def _forget(executor: DuckDBExecutor, state_path: Path, new_state: bool) -> None:
    """A first run that did not commit leaves no state file behind."""
    if not new_state:
        return
    executor.close()
    for path in (state_path, state_path.with_name(state_path.name + ".wal")):
        path.unlink(missing_ok=True)


def run_log(state_path: Path, client: str) -> list[RunRecord]:
    """A client's run log, read from its state file (which this does not change)."""
    if not state_path.exists():
        raise RuleError([Diagnostic("E003", f"{state_path} does not exist",
                                    hint="pass --state the client's state file")])
    executor = DuckDBExecutor()
    try:
        _attach(executor, state_path, client, read_only=True)
        if not executor.query("SELECT 1 FROM duckdb_tables() WHERE database_name = 'state' "
                              "AND table_name = 'runs'"):
            return []
        return StateStore(executor, client).runs()
    finally:
        executor.close()


def _attach(executor: DuckDBExecutor, state_path: Path, client: str,
            read_only: bool = False) -> None:
    try:
        executor.attach(state_path, read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        raise safety.busy(state_path, client) from None


def _fold_log(executor: DuckDBExecutor, state_path: Path) -> None:
    """A write-ahead log left beside the state file (by a run killed in its commit, or a
    tiny commit) folded into the file before the night: the state kept for --replace is
    then the file alone, and the night's own commits never follow the torn end of an old
    log (only an older state's upgrade, in `migrate`, writes before this).
    DuckDB replays a log when the file is attached, but a log with nothing to replay (a
    torn end, a checkpoint that was cut short) stays until a checkpoint has something to
    write: a table made and dropped gives it that."""
    if not safety.wal(state_path).exists():
        return
    # (two commits: a run killed between them leaves the table, which the next one drops)
    executor.execute("CREATE OR REPLACE TABLE state.ruledger_fold_log (x INTEGER)")
    executor.execute("DROP TABLE IF EXISTS state.ruledger_fold_log")
    executor.execute("CHECKPOINT state")


def _replace(options: RunOptions, ruleset: RuleSet, as_of: dt.date,
             state_path: Path) -> RunResult | None:
    """--replace: the latest night run again from the state saved before it, the new state
    put in place only once that run has committed. None: nothing to replace (run as usual).
    """
    client = ruleset.client.id
    runs = [r for r in run_log(state_path, client) if r.status == "done"] \
        if state_path.exists() else []
    latest = runs[-1] if runs else None
    if latest is None or latest.as_of != as_of:
        if latest is not None and any(r.as_of == as_of for r in runs):
            raise DropRefused([Diagnostic(
                "E313", f"--replace is allowed for the client's latest night only, "
                        f"{latest.as_of}, not {as_of}",
                hint="replace the later nights first, newest first")])
        return None
    if (latest.rules_digest, latest.inputs_digest) == (
            ruleset.digest, inputs_digest(drop_files(options.drop_dir, ruleset))):
        return None  # the same files and rules: nothing to replace, the night is unchanged
    work = safety.replacing(state_path)
    safety.drop_state(work)
    if len(runs) > 1:
        before = safety.before(state_path)
        if not before.exists() or safety.state_digest(before) != latest.state_before:
            raise DropRefused([Diagnostic(
                "E314", f"the state from before the run of {as_of} was not kept (or is not "
                        f"the one that run started from), so {as_of} cannot be replaced",
                hint=f"{before} is saved by every run; restore the state file from a backup")])
        safety.copy_state(before, work)
    intent = safety.intent_path(state_path)
    result = _night(RunOptions(**{**options.__dict__, "state_path": work, "replace": False,
                                  "keep_before": False, "intent": intent, "publish": False}),
                    ruleset, as_of)
    _log_replaced(work, latest)
    safety.failpoint("replace:logged")
    safety.move_state(work, state_path)  # the commit point of a replacement
    safety.failpoint("replace:committed")
    _publish(intent)
    logger.info(f"{as_of} replaced: run {latest.run_id} undone, {result.run_id} posted")
    return RunResult("replaced", result.client, as_of, result.run_id, result.folder,
                     result.counts)


def _log_replaced(path: Path, record: RunRecord) -> None:
    """The run log keeps the undone run, as `replaced`, for auditors."""
    con = duckdb.connect(str(path))
    try:
        con.execute("INSERT INTO runs VALUES (?, ?, 'replaced', ?, ?, ?, ?, ?, ?, ?)",
                    [record.run_id, record.as_of, record.rules_digest, record.inputs_digest,
                     record.state_before, record.state_after, record.started_at,
                     record.finished_at, json.dumps(record.counts, sort_keys=True)])
    finally:
        con.close()


def _run(options: RunOptions, ruleset: RuleSet, as_of: dt.date, executor: DuckDBExecutor,
         files: list[DropFile], state_path: Path) -> RunResult:
    digest = inputs_digest(files)
    client = ruleset.client.id
    store = StateStore(executor, client)
    store.migrate()  # its own commit: tables of a new state (removed if the run fails)
    target = options.out_root / client / as_of.isoformat()
    done = _already_run(store, as_of, ruleset.digest, digest, target)
    if done is not None:
        return done
    started = _now()
    state_before = store.digest
    _fold_log(executor, state_path)
    keep = options.keep_before and store.has_runs()
    next_before = safety.before_next(state_path)
    if keep:  # committed state only: this run's changes are not written yet
        safety.copy_state(state_path, next_before)
    run_id = _run_id(client, as_of, digest, ruleset.digest, state_before)
    with logger.contextualize(run_id=run_id):
        logger.info(f"run {run_id} of {as_of} from {options.drop_dir}")
        # Reading the drop writes nothing, so it runs before the night's transaction: what
        # DuckDB reads inside a transaction it keeps until the end of it.
        drop = _ingest(options, ruleset, as_of, executor, store, files)
        try:
            check_reject_ratio(drop, ruleset.client.max_reject_ratio)
        except DropRefused:
            _write_refused(options, ruleset, as_of, run_id, drop, started)
            raise
        executor.execute("BEGIN TRANSACTION")
        intent = _intent(options)  # recorded before anything is staged
        safety.record_intent(intent, safety.Intent(run_id, str(staging_name(target, run_id)),
                                                   str(target)))
        staged = Staged(staging_folder(target, run_id), options.fmt,
                        keep=options.inspect is not None)
        try:
            manifest = _post(options, ruleset, as_of, executor, store, drop, staged, run_id,
                             started)
            record = RunRecord(run_id, as_of, "done", ruleset.digest, digest, state_before,
                               store.advance(run_id), started, manifest["finished_at"],
                               {**manifest["counts"], "folder": str(target)})
            safety.failpoint("staged")
            store.log_run(record)
            executor.drop_temporary()
            executor.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):  # a COMMIT that failed has ended the transaction
                executor.execute("ROLLBACK")
            staged.stop()
            safety.abandon(intent)
            safety.drop_state(next_before)
            raise
        safety.failpoint("committed")
        if keep:
            safety.move_state(next_before, safety.before(state_path))
        safety.failpoint("kept")
        if options.publish:
            _publish(intent)
        logger.info(f"done: {drop.total_rows} rows in, {drop.rejected_rows} rejected; "
                    f"outputs in {target}")
        return RunResult("done", client, as_of, run_id, target, manifest["counts"])


def _post(options: RunOptions, ruleset: RuleSet, as_of: dt.date, executor: DuckDBExecutor,
          store: StateStore, drop: Drop, staged: Staged, run_id: str, started: str) -> dict:
    """The night's stages inside its transaction, every output staged; the manifest."""
    counts = subledger.post(drop, executor, as_of)
    drop.problems += [Problem(
        "warning", "FX_RATE_REVISED", "ingest", "fx_rate", f"{day} {src}/{dst}",
        f"the rate {src} to {dst} of {day} was {old} and is sent as {new} now; the first "
        "rate stands, since earlier nights were decided with it",
        details={"rate_date": day, "kept": str(old), "sent": str(new)})
        for day, src, dst, old, new in counts.pop("fx_rates_revised", [])]
    builder = ExceptionsBuilder(ruleset, run_id)
    try:
        _stages(ruleset, drop, executor, as_of, run_id, counts, staged, builder)
        exceptions, built = builder.finish()
    finally:
        builder.close()
    if options.inspect is not None:
        options.inspect(executor, {**staged.kept, "exceptions": exceptions})
    staged.put("rejects", with_run_id(drop.reject_table(), tables.OUTPUTS["rejects"], run_id))
    staged.put("exceptions", exceptions)
    counts["exceptions"] = exceptions.num_rows
    staged.page("exceptions.html", render_exceptions(exceptions, ruleset, as_of.isoformat(),
                                                     run_id, built), exceptions.num_rows)
    manifest = _manifest(ruleset, as_of, run_id, drop, started, "done", counts)
    manifest["finished_at"] = _now()
    staged.finish(manifest)
    return manifest


def _stages(ruleset: RuleSet, drop: Drop, executor: DuckDBExecutor, as_of: dt.date,
            run_id: str, counts: dict, staged: Staged, problems: ExceptionsBuilder) -> None:
    """The stages after ingest, in SPEC order; each stages its output tables (written and
    let go at the end of the stage) and adds its problems, made into exceptions beside
    the stages after it."""
    outputs: dict[str, pa.Table] = {}
    problems.add(drop.problems)
    entries: list[pa.Table] = []

    def stage_outputs() -> None:
        for name in list(outputs):
            staged.put(name, outputs.pop(name))
        for part in entries:
            for piece in pieces(part):
                staged.append("journal_entries",
                              with_run_id(piece, tables.OUTPUTS["journal_entries"], run_id))
        entries.clear()

    executor.register("currencies", currencies_table())
    with _stage("invoicing", ruleset, as_of, executor):
        read = ("customers", "transactions", "payments")
        if any(ruleset.custom_rules(t) for t in read):  # fetched only for rules to read
            problems.add(custom.read(executor, ruleset, as_of,
                                     {t: drop.tables.arrow(t) for t in read}))
        problems.add(_invoicing(ruleset, drop, executor, as_of, run_id, counts, outputs,
                                entries))
        problems.add(custom.read(executor, ruleset, as_of, {  # (lines streamed have no rules)
            t: outputs[t] for t in ("invoices", "invoice_lines")
            if isinstance(outputs.get(t), pa.Table)}))
        stage_outputs()
    with _stage("matching", ruleset, as_of, executor):
        _matching(ruleset, drop, executor, as_of, run_id, counts, outputs, entries, problems)
        problems.seal("matching")  # ingest's, invoicing's and matching's rows, beside dunning
        stage_outputs()
    with _stage("dunning", ruleset, as_of, executor):
        problems.add(_dunning(ruleset, executor, as_of, run_id, counts, outputs, entries))
        problems.seal("dunning")
        stage_outputs()
    with _stage("credit", ruleset, as_of, executor):
        _credit(ruleset, executor, as_of, run_id, counts, outputs, problems)
        problems.seal("credit")
        stage_outputs()
    with _stage("aging", ruleset, as_of, executor):
        aging_table = aging.run(executor, ruleset, as_of)
        outputs["aging"] = with_run_id(aging_table, tables.aging_schema(
            [b.name for b in ruleset.client.aging_buckets]), run_id)
        problems.add(custom.read(executor, ruleset, as_of, {"aging": outputs["aging"]}))
        stage_outputs()
    staged.close_parts()


def _dunning(ruleset: RuleSet, executor: DuckDBExecutor, as_of: dt.date, run_id: str,
             counts: dict, outputs: dict[str, pa.Table], entries: list[pa.Table]
             ) -> list[Problem]:
    ladder = dunning_rules(ruleset)
    if ladder is None:
        return []
    dunned = dunning.run(executor, ruleset, ladder, as_of)
    outputs["dunning_notices"] = with_run_id(dunned.notices, tables.OUTPUTS["dunning_notices"],
                                             run_id)
    entries.append(dunned.entries)
    dunning.post(executor, as_of)
    notices = set(dunned.notices.column("notice_id").to_pylist())
    counts.update(dunning_notices=len(notices), items_dunned=dunned.notices.num_rows)
    logger.info(f"dunning: {len(notices)} notices over {dunned.notices.num_rows} items")
    return dunned.problems


def _credit(ruleset: RuleSet, executor: DuckDBExecutor, as_of: dt.date, run_id: str,
            counts: dict, outputs: dict[str, pa.Table], problems: ExceptionsBuilder) -> None:
    policy = credit_rules(ruleset)
    if policy is None:
        return
    decided = credit.run(executor, ruleset, policy, as_of,
                         dunning.hold_levels(dunning_rules(ruleset)))
    outputs["credit_decisions"] = with_run_id(decided.decisions,
                                              tables.OUTPUTS["credit_decisions"], run_id)
    kinds = decided.decisions.column("decision").to_pylist()
    counts.update(credit_holds=kinds.count("hold"), credit_warnings=kinds.count("warn"))
    logger.info(f"credit: {counts['credit_holds']} on hold, {counts['credit_warnings']} warned "
                f"of {len(kinds)} customers")
    problems.add(decided.problems)
    problems.later("credit", decided.held)


STREAM_ROWS = 100_000


def _streamed(executor: DuckDBExecutor, query: exp.Expression | str,
              schema: pa.Schema | None = None, run_id: str = "") -> Iterator[pa.Table]:
    """The rows of `query` in pieces of STREAM_ROWS, read when the stage's outputs are
    written (in the output `schema` with the run id, when given): big outputs are never
    held whole. The pieces are cut by count alone, so the files' bytes do not depend on
    how DuckDB's threads delivered the rows."""
    def piece(rows: pa.Table) -> pa.Table:
        return rows if schema is None else with_run_id(rows, schema, run_id)

    reader = executor.stream(query, STREAM_ROWS)
    pending: list[pa.RecordBatch] = []
    count, given = 0, False
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        while count >= STREAM_ROWS:
            rows = pa.Table.from_batches(pending, reader.schema)
            yield piece(rows.slice(0, STREAM_ROWS))
            given = True
            pending, count = rows.slice(STREAM_ROWS).to_batches(), count - STREAM_ROWS
    if count or not given:  # the rest; an empty result still gives its (empty) table
        yield piece(pa.Table.from_batches(pending, reader.schema))


@contextmanager
def _stage(name: str, ruleset: RuleSet, as_of: dt.date,
           executor: DuckDBExecutor) -> Iterator[None]:
    """A stage: its name on every log line, and on the terminal's status line; its time
    and the memory held after it in the debug log (`--debug`)."""
    started = time.perf_counter()
    with logger.contextualize(stage=name), progress.step(
            f"{ruleset.client.id} {as_of}: {name}"):
        yield
        logger.opt(lazy=True).debug("{} took {:.2f}s; {}", lambda: name,
                                    lambda: time.perf_counter() - started, executor.memory)
    safety.failpoint(f"stage:{name}")


def _nothing_to_do(ruleset: RuleSet, rows: int, code: str, what: str, file: str) -> None:
    """A client without the rule file of a stage: a drop with rows for it is refused."""
    if rows:
        raise DropRefused([Diagnostic(
            code, f"the drop has {rows} {what} but {ruleset.root} has no {file}",
            hint=f"add a {file} to the client")])


def _invoicing(ruleset: RuleSet, drop: Drop, executor: DuckDBExecutor, as_of: dt.date,
               run_id: str, counts: dict, outputs: dict[str, pa.Table],
               entries: list[pa.Table]) -> list[Problem]:
    table = tax_table(ruleset)
    if table is None:
        _nothing_to_do(ruleset, drop.tables.count("transactions"), "E320", "billable lines",
                       "tax.yaml")
        return []
    invoiced = invoicing.run(executor, ruleset, table, as_of)
    outputs["invoices"] = with_run_id(invoiced.invoices, tables.OUTPUTS["invoices"], run_id)
    lines_schema = tables.OUTPUTS["invoice_lines"]
    if ruleset.custom_rules("invoice_lines"):  # the rules read them whole
        outputs["invoice_lines"] = with_run_id(executor.fetch(invoicing.LINES), lines_schema,
                                               run_id)
    else:  # a line per billable line: streamed to its file when the stage ends
        outputs["invoice_lines"] = _streamed(executor, invoicing.LINES, lines_schema, run_id)
    entries.append(_streamed(executor, bind_as_of(journal.invoice_entries(ruleset), as_of)))
    problems = invoicing.held_problems(invoiced.held, table)
    problems += invoicing.future_problems(executor, as_of)
    invoicing.post(executor, invoiced, invoiced.sequences, as_of, run_id)
    kinds = invoiced.invoices.column("document_type").to_pylist()
    counts.update(invoices=kinds.count("invoice"), credit_notes=kinds.count("credit_note"),
                  lines_invoiced=invoiced.line_count, lines_held=invoiced.held.num_rows)
    logger.info(f"{counts['invoices']} invoices, {counts['credit_notes']} credit notes "
                f"from {counts['lines_invoiced']} lines; {counts['lines_held']} held back")
    return problems


def _matching(ruleset: RuleSet, drop: Drop, executor: DuckDBExecutor, as_of: dt.date,
              run_id: str, counts: dict, outputs: dict[str, pa.Table],
              entries: list[pa.Table], problems: ExceptionsBuilder) -> None:
    payments = drop.tables.count("payments")
    matching = matching_rules(ruleset)
    if matching is None:
        _nothing_to_do(ruleset, payments, "E322", "payments", "matching.yaml")
        return
    applied = cash.run(executor, ruleset, matching, as_of)
    outputs["cash_applications"] = with_run_id(
        applied.applications, tables.OUTPUTS["cash_applications"], run_id)
    rule_problems = custom.read(executor, ruleset, as_of, {
        "cash_applications": outputs["cash_applications"]}, related={
        "payments": drop.tables.arrow("payments")} if ruleset.custom_rules(
            "cash_applications") else None)
    entries.append(executor.fetch(bind_as_of(journal.cash_entries(ruleset), as_of)))
    cash.post(executor, as_of, run_id)
    to_items = applied.applications.filter(pc.fill_null(pc.not_equal(
        applied.applications.column("invoice_id"), ""), False))
    applied_by_currency: dict[str, Decimal] = {
        r["currency"]: r["applied_amount_sum"] for r in to_items.group_by("currency").aggregate(
            [("applied_amount", "sum")]).to_pylist()}
    counts.update(payments=payments, cash_applied={  # exact: on the minor unit
        c: str(quantize(v, c, "half_up")) for c, v in sorted(applied_by_currency.items())},
        payments_unmatched=applied.unmatched)
    logger.info(f"{counts['payments']} payments; {counts['payments_unmatched']} matched no "
                "strategy")
    problems.add(applied.problems + rule_problems)
    for make in applied.later:
        problems.later("matching", make)


def _ingest(options: RunOptions, ruleset: RuleSet, as_of: dt.date, executor: DuckDBExecutor,
            store: StateStore, files: list[DropFile]) -> Drop:
    with _stage("ingest", ruleset, as_of, executor):
        first_night = not store.has_runs()
        if first_night and not any(f.table == "customers" for f in files):
            raise DropRefused([Diagnostic(
                "E305", f"{options.drop_dir} is the client's first night and has no customers",
                hint="the first drop of a client sends its customers in full")])
        drop = ingest(options.drop_dir, ruleset, executor, as_of, files)
        check_references(drop, executor, first_night=first_night)
        for f in drop.files:
            if f.problem:
                logger.warning(f"{f.path.name}: {f.problem}; {rows(f.rows)} rejected")
            else:
                logger.info(f"{f.path.name}: {f.rows} rows, {f.rejected} rejected")
        return drop


def _already_run(store: StateStore, as_of: dt.date, rules_digest: str, inputs_digest: str,
                 target: Path) -> RunResult | None:
    """The same night again: unchanged (exit 0). A changed one: refused (exit 3)."""
    previous = store.run_for(as_of)
    if previous is None:
        latest = store.latest_as_of()
        if latest is not None and as_of < latest:
            raise DropRefused([Diagnostic(
                "E312", f"{as_of} is before {latest}, the client's latest night",
                hint="nights are run in date order: numbers, dunning and aging build on "
                     "the night before")])
        return None
    if (previous.rules_digest, previous.inputs_digest) == (rules_digest, inputs_digest):
        logger.info(f"{as_of} was already run as {previous.run_id} with these files and rules; "
                    "nothing to do")
        folder = Path(previous.counts.get("folder", target))
        counts = {k: v for k, v in previous.counts.items() if k != "folder"}
        return RunResult("unchanged", store.client_id, as_of, previous.run_id, folder, counts)
    what = [name for name, a, b in (("the drop files", previous.inputs_digest, inputs_digest),
                                    ("the rules", previous.rules_digest, rules_digest)) if a != b]
    raise DropRefused([Diagnostic(
        "E310", f"{as_of} was already run as {previous.run_id}, and {' and '.join(what)} "
                "differ now", hint="a night already posted is not run again with other files")])


def _run_id(client: str, as_of: dt.date, inputs: str, rules: str, state: str) -> str:
    text = f"{client}\0{as_of.isoformat()}\0{inputs}\0{rules}\0{state}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _manifest(ruleset: RuleSet, as_of: dt.date, run_id: str, drop: Drop, started: str,
              status: str, counts: dict) -> dict:
    accepted = {t: drop.tables.count(t) for t in sorted(drop.tables)}
    return {
        "run_id": run_id,
        "client": ruleset.client.id,
        "as_of": as_of.isoformat(),
        "engine_version": __version__,
        "status": status,
        "started_at": started,
        "finished_at": None,
        "rules": {"digest": ruleset.digest,
                  "files": {n: d for n, d in sorted(ruleset.file_digests().items())}},
        "inputs": [{"file": f.path.name, "table": f.table, "sha256": f.sha256, "rows": f.rows,
                    "rejected": f.rejected} for f in drop.files],
        "outputs": {},
        "counts": {"rows_in": drop.total_rows, "rejected": drop.rejected_rows,
                   "accepted": accepted, **counts},
    }


def _publish(intent: Path) -> None:
    """Committed outputs into place. Should a rename fail, the next run of the client
    finishes it (`safety.recover`): the night is posted either way."""
    try:
        safety.finish(intent)
    except OSError as exc:
        logger.error(f"the night is posted, but its outputs could not be put in place ({exc}); "
                     "the next run of this client puts them in place")


def _intent(options: RunOptions) -> Path:
    return options.intent or safety.intent_path(options.state_path)


def _write_refused(options: RunOptions, ruleset: RuleSet, as_of: dt.date, run_id: str,
                   drop: Drop, started: str) -> None:
    """A refused drop: its rejects and a manifest go to OUT/<client>/<as-of>.refused/."""
    target = options.out_root / ruleset.client.id / f"{as_of.isoformat()}.refused"
    staging = staging_folder(target, run_id)
    manifest = _manifest(ruleset, as_of, run_id, drop, started, "refused", {})
    staged = Staged(staging, options.fmt)
    try:
        staged.put("rejects", with_run_id(drop.reject_table(), tables.OUTPUTS["rejects"], run_id))
        manifest["finished_at"] = _now()
        staged.finish(manifest)
    except BaseException:
        staged.discard()
        raise
    safety.publish(staging, target, target.parent / f".{target.name}.old-{run_id}")
    logger.error(f"drop refused; rejects in {target}")
