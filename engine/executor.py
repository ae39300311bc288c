"""The executor: register Arrow tables, run sqlglot statements, fetch Arrow.

Stages talk to this small interface only, so another engine (Spark, through
sqlglot's spark dialect) can be added without touching them.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
from sqlglot import exp

from engine.dsl.compile import to_sql

MIB = 2**20


class Executor(Protocol):
    dialect: str

    def register(self, name: str, table: pa.Table) -> None: ...

    def execute(self, statement: exp.Expression | str) -> None: ...

    def fetch(self, query: exp.Expression | str) -> pa.Table: ...

    def stream(self, query: exp.Expression | str,
               batch_rows: int = 100_000) -> pa.RecordBatchReader: ...

    def unregister(self, name: str) -> None: ...

    def query(self, sql: str, params: list | None = None) -> list[tuple]: ...

    def cursor(self) -> Executor:
        """Another connection to the same database, for work on another thread: it sees
        the database's tables, not the temporary tables and registrations of this one."""
        ...

    def interrupt(self) -> None:
        """Stop the statement running on this connection (from another thread)."""
        ...

    def close(self) -> None: ...


class DuckDBExecutor:
    """DuckDB in process; the client's state file is attached as `state`."""

    dialect = "duckdb"

    def __init__(self, memory_limit: str | None = None, threads: int | None = None,
                 spill: Path | None = None):
        # The night's commit writes its changes into the state file itself, not first to
        # the write-ahead log and then again when the file is closed: DuckDB skips the log
        # when a commit checkpoints, and with a threshold this low every commit of more
        # than a few rows does (at a million lines the log took 0.1 s to write, and the
        # checkpoint at close as much). A tiny commit (a meta row) may still go to the log.
        # What the night adds to the state (a million processed ids, its open items) stays
        # in memory until that commit, rather than being compressed into the file as it is
        # inserted ("optimistic writes"): compressed on insert, it took one thread while
        # the other waited (0.17 s for the processed ids), and the stages after it read it
        # back through the decompression. The commit compresses it on every thread. At a
        # million lines the night is 0.2 s faster and holds 0.2 GiB more at its peak.
        config = {"checkpoint_threshold": "1KB", "enable_optimistic_write": False}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if spill is not None:  # where DuckDB spills what passes the limit (else ./.tmp)
            config["temp_directory"] = str(spill)
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(":memory:", config=config)

    @classmethod
    def _on(cls, con: duckdb.DuckDBPyConnection) -> DuckDBExecutor:
        executor = cls.__new__(cls)
        executor.con = con
        return executor

    def cursor(self) -> DuckDBExecutor:
        return DuckDBExecutor._on(self.con.cursor())

    def render(self, statement: exp.Expression | str) -> str:
        return statement if isinstance(statement, str) else to_sql(statement, self.dialect)

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def execute(self, statement: exp.Expression | str) -> None:
        self.con.execute(self.render(statement)).fetchall()

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        """A parameterised statement of our own (state store upkeep); all its rows."""
        return self.con.execute(sql, params or []).fetchall()

    def fetch(self, query: exp.Expression | str) -> pa.Table:
        return self.con.sql(self.render(query)).to_arrow_table()

    def stream(self, query: exp.Expression | str,
               batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """The rows of `query` in batches, for results too big to hold at once."""
        return self.con.sql(self.render(query)).to_arrow_reader(batch_rows)

    def unregister(self, name: str) -> None:
        """Forget a registered table (and let its memory go)."""
        self.con.unregister(name)

    def drop_temporary(self) -> None:
        """Drop every temp table. Done before the night's commit: DuckDB merges the temp
        tables a transaction made into its catalog when it commits, work for tables no one
        reads after it (at a million lines 0.6 s of a 1.1 s commit)."""
        for (name,) in self.query("SELECT table_name FROM duckdb_tables() WHERE temporary"):
            self.con.execute(f'DROP TABLE temp.main."{name}"')

    def attach(self, path: Path, alias: str = "state", read_only: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = " (READ_ONLY)" if read_only else ""
        self.con.execute(f"ATTACH '{_quote(str(path))}' AS {alias}{mode}").fetchall()

    def memory(self) -> str:
        """What is held now: DuckDB's buffers (in all, then by kind), Arrow's buffers, the
        process's resident memory (which also counts what neither of those does: Arrow
        tables DuckDB made, Python objects) and its peak so far."""
        kinds = self.query("SELECT tag, memory_usage_bytes FROM duckdb_memory() "
                           "WHERE memory_usage_bytes > 0 ORDER BY 2 DESC")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        now = _resident()
        return (f"memory: DuckDB {sum(n for _, n in kinds) / MIB:,.0f} MiB ("
                + ", ".join(f"{tag.lower()} {n / MIB:,.0f}" for tag, n in kinds)
                + f"), Arrow {pa.total_allocated_bytes() / MIB:,.0f} MiB, "
                + (f"resident {now / MIB:,.0f} MiB, " if now is not None else "")
                + f"peak {peak / 1024:,.0f} MiB")

    def interrupt(self) -> None:
        self.con.interrupt()

    def close(self) -> None:
        self.con.close()


def _resident() -> int | None:
    """The process's resident memory in bytes, where /proc tells it (Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _quote(text: str) -> str:
    return text.replace("'", "''")
