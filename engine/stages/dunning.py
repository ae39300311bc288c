"""Dunning: each overdue item's level, one notice per customer, level and currency, with
the level's fee and interest as new open items.

An item (open, overdue, not under an open dispute, not `exclude`d) reaches level L
when its days past due reach `after_days` of L plus `grace_days`; it rises at most
one level a night. A customer is dunned tonight only when its total overdue, in the
base currency, is at least `min_amount`, and its last notice is at least
`min_days_between` days ago. Each item whose level rises is a row of tonight's
notice of that level. The fee (fixed, or percent of the amount dunned with a cap)
is charged once per notice, on its first row (earliest due date, then invoice id).
A notice that lists only fee and interest items carries no fee, and a percent fee is
taken on the principal items only. Interest is simple interest per principal item, on
its open amount, from the due date (or the last partial payment, or the last interest
charged, whichever is later) to the as-of date. Fees and interest become open items
due tonight, which are dunned later like any item but bear no fee or interest of their
own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from engine.config.dunning import Ladder
from engine.config.ruleset import RuleSet
from engine.dsl.compile import bind_as_of, exact_div, literal
from engine.exceptions import Problem
from engine.executor import Executor
from engine.stages import custom, subledger
from engine.stages.credit import RATES
from engine.stages.sql import Statement, round_minor, template

ITEMS = """
CREATE OR REPLACE TEMP TABLE dun_items AS
SELECT t.*, datediff('day', t.due_date, CAST(:as_of AS DATE)) AS days, :target AS target,
       cur.minor
FROM state.open_items AS t
JOIN state.customers AS customer ON customer.customer_id = t.customer_id
JOIN currencies AS cur ON cur.code = t.currency
LEFT JOIN state.disputes AS d ON d.invoice_id = t.invoice_id
WHERE t.closed_on IS NULL AND t.amount_open > 0 AND t.due_date < CAST(:as_of AS DATE)
  AND coalesce(d.status, '') <> 'open' AND NOT coalesce(:exclude, false)
"""

CUSTOMERS = """
CREATE OR REPLACE TEMP TABLE dun_customers AS
SELECT i.customer_id, sum(CAST(i.amount_open AS DECIMAL(38,4)) * r.rate) AS overdue,
       bool_or(r.rate IS NULL) AS missing_rate,
       bool_or(i.dunning_level < least(i.target, i.dunning_level + 1)) AS rises,
       (SELECT max(o.last_dunned_on) FROM state.open_items AS o
        WHERE o.customer_id = i.customer_id) AS last_notice
FROM dun_items AS i LEFT JOIN credit_rates AS r ON r.currency = i.currency
GROUP BY i.customer_id
"""

ROWS = """
CREATE OR REPLACE TEMP TABLE dun_rows AS
WITH rising AS (  -- the item as tonight's notice shows it: at its new level
  SELECT t.* REPLACE (least(t.target, t.dunning_level + 1) AS dunning_level),
         least(t.target, t.dunning_level + 1) AS new_level
  FROM dun_items AS t JOIN dun_customers AS c ON c.customer_id = t.customer_id
  WHERE least(t.target, t.dunning_level + 1) > t.dunning_level
    AND NOT c.missing_rate AND c.overdue >= :min_amount
    AND (c.last_notice IS NULL
         OR datediff('day', c.last_notice, CAST(:as_of AS DATE)) >= :min_days_between)
), noticed AS (
  SELECT t.*, l.level_id, l.rule_ref, l.action, l.fee_fixed, l.fee_percent, l.fee_cap,
         l.annual_rate, l.day_basis, :template AS template,
         'DN-' || strftime(CAST(:as_of AS DATE), '%Y%m%d') || '-' || t.customer_id || '-'
           || CAST(t.new_level AS VARCHAR) || '-' || t.currency AS notice_id,
         row_number() OVER (PARTITION BY t.customer_id, t.new_level, t.currency
                            ORDER BY t.due_date, t.invoice_id) AS row_in_notice,
         sum(CASE WHEN t.item_type IN ('invoice', 'opening') THEN t.amount_open ELSE 0 END)
           OVER (PARTITION BY t.customer_id, t.new_level, t.currency) AS amount_dunned,
         datediff('day', :interest_start, CAST(:as_of AS DATE)) AS interest_days
  FROM rising AS t
  JOIN state.customers AS customer ON customer.customer_id = t.customer_id
  JOIN dun_levels AS l ON l.level = t.new_level
)
SELECT *, CASE WHEN row_in_notice = 1 AND amount_dunned > 0 THEN :fee ELSE 0 END
            AS fee_amount,
       CASE WHEN annual_rate IS NOT NULL AND item_type IN ('invoice', 'opening')
                 AND interest_days > 0
            THEN :interest ELSE 0 END AS interest_amount
