"""Invoicing and tax: the night's billable lines become numbered, taxed invoices.

The plan (pure: rules in, statements out) is a list of SQL statements:

1. `inv_candidates`: tonight's accepted lines plus the lines held back on earlier nights.
2. `inv_taxed`: each line's ship-to defaults to its customer's address, and the tax
   decision table is evaluated on it (which rule wins, how many matched, the note).
3. `inv_held`: lines no rule matched (or, under `unique`, more than one matched).
4. `inv_amounts`: the other lines with their invoice key, line number, net and exact tax.
5. `inv_lines_taxed`: tax rounded per line, or per invoice, tax code and rate with the
   difference spread by largest remainder (SPEC section 7).
6. `inv_heads`: invoices numbered per document type and year, with totals and due dates.

The run executes them in order; `outputs` reads the result tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.config.ruleset import RuleSet
from engine.config.tax import TaxRule, TaxTable, tax_table
from engine.dsl.compile import bind_as_of, exact_div, literal
from engine.exceptions import Problem
from engine.executor import Executor
from engine.stages.sql import (
    Statement,
    currency_rows,
    number_expr,
    number_pattern,
    round_minor,
    template,
    trunc_minor,
    unit_of,
)

_COLUMNS = ("txn_id, customer_id, txn_date, product_code, description, quantity, unit_price, "
            "currency, tax_category, po_number, ship_to_country, ship_to_region")

CANDIDATES = f"""
CREATE OR REPLACE TEMP TABLE inv_candidates AS
SELECT {_COLUMNS}, 'drop' AS origin, CAST(NULL AS DATE) AS held_since FROM drop_transactions
UNION ALL
SELECT {_COLUMNS}, 'held' AS origin, held_since FROM state.held_lines
WHERE txn_id NOT IN (SELECT txn_id FROM drop_transactions)
"""

TAXED = """
CREATE OR REPLACE TEMP TABLE inv_taxed AS
SELECT t.*, :rule AS tax_rule, :matches AS tax_matches, :hits AS tax_hits, :note AS tax_note
FROM (
  SELECT l.* REPLACE (coalesce(l.ship_to_country, c.country) AS ship_to_country,
                      coalesce(l.ship_to_region,
                               CASE WHEN coalesce(l.ship_to_country, c.country) = c.country
                                    THEN c.region END) AS ship_to_region),
         l.ship_to_country AS sent_ship_to_country, l.ship_to_region AS sent_ship_to_region
  FROM inv_candidates AS l JOIN state.customers AS c ON c.customer_id = l.customer_id
) AS t
JOIN state.customers AS customer ON customer.customer_id = t.customer_id
"""

HELD = """
CREATE OR REPLACE TEMP TABLE inv_held AS
SELECT * FROM inv_taxed WHERE :held
"""

AMOUNTS = """
CREATE OR REPLACE TEMP TABLE inv_amounts AS
SELECT x.*, :exact AS tax_exact
FROM (
  SELECT l.*, coalesce(l.po_number, '') AS po_key, r.code AS tax_code, r.rate AS tax_rate,
         r.rule_id, r.rule_ref, cur.minor,
         row_number() OVER (PARTITION BY l.customer_id, l.currency, coalesce(l.po_number, '')
                            ORDER BY l.txn_date, l.txn_id) AS line_no,
         :base AS base_amount
  FROM inv_taxed AS l
  JOIN tax_rules AS r ON r.idx = l.tax_rule
  JOIN currencies AS cur ON cur.code = l.currency
  WHERE NOT (:held)
) AS x
"""

LINE_TAX = """
CREATE OR REPLACE TEMP TABLE inv_lines_taxed AS
SELECT a.*, :tax AS tax_amount FROM inv_amounts AS a
"""

INVOICE_TAX = """
CREATE OR REPLACE TEMP TABLE inv_lines_taxed AS
WITH grouped AS (
  SELECT a.*,
         :group_tax AS group_tax,
         sum(:trunc) OVER g AS group_trunc,
         :trunc AS tax_trunc,
         a.tax_exact - :trunc AS tax_rem,
         :unit AS unit
  FROM (SELECT *, sum(tax_exact) OVER g2 AS exact_sum, sum(base_amount) OVER g2 AS base_sum
        FROM inv_amounts WINDOW g2 AS (PARTITION BY customer_id, currency, po_key, tax_code,
                                                   tax_rate)) AS a
  WINDOW g AS (PARTITION BY customer_id, currency, po_key, tax_code, tax_rate)
), spread AS (
  SELECT *, CAST((group_tax - group_trunc) / unit AS BIGINT) AS units FROM grouped
), ranked AS (
  SELECT *, row_number() OVER (
           PARTITION BY customer_id, currency, po_key, tax_code, tax_rate
           ORDER BY CASE WHEN units >= 0 THEN -tax_rem ELSE tax_rem END, line_no) AS rem_rank
  FROM spread
)
SELECT * EXCLUDE (group_tax, group_trunc, tax_trunc, tax_rem, unit, units, rem_rank,
                  exact_sum, base_sum),
       CAST(tax_trunc + CASE WHEN rem_rank <= abs(units) THEN sign(units) * unit ELSE 0 END
            AS DECIMAL(18,4)) AS tax_amount
