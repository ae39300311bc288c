"""The subledger's own inputs: customer master data, opening items, disputes, fx rates.

Customers are kept in the state store (later drops send new or changed rows
only; a column a file does not have keeps its stored value). Opening items, accepted on
a client's first night only, become open items carrying their dunning level.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from sqlglot import exp

from engine.dsl.compile import bind_as_of
from engine.executor import Executor


def post(drop, executor: Executor, as_of: dt.date) -> dict:
    """Apply tonight's customers and opening items to the state; return what changed."""
    counts = {"customers_upserted": 0, "opening_items": 0}
    customers = drop.tables.get("customers")
    if customers is not None and customers.num_rows:
        given = drop.present.get("customers", set(CUSTOMER_COLUMNS))
        counts["customers_upserted"] = _upsert_customers(executor, customers, given, as_of)
    items = drop.tables.get("opening_items")
    if items is not None and items.num_rows:
        counts["opening_items"] = _open_items(executor, items, as_of)
    disputes = drop.tables.get("disputes")
    if disputes is not None and disputes.num_rows:
        counts["dispute_events"] = _disputes(executor, disputes, as_of)
    rates = drop.tables.get("fx_rates")
    if rates is not None and rates.num_rows:
        executor.register("tonight_rates", rates)
        counts["fx_rates_revised"] = executor.query(_REVISED)
        executor.query(_RATES)
    return counts


# A rate is kept as first sent: the decisions of earlier nights were made with it. A
# drop that sends another value for the same day and pair is reported, not applied.
_REVISED = """
SELECT t.rate_date, t.from_currency, t.to_currency, s.rate, t.rate
FROM tonight_rates AS t
JOIN state.fx_rates AS s ON s.rate_date = t.rate_date AND s.from_currency = t.from_currency
                        AND s.to_currency = t.to_currency
WHERE s.rate <> t.rate ORDER BY ALL"""

_RATES = """
INSERT INTO state.fx_rates SELECT rate_date, from_currency, to_currency, rate
FROM tonight_rates ON CONFLICT DO NOTHING"""


CUSTOMER_COLUMNS = ("customer_id", "name", "country", "region", "segment", "currency",
                    "payment_terms_days", "vat_id", "tax_exempt", "exemption_id", "email")


def _upsert_customers(executor: Executor, customers: pa.Table, given: set[str],
                      as_of: dt.date) -> int:
    """New customers are added; a changed row replaces the columns its file gives and
    keeps the stored value of every column the file does not have."""
    executor.register("tonight_customers", customers)
    columns = [exp.column(c, table="t") if c in given or c == "customer_id" else
               exp.Coalesce(this=exp.column(c, table="s"), expressions=[exp.column(c, table="t")])
               for c in CUSTOMER_COLUMNS]
    select = exp.select(*columns, exp.cast(exp.Placeholder(this="as_of"), "DATE")).from_(
        exp.alias_(exp.to_table("tonight_customers"), "t", table=True)).join(
        exp.alias_(exp.to_table("state.customers"), "s", table=True),
        on=exp.EQ(this=exp.column("customer_id", table="s"),
                  expression=exp.column("customer_id", table="t")), join_type="left")
    executor.execute("INSERT OR REPLACE INTO state.customers "
                     + executor.render(bind_as_of(select, as_of)))
    return customers.num_rows


def _open_items(executor: Executor, items: pa.Table, as_of: dt.date) -> int:
    executor.register("tonight_opening", items)
    executor.query(
        "INSERT INTO state.open_items (invoice_id, customer_id, item_type, invoice_date, "
        "due_date, currency, amount_original, amount_open, dunning_level, last_dunned_on, "
        "opened_on, closed_on) SELECT invoice_id, customer_id, 'opening', invoice_date, "
        "due_date, currency, amount_open, amount_open, coalesce(dunning_level, 0), "
        "last_dunned_on, ?::DATE, NULL FROM tonight_opening", [as_of])
    return items.num_rows


# Each row is an event; per invoice the latest (by opened_on, then file and row
# order) stands. Tonight's replaces what the state store had unless that is later:
# an old event sent again does not reopen a resolved dispute.
_DISPUTES = """
INSERT INTO state.disputes
SELECT invoice_id, status, opened_on, reason, ?::DATE
FROM (SELECT *, row_number() OVER (PARTITION BY invoice_id
                                   ORDER BY opened_on DESC, __file DESC, __row DESC) AS n
      FROM tonight_disputes)
WHERE n = 1
ON CONFLICT (invoice_id) DO UPDATE SET status = excluded.status,
  opened_on = excluded.opened_on, reason = excluded.reason, updated_on = excluded.updated_on
WHERE excluded.opened_on >= disputes.opened_on"""


def _disputes(executor: Executor, disputes: pa.Table, as_of: dt.date) -> int:
    executor.register("tonight_disputes", disputes)
    executor.query(_DISPUTES, [as_of])
    return disputes.num_rows