FROM noticed
"""

# A notice row's output columns, from a row of dun_rows.
NOTICE_COLUMNS = """notice_id, customer_id, invoice_id, new_level AS level, days AS days_overdue,
       amount_open, CAST(fee_amount AS DECIMAL(18,4)) AS fee_amount,
       CAST(interest_amount AS DECIMAL(18,4)) AS interest_amount, action, template,
       level_id AS rule_id, rule_ref"""

NOTICES = f"SELECT {NOTICE_COLUMNS} FROM dun_rows ORDER BY notice_id, row_in_notice"

# The notice rows as custom rules see them (and the currency, to round a set amount).
NOTICE_ROWS = (f"CREATE OR REPLACE TEMP TABLE dunning_notices AS SELECT {NOTICE_COLUMNS}, "
               "currency FROM dun_rows")

WRITE_BACK = """
UPDATE dun_rows SET fee_amount = n.fee_amount, interest_amount = n.interest_amount,
       action = n.action, template = n.template, level_id = n.rule_id, rule_ref = n.rule_ref
FROM dunning_notices AS n
WHERE dun_rows.notice_id = n.notice_id AND dun_rows.invoice_id = n.invoice_id
"""

# Fee and interest items: due tonight, dunned later like any item.
CHARGES = """
CREATE OR REPLACE TEMP TABLE dun_charges AS
SELECT notice_id || '-FEE' AS invoice_id, customer_id, 'fee' AS item_type, currency,
       CAST(fee_amount AS DECIMAL(18,4)) AS amount, level_id, rule_ref, notice_id
FROM dun_rows WHERE fee_amount > 0
UNION ALL
SELECT invoice_id || '-INT-' || strftime(CAST(:as_of AS DATE), '%Y%m%d'), customer_id,
       'interest', currency, CAST(interest_amount AS DECIMAL(18,4)), level_id, rule_ref,
       notice_id
FROM dun_rows WHERE interest_amount > 0
"""

ENTRIES = """
SELECT 'JE-' || invoice_id AS entry_id, CAST(line_no AS BIGINT) AS line_no,
       CAST(:as_of AS DATE) AS entry_date, account,
       CAST(greatest(amount, 0) AS DECIMAL(18,4)) AS debit,
       CAST(greatest(-amount, 0) AS DECIMAL(18,4)) AS credit, currency, customer_id,
       item_type AS document_type, invoice_id AS document_id, memo, rule_id, rule_ref
FROM (
  SELECT invoice_id, 1 AS line_no, :ar_account AS account, amount, currency, customer_id,
         item_type, item_type || ' ' || notice_id AS memo, level_id AS rule_id, rule_ref
  FROM dun_charges
  UNION ALL
  SELECT invoice_id, 2, CASE WHEN item_type = 'fee' THEN :fee_account
                             ELSE :interest_account END, -amount, currency, customer_id,
         item_type, item_type || ' ' || notice_id, level_id, rule_ref
  FROM dun_charges
)
ORDER BY entry_id, line_no
"""

POST_LEVELS = """
UPDATE state.open_items SET dunning_level = r.new_level, last_dunned_on = ?::DATE,
       interest_to = CASE WHEN r.interest_amount > 0 THEN ?::DATE
                          ELSE state.open_items.interest_to END
FROM dun_rows AS r WHERE state.open_items.invoice_id = r.invoice_id
"""

POST_CHARGES = """
INSERT INTO state.open_items (invoice_id, customer_id, item_type, invoice_date, due_date,
                              currency, amount_original, amount_open, dunning_level,
                              last_dunned_on, opened_on, closed_on)