FROM ranked
"""

HEADS = """
CREATE OR REPLACE TEMP TABLE inv_heads AS
SELECT h.*, :number AS invoice_id, CAST(:as_of AS DATE) AS invoice_date,
       CASE WHEN h.document_type = 'credit_note' THEN CAST(:as_of AS DATE)
            ELSE CAST(:as_of AS DATE)
                 + CAST(coalesce(c.payment_terms_days, :net_days) AS INTEGER) END AS due_date
FROM (
  SELECT *, row_number() OVER (PARTITION BY document_type
                               ORDER BY customer_id, currency, po_key) AS night_seq
  FROM (
    SELECT customer_id, currency, po_key, max(po_number) AS po_number,
           sum(net_amount) AS net_amount, sum(tax_amount) AS tax_amount,
           sum(net_amount) + sum(tax_amount) AS gross_amount,
           CASE WHEN sum(net_amount) + sum(tax_amount) < 0 THEN 'credit_note'
                ELSE 'invoice' END AS document_type
    FROM inv_lines_final GROUP BY customer_id, currency, po_key
  )
) AS h
JOIN state.customers AS c ON c.customer_id = h.customer_id
"""

FINAL = """
CREATE OR REPLACE TEMP TABLE inv_lines_final AS
SELECT *, :net AS net_amount FROM inv_lines_taxed
"""


@dataclass(frozen=True)
class Sequences:
    """Where tonight's numbering starts: the last number used, per document type."""

    year: int | None  # None: not known yet (`ruledger compile` shows {year})
    last_invoice: int
    last_credit_note: int


def _match(rule: TaxRule) -> exp.Expression:
    """The rule's condition and validity window on the line, never null."""
    cond = exp.Paren(this=rule.when.sql.copy())
    day = exp.column("txn_date", table="t")
    if rule.valid_from:
        cond = exp.and_(cond, exp.GTE(this=day, expression=literal(rule.valid_from)))
    if rule.valid_to:
        cond = exp.and_(cond, exp.LTE(this=day, expression=literal(rule.valid_to)))
    return exp.Coalesce(this=cond, expressions=[exp.false()])


def _decision(table: TaxTable) -> dict[str, exp.Expression]:
    matches = [_match(r) for r in table.rules]
    rule = exp.Case(ifs=[exp.If(this=m, true=exp.Literal.number(r.index))
                         for m, r in zip(matches, table.rules, strict=True)])
    count = exp.Literal.number(0)
    for m in matches:
        count = exp.Add(this=count, expression=exp.Case(
            ifs=[exp.If(this=m.copy(), true=exp.Literal.number(1))],
            default=exp.Literal.number(0)))
    hits = exp.Anonymous(this="CONCAT_WS", expressions=[exp.Literal.string(", "), *[
        exp.Case(ifs=[exp.If(this=m.copy(), true=exp.Literal.string(r.id))])
        for m, r in zip(matches, table.rules, strict=True)]])
    # The winning rule's note: every rule has its branch, so a rule without a note
    # gives none rather than falling through to a later rule's.
    note = exp.Case(ifs=[exp.If(this=m.copy(), true=r.note.sql.copy() if r.note else
                                exp.cast(exp.null(), "VARCHAR"))
                         for m, r in zip(matches, table.rules, strict=True)])
    return {"rule": rule, "matches": count, "hits": hits, "note": note}


