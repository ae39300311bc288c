"""Custom rules at run time: each rule is one SQL query over its table's rows.

The stage that makes a table's rows calls `apply` with the rows in a table of
that name (a temporary table, or an Arrow view for tables a rule can only read).
A rule that raises turns each row its `when` accepts into an exception row. A rule
that sets gives, for each such row, its key and the new values; they are written
back into the table by key before the next rule runs, with the rule's `rule_id`
and `rule_ref`, so the steps after it (fee items, journal entries, the credit
hold) follow the set value. Each change is also an info exception `RULE_SET`
naming the value before and after, for the auditor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from engine.config.custom import CustomRule
from engine.config.ruleset import RuleSet
from engine.dsl.compile import bind_as_of
from engine.dsl.scope import SCOPE_TABLES
from engine.exceptions import Problem
from engine.executor import Executor
from engine.stages.sql import round_minor


@dataclass(frozen=True)
class Binding:
    """How a table's rows are found while its stage runs."""

    key: tuple[str, ...]
    entity: str  # the exceptions' entity_type
    entity_id: str  # the column naming the entity
    related: dict[str, tuple[str, str]]  # prefix: (table, its column equal to t's)


_CUSTOMER = {"customer": ("state.customers", "customer_id")}
_INVOICE_ITEM = {"invoice": ("state.open_items", "invoice_id")}

BINDINGS: dict[str, Binding] = {
    "transactions": Binding(("txn_id",), "transaction", "txn_id", _CUSTOMER),
    "customers": Binding(("customer_id",), "customer", "customer_id", {}),
    "payments": Binding(("payment_id",), "payment", "payment_id", _CUSTOMER),
    "invoices": Binding(("invoice_id",), "invoice", "invoice_id", _CUSTOMER),
    "invoice_lines": Binding(("invoice_id", "line_no"), "invoice", "invoice_id",
                             {"invoice": ("invoices", "invoice_id"), **_CUSTOMER}),
    "cash_applications": Binding(("payment_id", "invoice_id"), "payment", "payment_id",
                                 {"payment": ("payments", "payment_id"), **_INVOICE_ITEM,
                                  **_CUSTOMER}),
    "dunning_notices": Binding(("notice_id", "invoice_id"), "notice", "notice_id",
                               {**_INVOICE_ITEM, **_CUSTOMER}),
    "credit_decisions": Binding(("customer_id",), "customer", "customer_id", _CUSTOMER),
    "aging": Binding(("customer_id", "currency"), "customer", "customer_id", _CUSTOMER),
}


def joined(source: str, related: dict[str, tuple[str, str]],
           expressions: list[exp.Expression]) -> exp.Select:
    """SELECT ... FROM `source` AS t, left-joined to each related record the expressions
    name (`customer.segment` joins `customer`); `explain` asks its questions the same way."""
    used = {c.table for e in expressions for c in e.find_all(exp.Column)}
    query = exp.select().from_(exp.to_table(source).as_("t"))
    for prefix, (table, column) in related.items():
        if prefix in used:
            own = "customer_id" if prefix == "customer" else column
            query = query.join(exp.to_table(table).as_(prefix), join_type="left", on=exp.EQ(
                this=exp.column(column, table=prefix), expression=exp.column(own, table="t")))
    return query


def holding(condition: exp.Expression | None) -> exp.Expression:
    """A condition as true or false: null (a missing field) does not hold."""
    if condition is None:
        return exp.true()
    return exp.func("coalesce", exp.Paren(this=condition.copy()), exp.false())


def _clauses(rule: CustomRule) -> list[exp.Expression]:
    out = [rule.when.sql] if rule.when else []
    out += [rule.raises.message.sql] if rule.raises else []
    return out + [a.value.sql for a in rule.sets]


def statement(rule: CustomRule, rounding: str) -> exp.Expression:
    """The rule's one SQL statement (`as_of` still a placeholder)."""
    binding = BINDINGS[rule.table]
    keys = [exp.column(k, table="t").as_(k) for k in binding.key]
    query = joined(rule.table, binding.related, _clauses(rule))
    if rule.raises:
        customer = ([exp.column("customer_id", table="t").as_("customer_id")]
                    if "customer_id" in SCOPE_TABLES[rule.table][0]
                    and "customer_id" not in binding.key else [])
        query = query.select(*keys, *customer,
                             exp.column(binding.entity_id, table="t").as_("entity_id"),
                             rule.raises.message.sql.copy().as_("message"))
    else:
        values = []
        for a in rule.sets:
            value = a.value.sql.copy()
            if a.settable.money:  # set money is money: rounded to the currency's minor unit
                value = round_minor(value, exp.column("minor", table="cur"), rounding)
            sql_type = "DECIMAL(18,4)" if a.settable.type == "decimal" else "VARCHAR"
            values += [exp.cast(value, sql_type).as_(a.field),
                       exp.column(a.field, table="t").as_(f"was_{a.field}")]
        query = query.select(*keys, *values)
        if any(a.settable.money for a in rule.sets):
            query = query.join(exp.to_table("currencies").as_("cur"), on=exp.EQ(
                this=exp.column("code", table="cur"), expression=exp.column("currency",
                                                                            table="t")))
    return query.where(holding(rule.when.sql if rule.when else None)).order_by(
        *[exp.column(k, table="t") for k in binding.key])


