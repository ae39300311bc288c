"""The client's state store: one DuckDB file, attached to the run's connection as `state`.

It keeps the subledger (customers, open items, unapplied cash, disputes, fx rates,
number sequences, processed ids) and the run log. A run changes it inside one transaction. The state
digest is a chain: each committed run sets it to sha256(previous digest, run
id), so it names the subledger a run started from without rescanning it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from engine.errors import Diagnostic, RuleError
from engine.executor import DuckDBExecutor

SCHEMA_VERSION = 4  # 2: unapplied cash, disputes, fx rates, dunning columns; 3, 4: see below
EMPTY_STATE = hashlib.sha256(b"ruledger empty state").hexdigest()

# The tables without a key index, and their columns. DuckDB keeps a key index whole in
# memory, inserts every new key into it and writes it out again at each commit: at a
# million lines that was 0.8 s a night for processed_ids (version 3) and 0.6 s for
# customers and open_items (version 4), growing with the history. Their keys are kept
# unique by the night instead: the ingest checks reject ids given twice or already
# processed, customers are updated in place, and every invoice, credit note and dunning
# charge is checked against the subledger before it is posted
# (`engine.stages.subledger.refuse_taken`; opening items come into an empty one).
UNKEYED = {
    "customers": """
        customer_id VARCHAR NOT NULL, name VARCHAR NOT NULL, country VARCHAR NOT NULL,
        region VARCHAR, segment VARCHAR, currency VARCHAR NOT NULL, payment_terms_days BIGINT,
        vat_id VARCHAR, tax_exempt BOOLEAN, exemption_id VARCHAR, email VARCHAR,
        updated_on DATE NOT NULL""",
    "open_items": """
        invoice_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, item_type VARCHAR NOT NULL,
        invoice_date DATE NOT NULL, due_date DATE NOT NULL, currency VARCHAR NOT NULL,
        amount_original DECIMAL(18,4) NOT NULL, amount_open DECIMAL(18,4) NOT NULL,
        dunning_level BIGINT NOT NULL DEFAULT 0, last_dunned_on DATE, opened_on DATE NOT NULL,
        closed_on DATE, interest_to DATE, last_paid_on DATE""",
    "processed_ids": """
        kind VARCHAR NOT NULL, id VARCHAR NOT NULL, as_of DATE NOT NULL,
        run_id VARCHAR NOT NULL""",
}

_DDL = (
    """CREATE TABLE IF NOT EXISTS state.meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    *(f"CREATE TABLE IF NOT EXISTS state.{name} ({columns})"
      for name, columns in UNKEYED.items()),
    # state files from before dunning: the columns it keeps per item
    "ALTER TABLE state.open_items ADD COLUMN IF NOT EXISTS interest_to DATE",
    "ALTER TABLE state.open_items ADD COLUMN IF NOT EXISTS last_paid_on DATE",
    """CREATE TABLE IF NOT EXISTS state.held_lines (
        txn_id VARCHAR PRIMARY KEY, customer_id VARCHAR NOT NULL, txn_date DATE NOT NULL,
        product_code VARCHAR NOT NULL, description VARCHAR, quantity DECIMAL(18,6) NOT NULL,
        unit_price DECIMAL(18,6) NOT NULL, currency VARCHAR NOT NULL, tax_category VARCHAR,
        po_number VARCHAR, ship_to_country VARCHAR, ship_to_region VARCHAR,
        held_since DATE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS state.sequences (
        series VARCHAR, year INTEGER, last_seq BIGINT NOT NULL, PRIMARY KEY (series, year))""",
    """CREATE TABLE IF NOT EXISTS state.unapplied_cash (
        payment_id VARCHAR PRIMARY KEY, customer_id VARCHAR, currency VARCHAR NOT NULL,
        received_on DATE NOT NULL, amount DECIMAL(18,4) NOT NULL, payer_name VARCHAR,
        reference VARCHAR, cash_open DECIMAL(18,4) NOT NULL, since DATE NOT NULL,
        closed_on DATE)""",
    """CREATE TABLE IF NOT EXISTS state.disputes (
        invoice_id VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, opened_on DATE NOT NULL,
        reason VARCHAR, updated_on DATE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS state.fx_rates (
        rate_date DATE, from_currency VARCHAR, to_currency VARCHAR,
        rate DECIMAL(18,8) NOT NULL, PRIMARY KEY (rate_date, from_currency, to_currency))""",
    """CREATE TABLE IF NOT EXISTS state.runs (
        run_id VARCHAR PRIMARY KEY, as_of DATE NOT NULL, status VARCHAR NOT NULL,
        rules_digest VARCHAR NOT NULL, inputs_digest VARCHAR NOT NULL,
        state_before VARCHAR NOT NULL, state_after VARCHAR NOT NULL,
        started_at VARCHAR NOT NULL, finished_at VARCHAR NOT NULL, counts VARCHAR NOT NULL)""",
)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    as_of: dt.date
    status: str
    rules_digest: str
    inputs_digest: str
    state_before: str
    state_after: str
    started_at: str
    finished_at: str
    counts: dict


