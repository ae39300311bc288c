"""A drop folder to DuckDB tables with the canonical schemas, plus rejects.

Per table: find the file (the client's mapping or `<table>.csv|.parquet|.jsonl`),
read every value as text, rename, then type and check every value in one SQL
pass; compute the client's computed columns; a row with any bad value goes to
`rejects` with file, 1-based row, column, value and reason (all its problems in
the reason), and a good row is never dropped because a neighbour is bad.

The accepted rows of each table are a DuckDB table `drop_<table>`, made for every input
table (empty when the drop has no file of it): the stages read them there, and DuckDB
keeps them under --memory-limit, spilling past it, where Arrow tables would sit outside.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from loguru import logger

from engine import tables
from engine.checks import Optimizers, ScanFailed, accepted_schema, reject_split
from engine.config.client import InputMapping
from engine.config.ruleset import RuleSet
from engine.errors import Diagnostic, DropRefused, RuleError, did_you_mean
from engine.exceptions import Problem
from engine.executor import Executor
from engine.output import sha256_of
from engine.readers import ROW, RawTable, read_file

DEFAULT_EXTENSIONS = (".csv", ".parquet", ".jsonl", ".json", ".ndjson")


@dataclass
class InputFile:
    table: str
    path: Path
    sha256: str
    rows: int = 0
    rejected: int = 0
    problem: str | None = None  # a problem of the whole file: every row was rejected for it


class Accepted(Mapping[str, pa.Table]):
    """The accepted rows of the tables the drop has files of, kept in DuckDB as
    `drop_<table>` (canonical columns plus __file, __row, in file and row order); reading
    one here fetches it as Arrow. They are tables of the (in-memory) database, not
    temporary ones of a connection: each table's files are checked on a connection of
    their own."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.names: list[str] = []
        for table in tables.INPUTS:  # every stage can read every table, if only empty
            executor.register("accepted_empty", accepted_schema(table).empty_table())
            executor.execute(f"CREATE OR REPLACE TABLE {relation(table)} AS "
                             "SELECT * FROM accepted_empty")
        executor.unregister("accepted_empty")

    def __getitem__(self, table: str) -> pa.Table:
        if table not in self.names:
            raise KeyError(table)
        return self.arrow(table)

    def arrow(self, table: str) -> pa.Table:
        """The accepted rows of `table` as Arrow (empty without a file)."""
        return self.executor.fetch(f"SELECT * FROM {relation(table)}")

    def __contains__(self, table: object) -> bool:  # not Mapping's: that reads the rows
        return table in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def count(self, table: str) -> int:
        """How many rows of `table` are accepted (0 without a file)."""
        return self.executor.query(f"SELECT count(*) FROM {relation(table)}")[0][0]


def relation(table: str) -> str:
    """The DuckDB table of an input table's accepted rows."""
    return f"drop_{table}"


@dataclass
class Drop:
    """Accepted rows per table (in DuckDB, see `Accepted`) and the rejects."""

    folder: Path
    tables: Accepted
    rejects: list[pa.Table] = field(default_factory=list)
    files: list[InputFile] = field(default_factory=list)
    present: dict[str, set[str]] = field(default_factory=dict)  # canonical columns given
    problems: list[Problem] = field(default_factory=list)  # warnings about whole files

    def add(self, part: Drop) -> None:
        """What `part` read (the files of tables this one has not read) added."""
        self.files += part.files
        self.rejects += part.rejects
        self.problems += part.problems
        for table, columns in part.present.items():
            self.present.setdefault(table, set()).update(columns)

    def file(self, name: str) -> InputFile:
        return next(f for f in self.files if f.path.name == name)

    def reject_table(self) -> pa.Table:
        schema = _reject_schema()
        parts = [t.select(schema.names).cast(schema) for t in self.rejects if t.num_rows]
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts).sort_by([("source_file", "ascending"),
                                                ("row_number", "ascending")])

    @property
    def total_rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rejected_rows(self) -> int:
        return sum(f.rejected for f in self.files)


def _reject_schema() -> pa.Schema:
    schema = tables.OUTPUTS["rejects"]
    return pa.schema([schema.field(n) for n in schema.names if n != "run_id"])


def find_files(folder: Path, table: str, mapping: InputMapping | None) -> list[Path]:
    """The drop files of `table`, by the client's mapping or by the default names."""
    if mapping and mapping.file:
        return sorted(p for p in folder.glob(mapping.file) if p.is_file())
    found = [folder / f"{table}{ext}" for ext in DEFAULT_EXTENSIONS]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DropRefused([Diagnostic("E301", f"{table} is given twice in {folder}: {names}",
                                      hint="keep one file per table")])
    return found