def _held(table: TaxTable) -> exp.Expression:
    unmatched = exp.Is(this=exp.column("tax_rule"), expression=exp.null())
    if table.hit_policy == "unique":
        return exp.or_(unmatched, exp.GT(this=exp.column("tax_matches"),
                                         expression=exp.Literal.number(1)))
    return unmatched


def _amount_exprs(table: TaxTable, rounding: str) -> dict[str, exp.Expression]:
    """The base amount, the exact tax of a line, and its tax rounded per line."""
    col = exp.column
    product = exp.Mul(this=exp.cast(col("quantity", table="l"), "DECIMAL(38,6)"),
                      expression=exp.cast(col("unit_price", table="l"), "DECIMAL(38,6)"))
    base = round_minor(product, col("minor", table="cur"), rounding)
    base_x, rate_x = col("base_amount", table="x"), col("tax_rate", table="x")
    exact = _exact_tax(base_x, rate_x, table.prices_include_tax)
    return {"base": base, "exact": exact}


def _exact_tax(base: exp.Expression, rate: exp.Expression, included: bool) -> exp.Expression:
    """base x rate, or with prices_include_tax base x rate / (1 + rate) (10 places)."""
    product = exp.Mul(this=exp.cast(base, "DECIMAL(38,4)"), expression=exp.cast(rate,
                                                                               "DECIMAL(38,6)"))
    if not included:
        return product
    return exact_div(product, exp.Add(this=exp.Literal.number(1), expression=rate.copy()), 10)


def plan(ruleset: RuleSet, sequences: Sequences | None = None) -> list[Statement]:
    """The statements of the invoicing stage (`as_of` stays a placeholder)."""
    table = tax_table(ruleset)
    if table is None:
        return []
    client = ruleset.client
    rounding = client.rounding
    held = _held(table)
    amounts = _amount_exprs(table, rounding)
    a_minor = exp.column("minor", table="a")
    statements = [
        Statement("inv_candidates", template(CANDIDATES)),
        Statement("inv_taxed", template(TAXED, **_decision(table))),
        Statement("inv_held", template(HELD, held=held)),
        Statement("inv_amounts", template(AMOUNTS, held=held.copy(), base=amounts["base"],
                                          exact=amounts["exact"])),
    ]
    if table.rounding_level == "line":
        tax = round_minor(exp.column("tax_exact", table="a"), a_minor, rounding)
        statements.append(Statement("inv_lines_taxed", template(LINE_TAX, tax=tax)))
    else:
        group_sum = exp.column("base_sum", table="a")
        group_exact = _exact_tax(group_sum, exp.column("tax_rate", table="a"),
                                 table.prices_include_tax)
        statements.append(Statement("inv_lines_taxed", template(
            INVOICE_TAX, group_tax=round_minor(group_exact, a_minor, rounding),
            trunc=trunc_minor(exp.column("tax_exact", table="a"), a_minor),
            unit=unit_of(a_minor))))
    net = exp.column("base_amount")
    if table.prices_include_tax:
        net = exp.cast(exp.Sub(this=net, expression=exp.column("tax_amount")), "DECIMAL(18,4)")
    statements.append(Statement("inv_lines_final", template(FINAL, net=net)))
    statements.append(Statement("inv_heads", template(
        HEADS, number=_numbers(client, sequences), net_days=client.net_days)))
    return statements


