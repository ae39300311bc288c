"""Drop files to raw Arrow tables, with exact 1-based row numbers.

Every reader returns a `RawTable`: every column as text (typing is the
validator's job, so one bad value rejects one row, not the file), a `__row`
column, and the rows that could not even be split into columns. A Parquet column
of a type SQL holds exactly (decimal, date, integer, boolean) stays typed: the
checks read it as it is, and show its text only for a rejected row. A Parquet file of
such columns and text only may be left for DuckDB to read in the check itself (`Scan`):
its RawTable then has the schema and no rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from engine.errors import Diagnostic, DropRefused

ROW = "__row"


@dataclass
class Broken:
    """A row that could not be read into columns."""

    row_number: int
    value: str
    reason: str


@dataclass(frozen=True)
class Scan:
    """A Parquet file DuckDB reads itself, in the check that types it: every column is
    text or of an `exact` type, which DuckDB reads as the checks want them. Its rows are
    streamed from the file, never held whole in Arrow beside DuckDB."""

    columns: tuple[str, ...]  # the file's own column names, in order
    rows: int


@dataclass
class RawTable:
    path: Path
    table: pa.Table  # columns as named in the file (text or exact types), plus __row;
    #                  of a scanned file its schema only (no rows)
    broken: list[Broken] = field(default_factory=list)
    problem: str | None = None  # a whole-file problem (every row is rejected for it)
    types: dict[str, pa.DataType] = field(default_factory=dict)  # a typed file's own types
    scan: Scan | None = None  # set: the rows are read by DuckDB from the file (`scan_sql`)

    @property
    def rows(self) -> int:
        if self.scan is not None:
            return self.scan.rows
        return self.table.num_rows + len(self.broken)

    def scan_sql(self) -> str:
        """The query reading a scanned file: its columns under the table's (renamed) names,
        and __row, numbered from 1. Folder names such as `currency=USD` in its path are
        not columns (no hive partitioning)."""
        assert self.scan is not None
        names = [n for n in self.table.column_names if n != ROW]
        columns = ", ".join(f"{_ident(c)} AS {_ident(n)}"
                            for c, n in zip(self.scan.columns, names, strict=True))
        path = str(self.path).replace("'", "''")
        return (f"SELECT {columns}, file_row_number + 1 AS {_ident(ROW)} FROM read_parquet("
                f"'{path}', file_row_number = true, hive_partitioning = false)")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text_table(columns: list[str], values: list[list[str | None]], numbers: list[int]) -> pa.Table:
    arrays = [pa.array(v, pa.string()) for v in values]
    return pa.table([*arrays, pa.array(numbers, pa.int64())], names=[*columns, ROW])


def _header_problem(header: list[str]) -> str | None:
    if any(_has_bad_bytes(name) for name in header):
        return "the header has bytes that are not UTF-8 text"
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return f"the header names column {name!r} twice"
        seen.add(name)
    if any(not name for name in header):
        return "the header has an empty column name"
    return None


def read_csv(path: Path, delimiter: str = ",") -> RawTable:
    """A CSV file with a header row; pyarrow when the file is clean, else row by row."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    header = _csv_header(raw, delimiter)
    if header is None:
        return RawTable(path, _text_table([], [], []), problem="the file is empty (no header row)")
    problem = header if isinstance(header, str) else _header_problem(header)
    if problem:
        return _all_broken(path, raw, delimiter, problem)
    try:
        raw.decode("utf-8")  # pyarrow would decode a bad row before its handler sees it
        table = _read_csv_fast(raw, header, delimiter)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return _read_csv_rows(path, raw, header, delimiter)
    if table.num_rows != _data_lines(raw):  # a value over several lines: read with care
        return _read_csv_rows(path, raw, header, delimiter)
    return RawTable(path, table)


def _data_lines(raw: bytes) -> int:
    """Non-blank physical lines after the header."""
    return sum(1 for line in raw.splitlines() if line.strip()) - 1


def _csv_header(raw: bytes, delimiter: str) -> list[str] | str | None:
    """The header's names; the reason it cannot be read (text); None for no header."""
    lines = _physical_lines(raw.decode("utf-8", errors="surrogateescape"))
    for at, line in enumerate(lines):
        if line.strip("\r\n"):
            row, _, error = _one_record(lines, at, delimiter)
            return f"the header is not valid CSV: {error}" if error else [
                name.strip() for name in row]
    return None


def _read_csv_fast(raw: bytes, header: list[str], delimiter: str) -> pa.Table:
    def refuse(_row: object) -> str:
        return "error"  # any irregular row: read the file the careful way instead

    table = pacsv.read_csv(
        io.BytesIO(raw),
        read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=True),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                         invalid_row_handler=refuse),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    numbers = pa.array(range(1, table.num_rows + 1), pa.int64())
    return table.append_column(ROW, numbers)