def apply(executor: Executor, ruleset: RuleSet, table: str, as_of: dt.date) -> list[Problem]:
    """Run the rules on `table`, in order; sets are written back before the next rule."""
    problems: list[Problem] = []
    for rule in ruleset.custom_rules(table):
        rows = executor.fetch(bind_as_of(statement(rule, ruleset.client.rounding), as_of))
        if rule.raises:
            problems += _raised(rule, rows)
        else:
            problems += _set(executor, rule, rows)
    return problems


def _raised(rule: CustomRule, rows: pa.Table) -> list[Problem]:
    binding = BINDINGS[rule.table]
    out = []
    for row in rows.to_pylist():
        customer = row.get("customer_id") or (row["entity_id"] if binding.entity == "customer"
                                              else None)
        out.append(Problem(
            rule.raises.severity, rule.raises.code, "custom", binding.entity,
            str(row["entity_id"]), row["message"] or "", rule.name, rule.rule_ref,
            details={"customer_id": customer, "table": rule.table} if customer else
            {"table": rule.table}))
    return out


def _set(executor: Executor, rule: CustomRule, rows: pa.Table) -> list[Problem]:
    """Write the changed values back by key; a money value below zero, or none, is refused."""
    binding = BINDINGS[rule.table]
    keep, out = [], []
    for row in rows.to_pylist():
        entity = str(row[binding.entity_id])
        refused = [a for a in rule.sets if row[a.field] is None
                   or (a.settable.money and row[a.field] < 0)]
        if refused:
            a = refused[0]
            out.append(Problem(
                "error", "RULE_SET_REFUSED", "custom", binding.entity, entity,
                f"rule {rule.name} would set {a.field} of {_key(binding, row)} to "
                f"{_show(row[a.field])}; {a.field} is kept at {_show(row['was_' + a.field])}",
                rule.name, rule.rule_ref, details={"table": rule.table, "field": a.field}))
            continue
        changed = {a.field: (row["was_" + a.field], row[a.field]) for a in rule.sets
                   if row["was_" + a.field] != row[a.field]}
        if changed:  # a row the rule leaves as it was keeps the rule that made it
            keep.append(row)
            said = "; ".join(f"{f} from {_show(old)} to {_show(new)}"
                             for f, (old, new) in changed.items())
            out.append(Problem(
                "info", "RULE_SET", "custom", binding.entity, entity,
                f"rule {rule.name} set {said} on {_key(binding, row)}", rule.name,
                rule.rule_ref, details={"table": rule.table, **{
                    f: {"from": old, "to": new} for f, (old, new) in changed.items()}}))
    if keep:
        executor.register("custom_set", pa.Table.from_pylist(keep, schema=rows.schema))
        assignments = ", ".join([f"{a.field} = o.{a.field}" for a in rule.sets]
                                + ["rule_id = ?", "rule_ref = ?"])
        on = " AND ".join(f"{rule.table}.{k} = o.{k}" for k in binding.key)
        executor.query(f"UPDATE {rule.table} SET {assignments} FROM custom_set AS o WHERE {on}",
                       [rule.name, rule.rule_ref])
    return out


def read(executor: Executor, ruleset: RuleSet, as_of: dt.date, rows: dict[str, pa.Table],
         related: dict[str, pa.Table] | None = None) -> list[Problem]:
    """The rules on tables a rule can only read (raise), each table shown under its name
    (and `related` tables under theirs, for the rules to join)."""
    if not any(ruleset.custom_rules(name) for name in rows):
        return []
    for name, table in {**rows, **(related or {})}.items():
        executor.register(name, table)
    return [p for name in rows for p in apply(executor, ruleset, name, as_of)]


def _key(binding: Binding, row: dict) -> str:
    return " ".join(f"{k} {row[k]}" for k in binding.key)


def _show(value) -> str:
    return "no value" if value is None else str(value)