def _numbers(client, sequences: Sequences | None) -> exp.Expression:
    seq = sequences or Sequences(None, 0, 0)
    year = seq.year
    night = exp.column("night_seq", table="h")

    def number(fmt: str, last: int) -> exp.Expression:
        return number_expr(fmt, year, exp.Add(this=exp.Literal.number(last), expression=night))

    return exp.Case(ifs=[exp.If(
        this=exp.EQ(this=exp.column("document_type", table="h"),
                    expression=exp.Literal.string("invoice")),
        true=number(client.invoice_format, seq.last_invoice))],
        default=number(client.credit_note_format, seq.last_credit_note))


def rules_table(ruleset: RuleSet) -> pa.Table:
    """The decision table as rows, joined to the lines by rule index."""
    table = tax_table(ruleset)
    rules = table.rules if table else ()
    return pa.table({
        "idx": pa.array([r.index for r in rules], pa.int64()),
        "rule_id": pa.array([r.id for r in rules], pa.string()),
        "rule_ref": pa.array([r.rule_ref for r in rules], pa.string()),
        "code": pa.array([r.code for r in rules], pa.string()),
        "rate": pa.array([r.rate for r in rules], pa.decimal128(9, 6)),
    })


INVOICES = """
SELECT invoice_id, document_type, customer_id, invoice_date, due_date, currency, net_amount,
       tax_amount, gross_amount, po_number
FROM inv_heads ORDER BY document_type DESC, night_seq
"""

LINES = """
SELECT h.invoice_id, l.line_no, l.txn_id, l.product_code, l.description, l.quantity,
       l.unit_price, l.net_amount, l.tax_code, l.tax_rate, l.tax_amount, l.tax_note,
       l.rule_id, l.rule_ref
FROM inv_lines_final AS l
JOIN inv_heads AS h ON h.customer_id = l.customer_id AND h.currency = l.currency
                   AND h.po_key = l.po_key
ORDER BY h.document_type DESC, h.night_seq, l.line_no
"""

HELD_ROWS = """
SELECT txn_id, customer_id, txn_date, product_code, description, quantity, unit_price, currency,
       tax_category, po_number, ship_to_country, ship_to_region, origin, held_since, tax_matches,
       tax_hits
FROM inv_held ORDER BY txn_id
"""


@dataclass
class Invoiced:
    """What the stage made: output tables, and the lines it held back."""

    invoices: pa.Table
    lines: pa.Table
    held: pa.Table
    sequences: Sequences


def sequences(executor: Executor, ruleset: RuleSet, as_of: dt.date) -> Sequences:
    """The last number used this year per document type; on a series' first use,
    the highest number of the same pattern and year among the opening items."""
    client, year = ruleset.client, as_of.year
    last = {}
    for series, fmt in (("invoice", client.invoice_format),
                        ("credit_note", client.credit_note_format)):
        rows = executor.query("SELECT last_seq FROM state.sequences WHERE series = ? AND year = ?",
                              [series, year])
        if rows:
            last[series] = rows[0][0]
            continue
        pattern = number_pattern(fmt, year)
        ids = executor.query("SELECT invoice_id FROM state.open_items WHERE item_type = 'opening'")
        found = [int(m.group(1)) for (i,) in ids if (m := pattern.match(i))]
        last[series] = max(found, default=0)
    return Sequences(year, last["invoice"], last["credit_note"])


def run(executor: Executor, ruleset: RuleSet, as_of: dt.date) -> Invoiced | None:
    """Execute the plan over `drop_transactions` and the state; read the results."""
    seq = sequences(executor, ruleset, as_of)
    statements = plan(ruleset, seq)
    if not statements:
        return None
    executor.register("tax_rules", rules_table(ruleset))
    executor.register("currencies", pa.table(dict(zip(
        ("code", "minor"), map(list, zip(*currency_rows(), strict=True)), strict=True))))
    for statement in statements:
        executor.execute(bind_as_of(statement.tree, as_of))
    return Invoiced(executor.fetch(INVOICES), executor.fetch(LINES), executor.fetch(HELD_ROWS),
                    seq)