class StateStore:
    """Reads and writes of the attached `state` database; the caller owns the transaction."""

    def __init__(self, executor: DuckDBExecutor, client_id: str):
        self.x = executor
        self.client_id = client_id

    def migrate(self) -> None:
        self.x.execute(_DDL[0])  # meta: what the file is, read before anything is changed
        self._refuse_newer()
        for ddl in _DDL[1:]:
            self.x.execute(ddl)
        self._unkeyed()
        found = self._meta("client_id")
        if found is not None and found != self.client_id:
            raise RuleError(f"the state file belongs to client {found!r}, not {self.client_id!r}")
        for key, value in (("client_id", self.client_id),
                           ("schema_version", str(SCHEMA_VERSION))):
            if self._meta(key) != value:  # an up-to-date state is not written to
                self._set_meta(key, value)

    def _refuse_newer(self) -> None:
        """A state file written by a newer ruledger is not touched: this one would set its
        version back, and might not keep what the newer one relies on (since version 4
        the ids of the open items are kept unique by the night, not by a key index)."""
        found = self._meta("schema_version")
        if found is not None and (not found.isdigit() or int(found) > SCHEMA_VERSION):
            raise RuleError([Diagnostic(
                "E010", f"the state file is of schema version {found}, newer than this "
                        f"ruledger's ({SCHEMA_VERSION})",
                hint="run it with the ruledger that wrote it, or a newer one")])

    def _unkeyed(self) -> None:
        """A state from before version 4: each table of UNKEYED that has a key index is
        rebuilt without it (DuckDB cannot drop a primary key), all in one transaction."""
        keyed = [name for (name,) in self.x.query(
            "SELECT DISTINCT table_name FROM duckdb_constraints() WHERE database_name = 'state' "
            "AND constraint_type = 'PRIMARY KEY' AND list_contains(?, table_name) ORDER BY 1",
            [list(UNKEYED)])]
        if not keyed:
            return
        self.x.execute("BEGIN TRANSACTION")
        try:
            for name in keyed:
                self.x.execute(f"CREATE TABLE state.{name}_unkeyed ({UNKEYED[name]})")
                self.x.execute(f"INSERT INTO state.{name}_unkeyed BY NAME "
                               f"SELECT * FROM state.{name}")
                self.x.execute(f"DROP TABLE state.{name}")
                self.x.execute(f"ALTER TABLE state.{name}_unkeyed RENAME TO {name}")
            self.x.execute("COMMIT")
        except BaseException:
            self.x.execute("ROLLBACK")
            raise

    def _meta(self, key: str) -> str | None:
        rows = self.x.query("SELECT value FROM state.meta WHERE key = ?", [key])
        return rows[0][0] if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self.x.query("INSERT OR REPLACE INTO state.meta VALUES (?, ?)", [key, value])

    @property
    def digest(self) -> str:
        return self._meta("state_digest") or EMPTY_STATE

    def advance(self, run_id: str) -> str:
        """Chain the state digest past `run_id`; return the new digest."""
        after = hashlib.sha256(f"{self.digest}\0{run_id}".encode()).hexdigest()
        self._set_meta("state_digest", after)
        return after

    def has_runs(self) -> bool:
        return bool(self.x.query("SELECT count(*) FROM state.runs")[0][0])

    def run_for(self, as_of: dt.date) -> RunRecord | None:
        rows = self.x.query(
            "SELECT * FROM state.runs WHERE as_of = ? AND status = 'done' "
            "ORDER BY finished_at DESC LIMIT 1",
            [as_of])
        return _record(rows[0]) if rows else None

    def runs(self) -> list[RunRecord]:
        """The run log, oldest night first."""
        return [_record(r) for r in self.x.query(
            "SELECT * FROM state.runs ORDER BY as_of, status = 'done', finished_at")]

    def latest_as_of(self) -> dt.date | None:
        return self.x.query("SELECT max(as_of) FROM state.runs")[0][0]

    def log_run(self, record: RunRecord) -> None:
        self.x.query(
            "INSERT INTO state.runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record.run_id, record.as_of, record.status, record.rules_digest,
             record.inputs_digest, record.state_before, record.state_after,
             record.started_at, record.finished_at, json.dumps(record.counts, sort_keys=True)])


def _record(row: tuple) -> RunRecord:
    return RunRecord(*row[:9], counts=json.loads(row[9]))
