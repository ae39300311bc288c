"""Invoicing and tax: the night's billable lines become numbered, taxed invoices.

The plan (pure: rules in, statements out) is a list of SQL statements:

1. `inv_candidates`: tonight's accepted lines plus the lines held back on earlier nights.
2. `inv_taxed`: each line's ship-to defaults to its customer's address, and the tax
   decision table is evaluated on it (which rule wins, how many matched, the note).
3. `inv_amounts`: each line held or not (no rule matched, or under `unique` more than
   one), with its invoice key, base amount and exact tax.
4. `inv_lines_final`: those lines as a table, evaluated once; `inv_held` takes the held
   ones out of it; then each line's number, and its tax rounded per line, or per invoice,
   tax code and rate with the difference spread by largest remainder (SPEC section 7),
   and its net.
5. `inv_heads`: invoices numbered per document type and year, with totals and due dates.

The run executes them in order; `outputs` reads the result tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from engine.config.ruleset import RuleSet
from engine.config.tax import TaxRule, TaxTable
from engine.dsl.compile import bind_as_of, exact_div, literal
from engine.errors import Diagnostic, DropRefused
from engine.exceptions import Problem
from engine.executor import Executor
from engine.stages import invoicing_sql as sql_text
from engine.stages import subledger
from engine.stages.sql import (
    MAX_AMOUNT,
    Statement,
    number_expr,
    number_parts,
    round_minor,
    template,
    trunc_minor,
    unit_of,
)


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
    """The rule that decides a line, its note, and under `unique` how many rules match it
    and which (to hold and explain a line two rules match). Under `first` the first rule
    decides and no line is held for matching two: the count and the list are null, not
    worked out for every line (at a million lines a fifth of the time of the lines' table)."""
    matches = [_match(r) for r in table.rules]
    rule = exp.Case(ifs=[exp.If(this=m, true=exp.Literal.number(r.index))
                         for m, r in zip(matches, table.rules, strict=True)])
    count: exp.Expression = exp.cast(exp.null(), "BIGINT")
    hits: exp.Expression = exp.cast(exp.null(), "VARCHAR")
    if table.hit_policy == "unique":
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
    """No rule; two rules under `unique`; or (a line held from an earlier night) a
    customer who bills in another currency by now."""
    unmatched = exp.Is(this=exp.column("tax_rule"), expression=exp.null())
    moved = exp.NEQ(this=exp.column("currency"), expression=exp.column("customer_currency"))
    if table.hit_policy == "unique":
        return exp.or_(unmatched, exp.GT(this=exp.column("tax_matches"),
                                         expression=exp.Literal.number(1)), moved)
    return exp.or_(unmatched, moved)


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


def plan(ruleset: RuleSet, table: TaxTable,
         sequences: Sequences | None = None) -> list[Statement]:
    """The statements of the invoicing stage (`as_of` stays a placeholder)."""
    client = ruleset.client
    rounding = client.rounding
    held = _held(table)
    amounts = _amount_exprs(table, rounding)
    a_minor = exp.column("minor", table="a")
    statements = [
        Statement("inv_candidates", template(sql_text.CANDIDATES)),
        Statement("inv_taxed", template(sql_text.TAXED, **_decision(table))),
        Statement("inv_amounts", template(sql_text.AMOUNTS, held=held,
                                          base=amounts["base"], exact=amounts["exact"])),
        Statement("inv_lines_final", template(sql_text.LINES_TABLE)),
        Statement("inv_held", template(sql_text.HELD)),
        Statement("inv_lines_final: the held lines out", template(sql_text.UNHELD)),
    ]
    net = exp.column("base_amount", table="o")
    if table.prices_include_tax:
        net = exp.cast(exp.Sub(this=net, expression=exp.column("tax_amount", table="o")),
                       "DECIMAL(18,4)")
    if table.rounding_level == "line":
        tax = round_minor(exp.column("tax_exact", table="a"), a_minor, rounding)
        statements.append(Statement("inv_lines_final: numbers and tax per line", template(
            sql_text.LINE_TAX, tax=tax, net=net)))
    else:
        group_sum = exp.column("base_sum", table="a")
        group_exact = _exact_tax(group_sum, exp.column("tax_rate", table="a"),
                                 table.prices_include_tax)
        statements.append(Statement("inv_lines_final: numbers and tax per invoice", template(
            sql_text.INVOICE_TAX, group_tax=round_minor(group_exact, a_minor, rounding),
            trunc=trunc_minor(exp.column("tax_exact", table="a"), a_minor),
            unit=unit_of(a_minor), net=net)))
    statements.append(Statement("inv_heads", template(
        sql_text.HEADS, number=_numbers(client, sequences), net_days=client.net_days)))
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


def rules_table(table: TaxTable) -> pa.Table:
    """The decision table as rows, joined to the lines by rule index."""
    rules = table.rules
    return pa.table({
        "idx": pa.array([r.index for r in rules], pa.int64()),
        "rule_id": pa.array([r.id for r in rules], pa.string()),
        "rule_ref": pa.array([r.rule_ref for r in rules], pa.string()),
        "code": pa.array([r.code for r in rules], pa.string()),
        "rate": pa.array([r.rate for r in rules], pa.decimal128(9, 6)),
    })


@dataclass
class Invoiced:
    """What the stage made: the invoices, how many lines they have (`LINES` reads them,
    for the caller to fetch or stream), and the lines held back."""

    invoices: pa.Table
    line_count: int
    held: pa.Table
    sequences: Sequences


LINES = sql_text.LINES  # the invoice lines, in document order


# The highest sequence among the opening items numbered `before` digits `after`.
_HIGHEST_OPENING = """
SELECT max(TRY_CAST(seq AS BIGINT)) FROM (  -- a longer number can never be one of ours
  SELECT substr(invoice_id, ?3, length(invoice_id) - ?4) AS seq FROM state.open_items
  WHERE item_type = 'opening' AND starts_with(invoice_id, ?1) AND ends_with(invoice_id, ?2)
    AND length(invoice_id) > ?4)
WHERE regexp_full_match(seq, '[0-9]+')"""


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
        before, _width, after = number_parts(fmt, year)
        rows = executor.query(_HIGHEST_OPENING, [before, after, len(before) + 1,
                                                len(before) + len(after)])
        last[series] = rows[0][0] or 0
    return Sequences(year, last["invoice"], last["credit_note"])


def run(executor: Executor, ruleset: RuleSet, table: TaxTable, as_of: dt.date) -> Invoiced:
    """Execute the plan over `drop_transactions` and the state; read the results."""
    seq = sequences(executor, ruleset, as_of)
    executor.register("tax_rules", rules_table(table))
    for statement in plan(ruleset, table, seq):
        executor.execute(bind_as_of(statement.tree, as_of))
    _refuse_overflow(executor)
    lines = executor.query("SELECT count(*) FROM inv_lines_final")[0][0]
    return Invoiced(executor.fetch(sql_text.INVOICES), lines, executor.fetch(sql_text.HELD_ROWS),
                    seq)




def _refuse_overflow(executor: Executor) -> None:
    """A document past what the books hold stops the night with a clear message."""
    rows = executor.query("SELECT customer_id, currency, po_key, gross_amount FROM inv_heads "
                          "WHERE abs(gross_amount) >= ? ORDER BY ALL LIMIT 5", [MAX_AMOUNT])
    if rows:
        raise DropRefused([Diagnostic(
            "E321", f"the invoice of customer {c} in {cur}" + (f" for PO {po}" if po else "")
                    + f" would total {gross:,.2f}, more than the books hold",
            hint=f"amounts stay below {MAX_AMOUNT:,}; split the lines over several POs")
            for c, cur, po, gross in rows])


def post(executor: Executor, invoiced: Invoiced, seq: Sequences, as_of: dt.date,
         run_id: str) -> None:
    """Tonight's invoices into the subledger: open items, numbers, processed and held lines."""
    subledger.refuse_taken(
        executor, "inv_heads", "document",
        "the state's number sequence is behind the numbers the subledger holds (was "
        "state.sequences restored from an older copy?); the numbers go on from "
        "state.sequences",
        "invoice_format and credit_note_format of client.yaml give an invoice and a "
        "credit note the same number; make them differ in a letter")
    executor.query(sql_text.OPEN)
    types = invoiced.invoices.column("document_type").to_pylist()
    for series, last in (("invoice", seq.last_invoice), ("credit_note", seq.last_credit_note)):
        if series in types:
            executor.query("INSERT OR REPLACE INTO state.sequences VALUES (?, ?, ?)",
                           [series, seq.year, last + types.count(series)])
    executor.query(sql_text.PROCESSED, [as_of, run_id])
    executor.query(sql_text.UNHOLD)
    executor.query(sql_text.HOLD, [as_of])


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
        if line["currency"] != line["customer_currency"]:
            out.append(Problem(
                "error", "CURRENCY_CHANGED", "invoicing", "transaction", line["txn_id"],
                f"line {line['txn_id']} is in {line['currency']}, but customer "
                f"{line['customer_id']} bills in {line['customer_currency']} now; held back "
                f"since {since}: send it again in {line['customer_currency']}",
                details=details))
        elif (line["tax_matches"] or 0) > 1:  # counted under hit_policy unique only
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


def future_problems(executor: Executor, as_of: dt.date) -> list[Problem]:
    """A warning for each line of the drop dated after the night: it is billed, by its
    own date's rules."""
    return [Problem(
        "warning", "FUTURE_DATED", "invoicing", "transaction", txn_id,
        f"line {txn_id} is dated {txn_date}, after the as-of date {as_of}; it is invoiced "
        "tonight under the tax rules of its own date",
        details={"txn_id": txn_id, "txn_date": txn_date})
        for txn_id, txn_date in executor.query(
            "SELECT txn_id, txn_date FROM drop_transactions WHERE txn_date > ? "
            "ORDER BY __file, __row", [as_of])]