@dataclass(frozen=True)
class DropFile:
    """A file of the drop, the table it holds, and its sha256 (read once per run)."""

    table: str
    path: Path
    sha256: str


def inputs_digest(files: list[DropFile]) -> str:
    """sha256 over every drop file's table, name and content digest, in table order."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.table}\0{f.path.name}\0{f.sha256}\n".encode())
    return h.hexdigest()


def drop_files(folder: Path, ruleset: RuleSet) -> list[DropFile]:
    """Every file of the drop that a run reads, in table order, with its sha256.

    A file that no table claims refuses the drop: a misnamed payments file must not
    pass for a night without payments. Hidden files and names starting with `_`
    (`_SUCCESS`, `.DS_Store`) are not data and are passed over.
    """
    if not folder.is_dir():
        raise RuleError([Diagnostic("E300", f"the drop folder {folder} does not exist",
                                    hint="pass --drop the folder of one night")])
    found = [(table, path) for table in tables.INPUTS
             for path in find_files(folder, table, ruleset.client.inputs.get(table))]
    claimed = {path for _table, path in found}
    strays = sorted(p for p in folder.iterdir() if p.is_file() and p not in claimed
                    and not p.name.startswith((".", "_")))
    if strays:  # refused before any file is hashed
        names = [f"{t}{ext}" for t in tables.INPUTS for ext in (".csv", ".parquet", ".jsonl")]
        names += [m.file for m in ruleset.client.inputs.values() if m.file]
        raise DropRefused([Diagnostic(
            "E304", f"{p.name} in {folder} is not a table the client reads",
            hint=did_you_mean(p.name, names) or "tables: " + ", ".join(tables.INPUTS)
            + "; map other names under inputs: in client.yaml") for p in strays])
    return [DropFile(table, path, sha256_of(path)) for table, path in found]


INGEST_THREADS = 2  # tables checked at once


def ingest(folder: Path, ruleset: RuleSet, executor: Executor,
           as_of: dt.date | None = None, files: list[DropFile] | None = None) -> Drop:
    """Read every table of the drop; see the module docstring. `files` are the drop's
    files when the caller has found them already.

    Tables are checked INGEST_THREADS at once, each on a thread and a DuckDB connection
    of its own, its files one after another: DuckDB reads a Parquet row group on one
    thread, and most files are one row group (a 200,000-row customers file, 500,000
    payments). What each read is put together in table order, as if read in turn."""
    drop = Drop(folder, Accepted(executor))
    by_table: dict[str, list[DropFile]] = {}
    for f in files if files is not None else drop_files(folder, ruleset):
        by_table.setdefault(f.table, []).append(f)
    optimizers = Optimizers()
    cursors = [executor.cursor() for _ in by_table]
    try:
        with ThreadPoolExecutor(INGEST_THREADS, thread_name_prefix="ingest") as pool:
            parts = [pool.submit(copy_context().run, _ingest_table, table_files, ruleset,
                                 cursor, drop, as_of, optimizers)
                     for table_files, cursor in zip(by_table.values(), cursors, strict=True)]
            try:
                done, _ = wait(parts, return_when=FIRST_EXCEPTION)
            except BaseException:  # Ctrl-C
                _stop(parts, cursors)
                raise
            if any(part.exception() is not None for part in done):
                _stop(parts, cursors)  # a table refused the drop: the others stop now
                raise _first_failure(parts)
            for part in parts:
                drop.add(part.result())
    finally:
        optimizers.reset(executor)
        for cursor in cursors:
            cursor.close()
    drop.tables.names = list(dict.fromkeys(f.table for f in drop.files))
    return drop


def _stop(parts: list[Future], cursors: list[Executor]) -> None:
    """Tables not started are not; the statements running on `cursors` are interrupted
    until every part has ended (a part between two statements would start the next one
    past an interrupt given once)."""
    for part in parts:
        part.cancel()
    while not all(part.done() for part in parts):
        for cursor in cursors:
            cursor.interrupt()
        wait(parts, timeout=0.05)


def _first_failure(parts: list[Future]) -> BaseException:
    """The failure of the first table, in table order, that failed of itself: what
    reading the tables in turn would have raised (a table stopped for it did not). When
    every failure is an interruption (one came from outside), the first of them."""
    failures = [e for e in (part.exception() for part in parts if not part.cancelled())
                if e is not None]
    return next((e for e in failures if not isinstance(e, duckdb.InterruptException)),
                failures[0])


def _ingest_table(files: list[DropFile], ruleset: RuleSet, cursor: Executor, drop: Drop,
                  as_of: dt.date | None, optimizers: Optimizers) -> Drop:
    """The files of one table, read on a connection of their own (`cursor`) into a part
    of `drop`."""
    part = Drop(drop.folder, drop.tables)
    for f in files:
        _ingest_file(f, ruleset.client.inputs.get(f.table), ruleset, cursor, part, as_of,
                     optimizers)
    return part


def _ingest_file(file: DropFile, mapping: InputMapping | None, ruleset: RuleSet,
                 executor: Executor, drop: Drop, as_of: dt.date | None,
                 optimizers: Optimizers) -> None:
    table, path = file.table, file.path
    info = InputFile(table, path, file.sha256)
    drop.files.append(info)
    fmt, delimiter = (mapping.format, mapping.delimiter) if mapping else (None, ",")
    given = read_file(path, fmt, delimiter)
    raw, problem, missing = _examined(given, table, mapping)
    split = _scanned_split(raw, problem, table, mapping, ruleset, executor, as_of, optimizers)
    if raw.scan is not None and split is None:  # read the careful way, like any other file
        given = read_file(path, fmt, delimiter, scan=False)
        raw, problem, missing = _examined(given, table, mapping)
    drop.problems += _column_problems(given, table, mapping)
    accepted, rejected = split or ((0, None) if problem else reject_split(
        raw.table, table, mapping, ruleset, executor, path.name, relation(table), optimizers,
        as_of))
    broken = _broken_rejects(raw, path, problem, ", ".join(missing) or None)
    drop.rejects += [t for t in (broken, rejected) if t is not None]
    drop.present.setdefault(table, set()).update(
        (set(raw.table.column_names) | _computed_columns(mapping))
        & set(tables.INPUTS[table].names))
    info.rows = raw.rows
    info.rejected = info.rows - accepted
    info.problem = problem
    if raw.rows == 0:
        drop.problems.append(Problem("warning", "EMPTY_FILE", "ingest", "file", path.name,
                                     f"{path.name} has no data rows"
                                     + (f" ({raw.problem})" if raw.problem else "")))


def _examined(given: RawTable, table: str, mapping: InputMapping | None,
              ) -> tuple[RawTable, str | None, list[str]]:
    """The file under the client's names; the problem its whole file is refused for, if
    any; the required columns it lacks."""
    raw = _renamed(given, mapping)
    missing = _missing_required(raw, table, mapping)
    problem = raw.problem or _float_money(raw, table) or (
        f"missing required column {', '.join(missing)}{_delimiter_hint(raw)}" if missing
        else None)
    return raw, problem, missing


def _computed_columns(mapping: InputMapping | None) -> set[str]:
    return {c.column for c in mapping.computed} if mapping else set()


def _scanned_split(raw: RawTable, problem: str | None, table: str,
                   mapping: InputMapping | None, ruleset: RuleSet, executor: Executor,
                   as_of: dt.date | None, optimizers: Optimizers) -> tuple[int, pa.Table] | None:
    """`reject_split` of a Parquet file DuckDB reads itself (`Scan`), or None: it is not
    such a file; the whole file is refused (`problem`); a column nothing reads would go
    unread (its text never checked); or DuckDB cannot read it (text that is not UTF-8, a
    damaged page). Then it is read the careful way, which rejects bad rows one by one, or
    every row with the reason, as it always did."""
    if raw.scan is None or problem:
        return None
    computed = _computed_columns(mapping)
    if any(n not in tables.INPUTS[table].names or n in computed
           for n in raw.table.column_names if n != ROW):
        return None
    try:
        return reject_split(raw.table, table, mapping, ruleset, executor, raw.path.name,
                            relation(table), optimizers, as_of, scan=raw.scan_sql())
    except ScanFailed as failed:
        if isinstance(failed.__cause__, duckdb.OutOfMemoryException | duckdb.InterruptException):
            raise failed.__cause__ from None
        logger.debug(f"{raw.path.name}: DuckDB could not read it ({failed.__cause__}); "
                     "reading it the careful way")
        return None


def _column_problems(raw: RawTable, table: str, mapping: InputMapping | None) -> list[Problem]:
    """Warnings for columns nothing reads and renames whose column is not there."""
    header = [c for c in raw.table.column_names if c != ROW]
    renames = dict(mapping.rename) if mapping else {}
    canonical = tables.INPUTS[table].names
    out = []
    for source, target in renames.items():
        if source not in header and header:
            out.append(Problem(
                "warning", "RENAME_NOT_FOUND", "ingest", "file", raw.path.name,
                f"client.yaml renames {source} to {target}, but {raw.path.name} has no column "
                f"{source}" + _hint(source, header), rule_id=f"inputs.{table}.rename",
                rule_ref=mapping.ref.rule_ref))
    for column in header:
        if column not in renames and column not in canonical:
            out.append(Problem(
                "warning", "UNKNOWN_COLUMN", "ingest", "file", raw.path.name,
                f"{raw.path.name} has a column {column}, which is not a column of {table}; it "
                "is not read" + _hint(column, canonical)))
    return out


def _hint(name: str, choices) -> str:
    hint = did_you_mean(name, choices)
    return f" ({hint})" if hint else ""


def _delimiter_hint(raw: RawTable) -> str:
    header = [c for c in raw.table.column_names if c != ROW]
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        sep = next(sep for sep in ";\t|" if sep in header[0])
        return f" (the header is one column: is the delimiter {sep!r}? set it under inputs:)"
    return ""


def _float_money(raw: RawTable, table: str) -> str | None:
    """A Parquet money or quantity column stored as binary float: refused, not guessed."""
    schema = tables.INPUTS[table]
    for name, typ in raw.types.items():
        if name in schema.names and pa.types.is_decimal(schema.field(name).type) \
                and pa.types.is_floating(typ):
            return (f"column {name} is binary floating point ({typ}); amounts must be decimal "
                    "or text")
    return None


def _renamed(raw: RawTable, mapping: InputMapping | None) -> RawTable:
    if not mapping or not mapping.rename:
        return raw
    renames = dict(mapping.rename)
    names = [renames.get(n, n) for n in raw.table.column_names]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raw.problem = raw.problem or f"after renaming, column {dup!r} appears twice"
    types = {renames.get(n, n): t for n, t in raw.types.items()}
    return RawTable(raw.path, raw.table.rename_columns(names), raw.broken, raw.problem, types,
                    raw.scan)


def _missing_required(raw: RawTable, table: str, mapping: InputMapping | None) -> list[str]:
    if raw.problem:
        return []
    present = set(raw.table.column_names)
    computed = _computed_columns(mapping)
    required = tables.required_columns(tables.INPUTS[table])
    return [c for c in required if c not in present and c not in computed]


def _broken_rejects(raw: RawTable, path: Path, problem: str | None,
                    column: str | None) -> pa.Table | None:
    rows = [(b.row_number, b.value, b.reason, None) for b in raw.broken]
    if problem:  # the whole file is refused: every row is rejected for it
        rows += [(n, None, problem, column) for n in raw.table.column(ROW).to_pylist()]
    if not rows:
        return None
    numbers, values, reasons, columns = zip(*sorted(rows, key=lambda r: r[0]), strict=True)
    return pa.table({
        "source_file": pa.array([path.name] * len(rows), pa.string()),
        "row_number": pa.array(numbers, pa.int64()),
        "column": pa.array(columns, pa.string()),
        "value": pa.array(values, pa.string()),
        "reason": pa.array(reasons, pa.string()),
    })


def rows(n: int) -> str:
    """'1 row', '2 rows'."""
    return f"{n} row" if n == 1 else f"{n} rows"


def check_reject_ratio(drop: Drop, ratio: float | object) -> None:
    """Refuse the whole drop when too many of its rows were rejected."""
    total, rejected = drop.total_rows, drop.rejected_rows
    if total and rejected / total > float(ratio):  # money-safe: a ratio of row counts
        worst = max(drop.files, key=lambda f: f.rejected)
        whole = [Diagnostic("E303", f"{f.path}: {f.problem}; {rows(f.rows)} rejected")
                 for f in drop.files if f.problem]
        raise DropRefused([*whole, Diagnostic(
            "E302", f"{rejected} of {total} rows rejected ({rejected / total:.1%}), above the "
                    f"client's max_reject_ratio of {float(ratio):.1%}",
            hint=f"most rejects are in {worst.path.name} ({rows(worst.rejected)}); "
                 "see rejects in the .refused output folder")])
