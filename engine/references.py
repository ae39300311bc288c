"""Checks of accepted rows against the subledger: known customers, ids not seen before.

Each check is a query that returns the bad rows (with __file and __row), so
zero rows means all is well; the rows it returns move from the drop's
accepted tables to its rejects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import parse_one

from engine.executor import Executor
from engine.ingest import FILE, Drop
from engine.readers import ROW


@dataclass(frozen=True)
class ReferenceCheck:
    table: str
    column: str
    query: Callable[[str], str]  # the accepted table's name -> SQL selecting bad rows
    reason: str  # SQL text expression for the reason, over the bad row


_KNOWN = ("(SELECT customer_id, currency FROM state.customers "
          "WHERE customer_id NOT IN (SELECT customer_id FROM drop_customers) "
          "UNION ALL SELECT customer_id, currency FROM drop_customers)")


def _unknown_customer(table: str, optional: bool = False) -> ReferenceCheck:
    guard = "t.customer_id IS NOT NULL AND " if optional else ""
    return ReferenceCheck(
        table, "customer_id",
        lambda name: f"SELECT t.* FROM {name} t WHERE {guard}NOT EXISTS "
                     f"(SELECT 1 FROM {_KNOWN} k WHERE k.customer_id = t.customer_id)",
        "'unknown customer ' || customer_id || ' (not in customers, tonight or before)'")


def _processed(table: str, column: str, kind: str) -> ReferenceCheck:
    return ReferenceCheck(
        table, column,
        lambda name: f"SELECT t.*, p.as_of AS __seen FROM {name} t JOIN state.processed_ids p "
                     f"ON p.kind = '{kind}' AND p.id = t.{column}",
        f"'{column} ' || {column} || ' was already processed on ' || CAST(__seen AS VARCHAR)")


CHECKS: tuple[ReferenceCheck, ...] = (
    _unknown_customer("transactions"),
    ReferenceCheck(
        "transactions", "currency",
        lambda name: f"SELECT t.*, k.currency AS __expected FROM {name} t "
                     f"JOIN {_KNOWN} k ON k.customer_id = t.customer_id "
                     "WHERE t.currency <> k.currency",
        "'currency ' || currency || ' differs from the customer''s billing currency ' "
        "|| __expected"),
    _processed("transactions", "txn_id", "txn"),
    _unknown_customer("payments", optional=True),
    _processed("payments", "payment_id", "payment"),
    _unknown_customer("open_orders"),
    _unknown_customer("opening_items"),
)


def check_references(drop: Drop, executor: Executor, first_night: bool) -> None:
    """Move rows that break a reference from the accepted tables to the rejects."""
    customers = drop.tables.get("customers")
    executor.register("drop_customers", customers if customers is not None else _no_customers())
    if not first_night and "opening_items" in drop.tables:
        _reject_all(drop, "opening_items", "opening_items are accepted on a client's first "
                                           "night only")
    for check in CHECKS:
        table = drop.tables.get(check.table)
        if table is None or table.num_rows == 0:
            continue
        executor.register("accepted", table)
        bad = executor.fetch(parse_one(
            f"SELECT {FILE}, {ROW}, CAST({check.column} AS VARCHAR) AS value, "
            f"{check.reason} AS reason FROM ({check.query('accepted')})", dialect="duckdb"))
        if bad.num_rows:
            _move(drop, check.table, check.column, bad)


def _no_customers() -> pa.Table:
    return pa.table({"customer_id": pa.array([], pa.string()),
                     "currency": pa.array([], pa.string())})


def _reject_all(drop: Drop, table: str, reason: str) -> None:
    rows = drop.tables[table]
    bad = pa.table({FILE: rows.column(FILE), ROW: rows.column(ROW),
                    "value": pa.array([None] * rows.num_rows, pa.string()),
                    "reason": pa.array([reason] * rows.num_rows, pa.string())})
    _move(drop, table, None, bad)


def _row_keys(table: pa.Table) -> pa.ChunkedArray:
    """file NUL row: one text key per input row."""
    rows = pc.cast(table.column(ROW), pa.string())
    return pc.binary_join_element_wise(table.column(FILE), rows, "\0")


def _move(drop: Drop, table: str, column: str | None, bad: pa.Table) -> None:
    accepted = drop.tables[table]
    keys, mine = _row_keys(bad), _row_keys(accepted)
    drop.tables[table] = accepted.filter(pc.invert(pc.is_in(mine, value_set=keys)))
    drop.rejects.append(pa.table({
        "source_file": bad.column(FILE), "row_number": bad.column(ROW),
        "column": pa.array([column] * bad.num_rows, pa.string()),
        "value": bad.column("value"), "reason": bad.column("reason")}))
    for f in drop.files:
        if f.table == table:
            f.rejected += pc.sum(pc.equal(bad.column(FILE), f.path.name)).as_py() or 0