def post(executor: Executor, invoiced: Invoiced, seq: Sequences, as_of: dt.date,
         run_id: str) -> None:
    """Tonight's invoices into the subledger: open items, numbers, processed and held lines."""
    executor.query(_OPEN)
    types = invoiced.invoices.column("document_type").to_pylist()
    for series, last in (("invoice", seq.last_invoice), ("credit_note", seq.last_credit_note)):
        if series in types:
            executor.query("INSERT OR REPLACE INTO state.sequences VALUES (?, ?, ?)",
                           [series, seq.year, last + types.count(series)])
    executor.query(_PROCESSED, [as_of, run_id])
    executor.query(_UNHOLD)
    executor.query(_HOLD, [as_of])


_OPEN = """
INSERT INTO state.open_items
SELECT invoice_id, customer_id, document_type, invoice_date, due_date, currency, gross_amount,
       gross_amount, 0, NULL, invoice_date, CASE WHEN gross_amount = 0 THEN invoice_date END
FROM inv_heads"""
_PROCESSED = """
INSERT INTO state.processed_ids SELECT 'txn', txn_id, ?, ? FROM inv_lines_final"""
# Every held line was a candidate tonight: the held set becomes tonight's inv_held.
_UNHOLD = """
DELETE FROM state.held_lines"""
_HELD_COLUMNS = _COLUMNS.replace("ship_to_country, ship_to_region",
                                 "sent_ship_to_country, sent_ship_to_region")
_HOLD = f"""
INSERT INTO state.held_lines
SELECT {_HELD_COLUMNS}, coalesce(held_since, ?) FROM inv_held"""


def held_problems(held: pa.Table, table: TaxTable) -> list[Problem]:
    """An error for every line held back: no rule matched, or two under `unique`."""
    out = []
    for line in held.to_pylist():
        where = (f"customer {line['customer_id']}, ship to {line['ship_to_country']}"
                 + (f" {line['ship_to_region']}" if line["ship_to_region"] else "")
                 + f", category {line['tax_category']}, dated {line['txn_date']}")
        since = line["held_since"] or "tonight"
        details = {"txn_id": line["txn_id"], "held_since": line["held_since"],
                   "customer_id": line["customer_id"], "ship_to_country": line["ship_to_country"],
                   "ship_to_region": line["ship_to_region"],
                   "tax_category": line["tax_category"], "txn_date": line["txn_date"]}
        if line["tax_matches"] > 1:
            out.append(Problem(
                "error", "TAX_AMBIGUOUS", "invoicing", "transaction", line["txn_id"],
                f"rules {line['tax_hits']} of tax.yaml all match line {line['txn_id']} ({where})"
                f" under hit_policy unique; held back since {since}, retried every night",
                rule_id=line["tax_hits"].split(", ")[0], rule_ref=table.ref.rule_ref,
                details={**details, "matched": line["tax_hits"].split(", ")}))
        else:
            out.append(Problem(
                "error", "TAX_NO_RULE", "invoicing", "transaction", line["txn_id"],
                f"no rule of tax.yaml matches line {line['txn_id']} ({where}); held back since "
                f"{since}, retried every night", rule_ref=table.ref.rule_ref, details=details))
    return out


def future_problems(transactions: pa.Table, as_of: dt.date) -> list[Problem]:
    """A warning for each line dated after the night: it is billed, by its own date's rules."""
    out = []
    future = transactions.filter(pc.greater(transactions.column("txn_date"), as_of))
    for line in future.select(["txn_id", "txn_date"]).to_pylist():
        if line["txn_date"] > as_of:
            out.append(Problem(
                "warning", "FUTURE_DATED", "invoicing", "transaction", line["txn_id"],
                f"line {line['txn_id']} is dated {line['txn_date']}, after the as-of date "
                f"{as_of}; it is invoiced tonight under the tax rules of its own date",
                details={"txn_id": line["txn_id"], "txn_date": line["txn_date"]}))
    return out
