"""Checks of accepted rows against the subledger: known customers, ids not seen before.

Each check is a query that returns the bad rows (with __file and __row), so
zero rows means all is well; the rows it returns move from the drop's
accepted tables to its rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine import tables
from engine.checks import FILE
from engine.dsl.compile import literal
from engine.executor import Executor
from engine.ingest import Drop, relation
from engine.readers import ROW


@dataclass(frozen=True)
class ReferenceCheck:
    """`query` selects the bad rows of the accepted rows of `table` (as the view `accepted`), as
    (__file, __row, value, reason); `known` is every customer, tonight's or before."""

    table: str
    column: str
    query: str


_UNKNOWN_CUSTOMER = """
    SELECT __file, __row, customer_id AS value,
           'unknown customer ' || customer_id || ' (not in customers, tonight or before)' AS reason
    FROM accepted t
    WHERE t.customer_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM known k WHERE k.customer_id = t.customer_id)"""

CHECKS: tuple[ReferenceCheck, ...] = (
    ReferenceCheck("transactions", "customer_id", _UNKNOWN_CUSTOMER),
    ReferenceCheck("transactions", "currency", """
        SELECT t.__file, t.__row, t.currency AS value,
               'currency ' || t.currency || ' differs from the customer''s billing currency '
               || k.currency AS reason
        FROM accepted t JOIN known k ON k.customer_id = t.customer_id
        WHERE t.currency <> k.currency"""),
    ReferenceCheck("transactions", "txn_id", """
        SELECT t.__file, t.__row, t.txn_id AS value,
               'txn_id ' || t.txn_id || ' was already processed on ' || CAST(p.as_of AS VARCHAR)
               AS reason
        FROM accepted t JOIN state.processed_ids p ON p.kind = 'txn' AND p.id = t.txn_id"""),
    ReferenceCheck("payments", "customer_id", _UNKNOWN_CUSTOMER),
    ReferenceCheck("payments", "payment_id", """
        SELECT t.__file, t.__row, t.payment_id AS value,
               'payment_id ' || t.payment_id || ' was already processed on '
               || CAST(p.as_of AS VARCHAR) AS reason
        FROM accepted t JOIN state.processed_ids p
          ON p.kind = 'payment' AND p.id = t.payment_id"""),
    ReferenceCheck("open_orders", "customer_id", _UNKNOWN_CUSTOMER),
    ReferenceCheck("opening_items", "customer_id", _UNKNOWN_CUSTOMER),
    # after the opening items' own checks: a dispute of a rejected opening item is rejected
    ReferenceCheck("disputes", "invoice_id", """
        SELECT __file, __row, invoice_id AS value,
               'unknown invoice ' || invoice_id || ' (no such item in the subledger)' AS reason
        FROM accepted t
        WHERE NOT EXISTS (SELECT 1 FROM state.open_items o WHERE o.invoice_id = t.invoice_id)
          AND NOT EXISTS (SELECT 1 FROM drop_opening_items o
                          WHERE o.invoice_id = t.invoice_id)"""),
)

_KNOWN = """
    SELECT customer_id, currency FROM state.customers
    WHERE customer_id NOT IN (SELECT customer_id FROM drop_customers)
    UNION ALL SELECT customer_id, currency FROM drop_customers"""


def check_references(drop: Drop, executor: Executor, first_night: bool) -> None:
    """Move rows that break a reference from the accepted tables to the rejects."""
    if not first_night and "opening_items" in drop.tables:
        _reject_all(drop, executor, "opening_items", "opening_items are accepted on a "
                                                     "client's first night only")
    _duplicates_across_files(drop, executor)
    executor.execute(f"CREATE OR REPLACE TEMP TABLE known AS {_KNOWN}")
    for check in CHECKS:  # the disputes' after the opening items': those left by then
        if check.table not in drop.tables:
            continue
        executor.execute(f"CREATE OR REPLACE TEMP VIEW accepted AS SELECT * FROM "
                         f"{relation(check.table)}")
        bad = executor.fetch(check.query)
        if bad.num_rows:
            _move(drop, executor, check.table, check.column, bad)
    executor.execute("DROP VIEW IF EXISTS accepted")
    executor.execute("DROP TABLE known")


def _duplicates_across_files(drop: Drop, executor: Executor) -> None:
    """An id given in two files of one table (`pay_a.csv`, `pay_b.csv`): the later is rejected."""
    for table, keys in tables.INPUT_KEYS.items():
        files = {f.path.name for f in drop.files if f.table == table}
        if len(files) < 2:
            continue
        found = executor.fetch(_later_duplicates(relation(table), keys))
        if found.num_rows:
            _move(drop, executor, table, keys[0], found)


def _by_key(fn: exp.Expression, keys: tuple[str, ...]) -> exp.Window:
    order = exp.Order(expressions=[exp.Ordered(this=exp.column(FILE)),
                                   exp.Ordered(this=exp.column(ROW))])
    return exp.Window(this=fn, partition_by=[exp.column(k) for k in keys], order=order)


def _later_duplicates(source: str, keys: tuple[str, ...]) -> exp.Select:
    """Rows of `source` whose key an earlier file (or row) already gave."""
    ranked = exp.select(
        "*", exp.alias_(_by_key(exp.RowNumber(), keys), "n"),
        exp.alias_(_by_key(exp.FirstValue(this=exp.column(FILE)), keys), "first_file"),
        exp.alias_(_by_key(exp.FirstValue(this=exp.column(ROW)), keys), "first_row"),
    ).from_(source)
    reason = exp.Concat(expressions=[
        exp.Literal.string(f"duplicate {' and '.join(keys)}: first given in "),
        exp.column("first_file"), exp.Literal.string(" row "),
        exp.cast(exp.column("first_row"), "VARCHAR")])
    return exp.select(
        exp.column(FILE), exp.column(ROW), exp.alias_(exp.cast(exp.column(keys[0]), "VARCHAR"),
                                                      "value"),
        exp.alias_(reason, "reason"),
    ).from_(ranked.subquery("ranked")).where(
        exp.GT(this=exp.column("n"), expression=exp.Literal.number(1)))


def _reject_all(drop: Drop, executor: Executor, table: str, reason: str) -> None:
    bad = executor.fetch(f"SELECT {FILE}, {ROW}, CAST(NULL AS VARCHAR) AS value, "
                         f"{literal(reason).sql('duckdb')} AS reason FROM {relation(table)}")
    _move(drop, executor, table, None, bad)


def _move(drop: Drop, executor: Executor, table: str, column: str | None,
          bad: pa.Table) -> None:
    executor.register("moved_rows", bad)
    executor.execute(f"DELETE FROM {relation(table)} AS t USING moved_rows AS b "
                     f"WHERE t.{FILE} = b.{FILE} AND t.{ROW} = b.{ROW}")
    executor.unregister("moved_rows")
    drop.rejects.append(pa.table({
        "source_file": bad.column(FILE), "row_number": bad.column(ROW),
        "column": pa.array([column] * bad.num_rows, pa.string()),
        "value": bad.column("value"), "reason": bad.column("reason")}))
    for f in drop.files:
        if f.table == table:
            f.rejected += pc.sum(pc.equal(bad.column(FILE), f.path.name)).as_py() or 0
