"""Writing a run's outputs: tables, manifest.json, and the rename into place.

Outputs are written into a hidden temporary folder next to the target and
renamed into `OUT/<client>/<as-of>/` in one step once the state has committed
(`engine.safety`), so a reader sees either the
whole night or nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def with_run_id(table: pa.Table, schema: pa.Schema, run_id: str) -> pa.Table:
    """`table` in the output `schema`, with every row's run_id set."""
    run = pa.repeat(pa.scalar(run_id, pa.string()), table.num_rows)
    columns = {name: table.column(name) for name in table.column_names}
    columns["run_id"] = run
    return pa.table([columns[f.name] for f in schema], schema=schema)


PENDING = 2  # pieces given to the writing thread and not yet written

PARQUET = {"compression": "zstd", "use_dictionary": False, "write_statistics": False,
           "store_schema": True}  # fixed settings, so the bytes repeat


def pieces(table: pa.Table | Iterable[pa.Table]) -> Iterable[pa.Table]:
    """A table given whole, or the pieces it is given in."""
    return [table] if isinstance(table, pa.Table) else table


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Staged:
    """A run's output files, written into its staging folder as each stage makes them.

    A table is let go once written, so a night never holds all its outputs at once. A
    big table is written in pieces as they are read; a table made in pieces over several
    stages (the journal) is appended to one open writer, closed by `close_parts`. The
    files are encoded and written on a thread of their own, in order, while the night's
    queries go on. With `keep` the tables stay readable in memory too (`ruledger explain`
    reads them before the commit).
    """

    def __init__(self, folder: Path, fmt: str, keep: bool = False):
        self.folder, self.fmt, self.keep = folder, fmt, keep
        self.rows: dict[Path, int] = {}  # every file written, in order, with its rows
        self.digests: dict[Path, str] = {}  # its sha256, taken on the writing thread
        self.kept: dict[str, pa.Table] = {}
        self.open: dict[str, tuple[Path, Any, int]] = {}  # name -> (path, writer, rows)
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ruledger-write")
        self._pending: deque[Future] = deque()

    def _submit(self, write: Callable[..., Any], *args: Any) -> None:
        """A write done on one thread beside the night's queries, in the order given. At
        most PENDING wait, so a slow disk holds the run back rather than filling memory;
        a write that failed raises here, or at `wait`."""
        while self._pending and (len(self._pending) >= PENDING or self._pending[0].done()):
            self._pending.popleft().result()
        self._pending.append(self._writes.submit(write, *args))

    def wait(self) -> None:
        """Every write given so far done (raising the first that failed)."""
        while self._pending:
            self._pending.popleft().result()

    def stop(self) -> None:
        """A failed night: the writes under way end (their errors are the night's least
        concern), so the staging folder can be removed."""
        self._writes.shutdown(cancel_futures=True)
        self._pending.clear()
        for _path, writer, _rows in self.open.values():
            with suppress(Exception):
                writer.close()
        self.open.clear()

    def discard(self) -> None:
        """A failed night that has no publication intent to clear: stop, and remove the
        staging folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def put(self, name: str, table: pa.Table | Iterable[pa.Table]) -> None:
        """Table `name`, whole or in pieces (each written as it comes; an empty table is
        given as one empty piece, which still makes its file)."""
        for piece in pieces(table):
            self.append(name, piece)
        self._close(name)

    def append(self, name: str, table: pa.Table) -> None:
        """A piece of table `name`; pieces are written in the order given."""
        path, writer, rows = self._open(name, table.schema)
        self._submit(writer.write_table, table)
        self.open[name] = (path, writer, rows + table.num_rows)
        if self.keep:
            self.kept[name] = pa.concat_tables([self.kept[name], table])

    def _open(self, name: str, schema: pa.Schema) -> tuple[Path, Any, int]:
        if name not in self.open:
            path = self.folder / f"{name}.{self.fmt}"
            writer = pacsv.CSVWriter(path, schema) if self.fmt == "csv" \
                else pq.ParquetWriter(path, schema, **PARQUET)
            self.open[name] = (path, writer, 0)
            if self.keep:
                self.kept[name] = schema.empty_table()
        return self.open[name]

    def _close(self, name: str) -> None:
        path, writer, rows = self.open.pop(name)
        self._submit(self._closed, path, writer)
        self.rows[path] = rows

    def _closed(self, path: Path, writer: Any) -> None:
        """A file's last bytes written, then its sha256 for the manifest (read back while
        the night goes on, not all at the end)."""
        writer.close()
        self.digests[path] = sha256_of(path)

    def page(self, name: str, pieces: Iterable[str], rows: int) -> None:
        """A page written as it is rendered, piece by piece, and hashed as it is written."""
        path = self.folder / name
        digest = hashlib.sha256()
        with path.open("wb") as f:
            for piece in pieces:
                data = piece.encode("utf-8")
                digest.update(data)
                f.write(data)
        self.digests[path] = digest.hexdigest()
        self.rows[path] = rows

    def close_parts(self) -> None:
        """The tables made in pieces over several stages closed, counted where they end."""
        for name in list(self.open):
            self._close(name)

    def finish(self, manifest: dict[str, Any]) -> None:
        """Every file's sha256 and rows into the manifest, then the manifest written."""
        self.close_parts()
        self.wait()
        self._writes.shutdown()
        for path, rows in self.rows.items():
            manifest["outputs"][path.name] = {"sha256": self.digests[path], "rows": rows}
        write_manifest(self.folder, manifest)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n",
                    encoding="utf-8")
    return path


def staging_name(target: Path, run_id: str) -> Path:
    return target.parent / f".{target.name}.tmp-{run_id}"


def staging_folder(target: Path, run_id: str) -> Path:
    """A fresh hidden folder beside `target` to write into."""
    staging = staging_name(target, run_id)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging
