"""The subledger's own inputs: customer master data, opening items, disputes, fx rates.

Customers are kept in the state store (later drops send new or changed rows
only; a column a file does not have keeps its stored value). Opening items, accepted on
a client's first night only, become open items carrying their dunning level.
"""

from __future__ import annotations

import datetime as dt

from engine.errors import Diagnostic, DropRefused
from engine.executor import Executor


def post(drop, executor: Executor, as_of: dt.date) -> dict:
    """Apply tonight's customers and opening items to the state; return what changed."""
    counts = {"customers_upserted": 0, "opening_items": 0}
    if customers := drop.tables.count("customers"):
        given = drop.present.get("customers", set(CUSTOMER_COLUMNS))
        _upsert_customers(executor, given, as_of)
        counts["customers_upserted"] = customers
    # Opening items come on the first night only, into an empty subledger, and the ingest
    # rejects an id given twice: unlike invoices and charges they need no `refuse_taken`.
    if items := drop.tables.count("opening_items"):
        executor.query(_OPEN_ITEMS, [as_of])
        counts["opening_items"] = items
    if disputes := drop.tables.count("disputes"):
        executor.query(_DISPUTES, [as_of])
        counts["dispute_events"] = disputes
    if drop.tables.count("fx_rates"):
        counts["fx_rates_revised"] = executor.query(_REVISED)
        executor.query(_RATES)
    return counts


# A rate is kept as first sent: the decisions of earlier nights were made with it. A
# drop that sends another value for the same day and pair is reported, not applied.
_REVISED = """
SELECT t.rate_date, t.from_currency, t.to_currency, s.rate, t.rate
FROM drop_fx_rates AS t
JOIN state.fx_rates AS s ON s.rate_date = t.rate_date AND s.from_currency = t.from_currency
                        AND s.to_currency = t.to_currency
WHERE s.rate <> t.rate ORDER BY ALL"""

_RATES = """
INSERT INTO state.fx_rates SELECT rate_date, from_currency, to_currency, rate
FROM drop_fx_rates ON CONFLICT DO NOTHING"""


CUSTOMER_COLUMNS = ("customer_id", "name", "country", "region", "segment", "currency",
                    "payment_terms_days", "vat_id", "tax_exempt", "exemption_id", "email")


def _upsert_customers(executor: Executor, given: set[str], as_of: dt.date) -> None:
    """New customers are added; a changed row replaces the columns its file gives and
    keeps the stored value of every column the file does not have. (Updated in place and
    inserted, not replaced: state.customers has no key index, see `engine.state`.)"""
    sets = ", ".join(f"{c} = t.{c}" if c in given else f"{c} = coalesce(state.customers.{c}, t.{c})"
                     for c in CUSTOMER_COLUMNS[1:])  # every column but the key
    executor.query(f"UPDATE state.customers SET {sets}, updated_on = ?::DATE "
                   "FROM drop_customers AS t WHERE state.customers.customer_id = t.customer_id",
                   [as_of])
    executor.query(f"INSERT INTO state.customers SELECT {', '.join(CUSTOMER_COLUMNS)}, ?::DATE "
                   "FROM drop_customers AS t WHERE NOT EXISTS (SELECT 1 FROM state.customers "
                   "AS s WHERE s.customer_id = t.customer_id)", [as_of])


# The ids among `source`'s that the subledger holds already, or that come twice in it.
_TAKEN = """
SELECT invoice_id, bool_or(held) FROM (
  SELECT invoice_id, false AS held FROM {source}
  UNION ALL
  SELECT invoice_id, true FROM state.open_items
  WHERE invoice_id IN (SELECT invoice_id FROM {source}))
GROUP BY invoice_id HAVING count(*) > 1 ORDER BY invoice_id LIMIT 5"""


def refuse_taken(executor: Executor, source: str, what: str, held_hint: str,
                 twice_hint: str = "two items of the night have one id") -> None:
    """The night refused before the items of `source` are posted when one has the id of
    an item the subledger already holds, or of another of them: an item id is the key
    of the books (state.open_items keeps it unique this way, without a key index)."""
    rows = executor.query(_TAKEN.format(source=source))
    if rows:
        raise DropRefused([Diagnostic(
            "E324", f"{what} {invoice_id} would be a second item of that id in the subledger"
            + ("" if held else " (two of tonight's have it)"),
            hint=held_hint if held else twice_hint) for invoice_id, held in rows])


_OPEN_ITEMS = """
INSERT INTO state.open_items (invoice_id, customer_id, item_type, invoice_date, due_date,
  currency, amount_original, amount_open, dunning_level, last_dunned_on, opened_on, closed_on)
SELECT invoice_id, customer_id, 'opening', invoice_date, due_date, currency, amount_open,
       amount_open, coalesce(dunning_level, 0), last_dunned_on, ?::DATE, NULL
FROM drop_opening_items"""


# Each row is an event; per invoice the latest (by opened_on, then file and row
# order) stands. Tonight's replaces what the state store had unless that is later:
# an old event sent again does not reopen a resolved dispute.
_DISPUTES = """
INSERT INTO state.disputes
SELECT invoice_id, status, opened_on, reason, ?::DATE
FROM (SELECT *, row_number() OVER (PARTITION BY invoice_id
                                   ORDER BY opened_on DESC, __file DESC, __row DESC) AS n
      FROM drop_disputes)
WHERE n = 1
ON CONFLICT (invoice_id) DO UPDATE SET status = excluded.status,
  opened_on = excluded.opened_on, reason = excluded.reason, updated_on = excluded.updated_on
WHERE excluded.opened_on >= disputes.opened_on"""