_LINE = re.compile(r".*?(?:\r\n|\r|\n|$)", re.S)
MAX_RECORD_LINES = 200  # a quoted value longer than this is taken for an unclosed quote
MAX_BAD_RECORD_LINES = 10  # a broken record over more lines is rejected line by line


def _physical_lines(text: str) -> list[str]:
    return [m.group(0) for m in _LINE.finditer(text) if m.group(0)]


def _one_record(lines: list[str], at: int, delimiter: str) -> tuple[list[str] | None, int, str]:
    """The record starting at line `at`: (fields, lines it spans, error or '')."""
    reader = csv.reader(iter(lines[at:at + MAX_RECORD_LINES]), delimiter=delimiter, strict=True)
    try:
        return next(reader), max(1, reader.line_num), ""
    except csv.Error as exc:
        return None, max(1, reader.line_num), str(exc)


def _read_csv_rows(path: Path, raw: bytes, header: list[str], delimiter: str) -> RawTable:
    """The careful path: one record at a time, bad rows kept as `Broken` with their number.

    A record that cannot be read (an unclosed or stray quote) is rejected as its
    first line alone, and reading goes on at the next line, so one stray quote
    never swallows the rows after it.
    """
    lines = _physical_lines(raw.decode("utf-8", errors="surrogateescape"))
    values: list[list[str | None]] = [[] for _ in header]
    numbers: list[int] = []
    broken: list[Broken] = []
    at = next(i for i, line in enumerate(lines) if line.strip("\r\n")) + 1  # past the header
    number = 0
    while at < len(lines):
        if not lines[at].strip("\r\n"):
            at += 1
            continue
        row, used, error = _one_record(lines, at, delimiter)
        number += 1
        if error:
            # A quote never closed runs to the end: only its first line is the bad
            # record. An error at a definite place ends a short record: keep it whole.
            span = 1 if "end of data" in error or used > MAX_BAD_RECORD_LINES else used
            text = "".join(lines[at:at + span]).rstrip("\r\n")
            broken.append(Broken(number, _printable(text), f"not valid CSV: {error}"))
            at += span
            continue
        at += used
        line = delimiter.join(row)
        if _has_bad_bytes(line):
            broken.append(Broken(number, _printable(line), "not valid UTF-8 text"))
        elif len(row) != len(header):
            broken.append(Broken(number, line, f"expected {len(header)} fields, "
                                               f"found {len(row)}"))
        else:
            numbers.append(number)
            for column, value in zip(values, row, strict=True):
                column.append(value)
    return RawTable(path, _text_table(header, values, numbers), broken)


def _all_broken(path: Path, raw: bytes, delimiter: str, problem: str) -> RawTable:
    """Every data line rejected for a file-wide `problem` (a header that cannot be used)."""
    lines = [line.rstrip("\r\n") for line in
             _physical_lines(raw.decode("utf-8", errors="surrogateescape"))]
    rows = [line for line in lines if line.strip()][1:]
    broken = [Broken(i, _printable(line), problem) for i, line in enumerate(rows, 1)]
    return RawTable(path, _text_table([], [], []), broken, problem)



def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _printable(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def read_jsonl(path: Path) -> RawTable:
    """JSON Lines: one object a line; numbers are kept as their exact text."""
    columns: dict[str, list[str | None]] = {}
    numbers: list[int] = []
    broken: list[Broken] = []
    number = 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        number += 1
        record = _json_record(line)
        if isinstance(record, str):
            broken.append(Broken(number, _printable(line.decode("utf-8", "surrogateescape")),
                                 record))
            continue
        for name in record.keys() - columns.keys():
            columns[name] = [None] * len(numbers)
        for name, column in columns.items():
            column.append(_json_text(record.get(name)))
        numbers.append(number)
    names = list(columns)
    return RawTable(path, _text_table(names, [columns[n] for n in names], numbers), broken)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _v in pairs]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:
        raise _DuplicateKey(twice)
    return dict(pairs)


class _DuplicateKey(Exception):
    pass


