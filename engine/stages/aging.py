"""Aging: per customer and currency, the open amounts in the client's buckets of days
past due (as-of date minus due date), unapplied cash as a negative amount, and the
total. The totals are the open items and unapplied cash of the state store after
tonight, so they agree with it by construction.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from sqlglot import exp

from engine.config.client import Bucket
from engine.config.ruleset import RuleSet
from engine.dsl.compile import bind_as_of
from engine.executor import Executor
from engine.stages.sql import template

AGING = """
WITH open_now AS (  -- open items, and unapplied cash as a rest of its own: one grouping
  SELECT customer_id, currency, amount_open AS amount,
         datediff('day', due_date, CAST(:as_of AS DATE)) AS days, 0 AS rest
  FROM state.open_items WHERE closed_on IS NULL AND amount_open <> 0
  UNION ALL
  SELECT customer_id, currency, 0, NULL, -cash_open
  FROM state.unapplied_cash WHERE closed_on IS NULL AND cash_open <> 0
)
SELECT i.customer_id, i.currency, :buckets,
       CAST(sum(i.rest) AS DECIMAL(18,4)) AS unapplied,
       CAST(sum(i.amount) + sum(i.rest) AS DECIMAL(18,4)) AS total_open
FROM open_now AS i
GROUP BY i.customer_id, i.currency
ORDER BY i.customer_id NULLS LAST, i.currency
"""


def _in_bucket(bucket: Bucket, previous: int | None) -> exp.Expression:
    days = exp.column("days", table="i")
    conds = []
    if previous is not None:
        conds.append(exp.GT(this=days.copy(), expression=exp.Literal.number(previous)))
    if bucket.max_days is not None:
        conds.append(exp.LTE(this=days.copy(), expression=exp.Literal.number(bucket.max_days)))
    return exp.and_(*conds) if conds else exp.true()


def query(ruleset: RuleSet) -> exp.Expression:
    """The aging query (`as_of` stays a placeholder)."""
    columns = []
    previous = None
    for bucket in ruleset.client.aging_buckets:
        amount = exp.Case(ifs=[exp.If(this=_in_bucket(bucket, previous),
                                      true=exp.column("amount", table="i"))],
                          default=exp.Literal.number(0))
        total = exp.Coalesce(this=exp.Sum(this=amount), expressions=[exp.Literal.number(0)])
        columns.append(exp.alias_(exp.cast(total, "DECIMAL(18,4)"), bucket.name))
        previous = bucket.max_days
    select = template(AGING, buckets=exp.Literal.number(0))
    # the placeholder stands for the bucket columns
    select.set("expressions", [*select.expressions[:2], *columns, *select.expressions[3:]])
    return select


def run(executor: Executor, ruleset: RuleSet, as_of: dt.date) -> pa.Table:
    return executor.fetch(bind_as_of(query(ruleset), as_of))
