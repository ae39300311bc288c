"""The subledger's own inputs: customer master data and opening items.

Customers are kept in the state store (later drops send new or changed rows
only; the last row of a drop for a customer stands). Opening items, accepted on
a client's first night only, become open items carrying their dunning level.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from engine.executor import DuckDBExecutor


def post(drop, executor: DuckDBExecutor, as_of: dt.date, run_id: str) -> dict[str, int]:
    """Apply tonight's customers and opening items to the state; return what changed."""
    counts = {"customers_upserted": 0, "opening_items": 0}
    customers = drop.tables.get("customers")
    if customers is not None and customers.num_rows:
        counts["customers_upserted"] = _upsert_customers(executor, customers, as_of)
    items = drop.tables.get("opening_items")
    if items is not None and items.num_rows:
        counts["opening_items"] = _open_items(executor, items, as_of)
    return counts


def _upsert_customers(executor: DuckDBExecutor, customers: pa.Table, as_of: dt.date) -> int:
    executor.register("tonight_customers", customers)
    executor.query(
        "INSERT OR REPLACE INTO state.customers SELECT customer_id, name, country, region, "
        "segment, currency, payment_terms_days, vat_id, tax_exempt, exemption_id, email, ?::DATE "
        "FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY __file DESC, "
        "__row DESC) AS n FROM tonight_customers) WHERE n = 1", [as_of])
    return customers.num_rows


def _open_items(executor: DuckDBExecutor, items: pa.Table, as_of: dt.date) -> int:
    executor.register("tonight_opening", items)
    executor.query(
        "INSERT INTO state.open_items SELECT invoice_id, customer_id, 'opening', invoice_date, "
        "due_date, currency, amount_open, amount_open, coalesce(dunning_level, 0), "
        "last_dunned_on, ?::DATE, NULL FROM tonight_opening", [as_of])
    return items.num_rows