def _json_record(line: bytes) -> dict | str:
    try:
        record = json.loads(line.decode("utf-8-sig"), parse_float=Decimal,
                            object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        return f"the key {exc.args[0]!r} is given twice"
    except UnicodeDecodeError:
        return "not valid UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at character {exc.pos + 1}"
    if not isinstance(record, dict):
        return "a JSON Lines record must be an object"
    nested = next((k for k, v in record.items() if isinstance(v, dict | list)), None)
    if nested is not None:
        return f"{nested} holds a list or object; values must be plain"
    return record


def _json_text(value: object) -> str | None:
    """A plain JSON value as text (records with lists or objects are rejected before)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_parquet(path: Path, scan: bool = True) -> RawTable:
    """Parquet: decimals, dates, integers and booleans as they are; other typed columns
    as their exact text (a timestamp at midnight as its date). With `scan`, a file of
    text and exact columns only is left to DuckDB to read (`Scan`); others are read
    into Arrow here."""
    if path.stat().st_size == 0:
        return RawTable(path, _text_table([], [], []), problem="the file is empty (no rows)")
    return (scan and _scanned(path)) or _read_parquet_whole(path)


_SCAN_RESERVED = {ROW, "file_row_number"}  # names DuckDB's scan gives its own columns


def _scanned(path: Path) -> RawTable | None:
    """The file as a `Scan`, when DuckDB can read every column of it as it is."""
    try:
        with pq.ParquetFile(path) as f:
            schema, rows = f.schema_arrow, f.metadata.num_rows
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        return None  # the careful read says why
    names = schema.names
    if _header_problem(names) or _SCAN_RESERVED & {n.lower() for n in names} or not all(
            exact(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            for t in schema.types):
        return None
    fields = [pa.field(f.name, f.type if exact(f.type) else pa.string()) for f in schema]
    empty = pa.schema([*fields, pa.field(ROW, pa.int64())]).empty_table()
    return RawTable(path, empty, types={f.name: f.type for f in schema},
                    scan=Scan(tuple(names), rows))


def _read_parquet_whole(path: Path) -> RawTable:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        return _unreadable_parquet(path, f"not a readable Parquet file: {exc}")
    problem = _header_problem(table.column_names)
    if problem:
        return _unreadable_parquet(path, problem)
    bad = _bad_text_rows(table)
    broken = [Broken(i + 1, "", f"{column}: not valid UTF-8 text") for i, column in bad.items()]
    numbers = pa.array(range(1, table.num_rows + 1), pa.int64())
    if bad:
        keep = pa.array([i not in bad for i in range(table.num_rows)])
        table, numbers = table.filter(keep), numbers.filter(keep)
    arrays = [_as_read(table.column(i)) for i in range(table.num_columns)]
    types = {f.name: f.type for f in table.schema}
    return RawTable(path, pa.table([*arrays, numbers], names=[*table.column_names, ROW]),
                    sorted(broken, key=lambda b: b.row_number), types=types)


def _unreadable_parquet(path: Path, problem: str) -> RawTable:
    """Every row of a file that cannot be read rejected for it, counted from the file's
    footer; a file without a readable footer has rows no one can count: refused."""
    try:
        count = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError):
        raise DropRefused([Diagnostic(
            "E304", f"{path}: {problem}; its rows cannot even be counted, so they cannot be "
                    "rejected one by one", hint="send the file again")]) from None
    broken = [Broken(i, "", problem) for i in range(1, count + 1)]
    return RawTable(path, _text_table([], [], []), broken, problem)


def _bad_text_rows(table: pa.Table) -> dict[int, str]:
    """Row index -> the first text column whose value there is not UTF-8."""
    bad: dict[int, str] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        binary = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
        values = [v for chunk in column.chunks for v in chunk.view(binary).to_pylist()]
        for i, value in enumerate(values):
            if value is not None and i not in bad:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    bad[i] = name
    return bad


def exact(typ: pa.DataType) -> bool:
    """A type that SQL holds exactly and the checks read as it is."""
    return (pa.types.is_decimal128(typ) or pa.types.is_date32(typ)
            or pa.types.is_integer(typ) or pa.types.is_boolean(typ))


def _as_read(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as ingest checks it: text, or of an `exact` type as it is. Other types
    become text: a timestamp at midnight as its date, nested values as JSON (which no
    canonical column accepts)."""
    typ = column.type
    if exact(typ):
        return column
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return column.cast(pa.string())
    if pa.types.is_timestamp(typ):
        values = column.to_pylist()
        return pa.chunked_array([pa.array([_stamp(v) for v in values], pa.string())])
    if pa.types.is_nested(typ) or pa.types.is_binary(typ) or pa.types.is_floating(typ):
        return pa.chunked_array([pa.array([None if v is None else _plain(v)
                                           for v in column.to_pylist()], pa.string())])
    return column.cast(pa.string())


def _stamp(value) -> str | None:
    if value is None:
        return None
    if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
        return value.date().isoformat()
    return value.isoformat()


def _plain(value) -> str:
    if isinstance(value, bytes):
        return _printable(value.decode("utf-8", "surrogateescape"))
    if isinstance(value, float):  # money-safe: amounts in float are refused before this
        return repr(value)
    return json.dumps(value, default=str)


READERS = {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".json": "jsonl",
           ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def read_file(path: Path, fmt: str | None, delimiter: str = ",", scan: bool = True) -> RawTable:
    kind = fmt or READERS.get(path.suffix.lower(), "csv")
    if kind == "parquet":
        return read_parquet(path, scan)
    if kind == "jsonl":
        return read_jsonl(path)
    return read_csv(path, delimiter)