SELECT invoice_id, customer_id, item_type, ?::DATE, ?::DATE, currency, amount, amount, 0,
       NULL, ?::DATE, NULL
FROM dun_charges
"""

BLOCKED = """
SELECT customer_id, last_notice FROM dun_customers
WHERE rises AND NOT missing_rate AND overdue >= ?
  AND last_notice IS NOT NULL AND datediff('day', last_notice, ?::DATE) < ?
ORDER BY customer_id
"""

MISSING = """
SELECT customer_id FROM dun_customers WHERE rises AND missing_rate ORDER BY customer_id
"""


def _target(ladder: Ladder) -> exp.Expression:
    days = exp.Anonymous(this="datediff", expressions=[
        exp.Literal.string("day"), exp.column("due_date", table="t"),
        exp.cast(exp.Placeholder(this="as_of"), "DATE")])
    ifs = [exp.If(this=exp.GTE(this=days.copy(), expression=exp.Literal.number(
        lv.after_days + ladder.grace_days)), true=exp.Literal.number(lv.level))
        for lv in sorted(ladder.levels, key=lambda lv: -lv.level)]
    return exp.Case(ifs=ifs, default=exp.Literal.number(0))


def _template(ladder: Ladder) -> exp.Expression:
    return exp.Case(this=exp.column("new_level", table="t"), ifs=[
        exp.If(this=exp.Literal.number(lv.level), true=lv.template.sql.copy())
        for lv in ladder.levels])


def _interest_start(ladder: Ladder) -> exp.Expression:
    due = exp.column("due_date", table="t")
    parts = [exp.Coalesce(this=exp.column("interest_to", table="t"), expressions=[due.copy()])]
    if ladder.interest_from == "last_partial_payment":
        parts.append(exp.Coalesce(this=exp.column("last_paid_on", table="t"),
                                  expressions=[due.copy()]))
    return exp.Greatest(this=due, expressions=parts)


def _fee(rounding: str) -> exp.Expression:
    minor = exp.column("minor")
    pct = round_minor(exp.Mul(this=exp.cast(exp.column("amount_dunned"), "DECIMAL(38,4)"),
                              expression=exp.column("fee_percent")), minor, rounding)
    capped = exp.Least(this=pct, expressions=[exp.Coalesce(
        this=exp.column("fee_cap"), expressions=[pct.copy()])])
    return exp.Case(ifs=[
        exp.If(this=exp.not_(exp.Is(this=exp.column("fee_fixed"), expression=exp.null())),
               true=exp.column("fee_fixed")),
        exp.If(this=exp.not_(exp.Is(this=exp.column("fee_percent"), expression=exp.null())),
               true=capped)], default=exp.Literal.number(0))


def _interest(rounding: str) -> exp.Expression:
    """amount_open x annual_rate x days / basis, exact, rounded to the minor unit."""
    product = exp.Mul(this=exp.Mul(
        this=exp.cast(exp.column("amount_open"), "DECIMAL(38,4)"),
        expression=exp.cast(exp.column("annual_rate"), "DECIMAL(38,6)")),
        expression=exp.cast(exp.column("interest_days"), "DECIMAL(38,0)"))
    exact = exact_div(exp.cast(product, "DECIMAL(38,10)"), exp.column("day_basis"), 10)
    return round_minor(exact, exp.column("minor"), rounding)


def levels_table(ladder: Ladder) -> pa.Table:
    rows = ladder.levels
    money = pa.decimal128(18, 4)
    return pa.table({
        "level": pa.array([lv.level for lv in rows], pa.int64()),
        "level_id": pa.array([lv.id for lv in rows], pa.string()),
        "rule_ref": pa.array([lv.ref.rule_ref for lv in rows], pa.string()),
        "action": pa.array([lv.action for lv in rows], pa.string()),
        "fee_fixed": pa.array([lv.fee_fixed for lv in rows], money),
        "fee_percent": pa.array([lv.fee_percent for lv in rows], pa.decimal128(9, 6)),
        "fee_cap": pa.array([lv.fee_cap for lv in rows], money),
        "annual_rate": pa.array([lv.annual_rate for lv in rows], pa.decimal128(9, 6)),
        "day_basis": pa.array([lv.day_basis for lv in rows], pa.int64()),
    })


def plan(ruleset: RuleSet, ladder: Ladder) -> list[Statement]:
    client = ruleset.client
    exclude = exp.Paren(this=ladder.exclude.sql.copy()) if ladder.exclude else exp.false()
    accounts = client.accounts
    return [
        Statement("credit_rates", template(RATES, base=client.base_currency)),
        Statement("dun_items", template(ITEMS, target=_target(ladder), exclude=exclude)),
        Statement("dun_customers", template(CUSTOMERS)),
        Statement("dun_rows", template(
            ROWS, min_amount=literal(ladder.min_amount), min_days_between=ladder.min_days_between,
            template=_template(ladder), interest_start=_interest_start(ladder),
            fee=_fee(client.rounding), interest=_interest(client.rounding))),
        Statement("dun_charges", template(CHARGES)),
        Statement("journal: fee and interest entries", template(
            ENTRIES, ar_account=accounts.ar_control.default,
            fee_account=accounts.dunning_fees.default,
            interest_account=accounts.interest_income.default)),
    ]


@dataclass
class Dunned:
    notices: pa.Table
    entries: pa.Table
    problems: list[Problem]


def run(executor: Executor, ruleset: RuleSet, ladder: Ladder, as_of: dt.date) -> Dunned:
    executor.register("dun_levels", levels_table(ladder))
    *setup, charges, entries = plan(ruleset, ladder)
    for statement in setup:
        executor.execute(bind_as_of(statement.tree, as_of))
    problems = _custom(executor, ruleset, as_of)
    executor.execute(bind_as_of(charges.tree, as_of))
    notices = executor.fetch(bind_as_of(template(NOTICES), as_of))
    journal = executor.fetch(bind_as_of(entries.tree, as_of))
    for customer, last in executor.query(BLOCKED, [ladder.min_amount, as_of,
                                                   ladder.min_days_between]):
        problems.append(Problem(
            "info", "DUNNING_BLOCKED", "dunning", "customer", customer,
            f"customer {customer} has items due for a higher level, but its last notice was "
            f"on {last}, {_days(as_of - last)} ago; min_days_between is "
            f"{ladder.min_days_between}", None, ladder.ref.rule_ref,
            details={"customer_id": customer, "last_notice": last}))
    for (customer,) in executor.query(MISSING):
        problems.append(Problem(
            "warning", "FX_RATE_MISSING", "dunning", "customer", customer,
            f"customer {customer} has overdue items in a currency without a rate to "
            f"{ruleset.client.base_currency}: min_amount cannot be checked, so it is not "
            "dunned tonight", None, ladder.ref.rule_ref, details={"customer_id": customer}))
    return Dunned(notices, journal, problems)


def _custom(executor: Executor, ruleset: RuleSet, as_of: dt.date) -> list[Problem]:
    """Custom rules on tonight's notice rows, before fee and interest items are made."""
    if not ruleset.custom_rules("dunning_notices"):
        return []
    executor.execute(NOTICE_ROWS)
    problems = custom.apply(executor, ruleset, "dunning_notices", as_of)
    executor.execute(WRITE_BACK)
    return problems


def _days(delta: dt.timedelta) -> str:
    return "1 day" if delta.days == 1 else f"{delta.days} days"


def post(executor: Executor, as_of: dt.date) -> None:
    subledger.refuse_taken(executor, "dun_charges", "charge",
                           "a fee or interest item has the id of an item the subledger holds")
    executor.query(POST_LEVELS, [as_of, as_of])
    executor.query(POST_CHARGES, [as_of, as_of, as_of])


def hold_levels(ladder: Ladder | None) -> dict[int, tuple[str, str]]:
    """The levels that put a customer on credit hold while an item at or above them is
    open, each with its id and rule_ref."""
    if ladder is None:
        return {}
    return {lv.level: (lv.id, lv.ref.rule_ref) for lv in ladder.levels if lv.credit_hold}
