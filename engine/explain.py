"""`ruledger explain`: for one invoice, payment or customer, every rule tried and its answer.

The night is run for real, but in a sandbox: on a copy of the client's state
(the state from before the night, when the night is its latest), with outputs in
a temporary folder, so nothing of the client's changes. Before the sandbox run
commits, each rule's condition is evaluated again on the one record, in the same
connection and with the same compiled SQL the stages used, and the record's
output rows say what the rules produced.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from engine import safety
from engine.config.credit import credit_rules
from engine.config.dunning import dunning_rules
from engine.config.matching import matching_rules
from engine.config.ruleset import RuleSet, load_ruleset
from engine.config.tax import tax_table
from engine.dsl.compile import bind_as_of, to_sql
from engine.errors import Diagnostic, DropRefused, RuleError
from engine.executor import DuckDBExecutor
from engine.stages import custom

KINDS = ("invoice", "payment", "customer")
_CUSTOMER = {"customer": ("state.customers", "customer_id")}


def explain(rules_dir: Path, drop_dir: Path, entity: str, as_of: dt.date,
            state_path: Path | None) -> list[str]:
    """The explanation, as lines of text."""
    kind, _, key = entity.partition(":")
    if kind not in KINDS or not key:
        raise RuleError([Diagnostic("E007", f"--entity {entity!r} is not KIND:ID",
                                    hint="e.g. invoice:NW-2026-000052, payment:P1, "
                                         "customer:C10001")])
    from engine.run import RunOptions, run_log, run_night

    ruleset = load_ruleset(rules_dir)
    state_path = state_path or Path("state") / f"{ruleset.client.id}.duckdb"
    lines: list[str] = []

    def inspect(executor: DuckDBExecutor, outputs: dict[str, pa.Table]) -> None:
        lines.extend(_EXPLAIN[kind](_Night(executor, ruleset, outputs, as_of), key))

    with tempfile.TemporaryDirectory(prefix="ruledger-explain-") as tmp:
        sandbox = Path(tmp) / "state.duckdb"
        start = _starting_state(state_path, ruleset.client.id, as_of,
                                run_log(state_path, ruleset.client.id)
                                if state_path.exists() else [])
        if start is not None:
            safety.copy_state(start, sandbox)
        run_night(RunOptions(rules_dir=rules_dir, drop_dir=drop_dir, as_of=as_of,
                             state_path=sandbox, out_root=Path(tmp) / "out",
                             keep_before=False, ruleset=ruleset, inspect=inspect))
    if not lines:
        raise DropRefused([Diagnostic("E008", f"{entity} is not in the night of {as_of}")])
    return [f"{as_of}, run in a sandbox from the client's state; nothing was posted", "",
            *lines]


def _starting_state(state_path: Path, client: str, as_of: dt.date, runs: list) -> Path | None:
    """The state the night starts from: the current one, or the one kept before it."""
    done = [r for r in runs if r.status == "done"]
    if not done or as_of > done[-1].as_of:
        return state_path if state_path.exists() else None
    if as_of == done[-1].as_of:
        before = safety.before(state_path)
        if len(done) == 1:
            return None  # the client's first night: it started from nothing
        if before.exists() and safety.state_digest(before) == done[-1].state_before:
            return before
    raise DropRefused([Diagnostic(
        "E009", f"{as_of} is not the client's latest night ({done[-1].as_of}), and the state "
                "it started from is not kept", hint="explain the latest night or a new one")])


class _Night:
    """The sandbox connection before its commit, and the night's outputs."""

    def __init__(self, executor: DuckDBExecutor, ruleset: RuleSet,
                 outputs: dict[str, pa.Table], as_of: dt.date):
        self.executor, self.ruleset, self.outputs, self.as_of = executor, ruleset, outputs, as_of
        temp = {name for (name,) in executor.query(
            "SELECT table_name FROM duckdb_tables() WHERE temporary")}
        for name, table in outputs.items():
            if name in temp:  # a stage's working table of that name (custom rules')
                executor.execute(f"DROP TABLE {name}")
            executor.register(name, table)

    def rows(self, table: str, **where: str) -> list[dict]:
        found = self.outputs.get(table)
        if found is None:
            return []
        return [r for r in found.to_pylist() if all(r.get(k) == v for k, v in where.items())]

    def holds(self, condition: exp.Expression | None, source: str,
              related: dict[str, tuple[str, str]], column: str, key: str) -> bool:
        """Does `condition` hold on a row of `source` whose `column` is `key`?"""
        if condition is None:
            return True
        query = custom.joined(source, related, [condition]).select(
            exp.func("bool_or", custom.holding(condition))).where(
            exp.EQ(this=exp.column(column, table="t"), expression=exp.Literal.string(key)))
        found = self.executor.query(to_sql(bind_as_of(query, self.as_of)))
        return bool(found and found[0][0])

    def custom(self, tables: tuple[str, ...], key: str) -> list[str]:
        """The custom rules on `tables`: whether each holds on the record, and what it did."""
        out = []
        for rule in [r for r in self.ruleset.custom if r.table in tables]:
            binding = custom.BINDINGS[rule.table]
            column = binding.entity_id if binding.entity != "customer" else "customer_id"
            if rule.table not in self.outputs:
                self.executor.register(rule.table, self._input(rule.table))
            hit = self.holds(rule.when.sql if rule.when else None, rule.table,
                             binding.related, column, key)
            made = [e for e in self.rows("exceptions", rule_id=rule.name)
                    if e["entity_id"] == key or _customer(e) == key]
            action = (f"raise {rule.raises.code}" if rule.raises
                      else "set " + ", ".join(a.field for a in rule.sets))
            said = "; ".join(e["message"] for e in made) or ("matched" if hit else "no")
            out.append(_row(rule.rule_ref, f"{rule.name} on {rule.table} ({action})",
                            "yes" if hit else "no", said if hit else ""))
        return out

    def _input(self, table: str) -> pa.Table:
        return self.executor.fetch(f"SELECT * FROM drop_{table}") if table in (
            "transactions", "payments") else self.executor.fetch(
            "SELECT * FROM state.customers")

    def exceptions(self, key: str) -> list[str]:
        return [f"  {e['severity']:<7} {e['code']}: {e['message']}"
                + (f"  ({e['rule_ref']})" if e["rule_ref"] else "")
                for e in self.rows("exceptions")
                if e["entity_id"] == key or _customer(e) == key]


def _customer(e: dict) -> str | None:
    return json.loads(e["details"]).get("customer_id") if e.get("details") else None


def _applied(a: dict) -> str:
    """`INV 991.27`, with the discount and write-off that settled it, if any."""
    extra = [f"{what} {a[column]:.2f}" for what, column in (
        ("discount", "discount_amount"), ("written off", "written_off_amount")) if a[column]]
    return f"{a['invoice_id']} {a['applied_amount']:.2f}" + (
        f" (+ {', '.join(extra)})" if extra else "")


def _used(decision: dict, rule_id: str) -> str:
    return "-> the limit" if decision["rule_id"] == rule_id else ""


def _percent(fraction) -> str:
    return f"{(fraction * 100).normalize():f}%"


def _row(ref: str, what: str, answer: str, produced: str = "") -> str:
    return f"  {ref:<18} {what:<44} {answer:<4} {produced}".rstrip()


def _invoice(night: _Night, key: str) -> list[str]:
    invoices = night.rows("invoices", invoice_id=key)
    out = []
    if invoices:
        i = invoices[0]
        out.append(f"invoice {key}: customer {i['customer_id']}, {i['currency']} net "
                   f"{i['net_amount']:.2f}, tax {i['tax_amount']:.2f}, gross "
                   f"{i['gross_amount']:.2f}, due {i['due_date']}")
        table = tax_table(night.ruleset)
        for line in night.rows("invoice_lines", invoice_id=key):
            out += ["", f"line {line['line_no']} ({line['txn_id']}): tax.yaml, "
                        f"hit_policy {table.hit_policy}"]
            txn = night.executor.query("SELECT txn_date FROM inv_taxed WHERE txn_id = ?",
                                       [line["txn_id"]])
            day = txn[0][0] if txn else night.as_of
            for rule in table.rules:
                hit = night.holds(rule.when.sql, "inv_taxed", _CUSTOMER, "txn_id",
                                  line["txn_id"])  # the line as the tax rules saw it
                valid = rule.valid_on(day)
                produced = (f"-> {line['tax_code']} {_percent(line['tax_rate'])}, tax "
                            f"{line['tax_amount']:.2f}" if rule.id == line["rule_id"] else "")
                answer = "yes" if hit and valid else "no"
                if hit and not valid:
                    produced = f"(not valid on {day})"
                out.append(_row(rule.rule_ref, rule.id, answer, produced))
    else:
        item = night.executor.query("SELECT customer_id, currency, amount_open, dunning_level, "
                                    "due_date FROM state.open_items WHERE invoice_id = ?", [key])
        if not item:
            return []
        c, cur, amount, level, due = item[0]
        out.append(f"invoice {key} (not made tonight): customer {c}, {amount:.2f} {cur} open "
                   f"after tonight, due {due}, dunning level {level}")
    out += ["", "custom rules:"] + (night.custom(("invoices", "invoice_lines"), key)
                                    or ["  (none on invoices)"])
    cash = night.rows("cash_applications", invoice_id=key)
    out += ["", "cash applied tonight:"] + ([
        _row(a["rule_ref"] or "", f"payment {a['payment_id']} by {a['strategy']}",
             "", f"applied {a['applied_amount']:.2f}, written off "
                 f"{a['written_off_amount']:.2f}, discount {a['discount_amount']:.2f}")
        for a in cash] or ["  (none)"])
    notices = night.rows("dunning_notices", invoice_id=key)
    out += ["", "dunning tonight:"] + ([
        _row(n["rule_ref"], f"{n['rule_id']}: level {n['level']}, {n['days_overdue']} days",
             "", f"{n['notice_id']}, fee {n['fee_amount']:.2f}, interest "
                 f"{n['interest_amount']:.2f}") for n in notices] or ["  (no notice)"])
    return out + ["", "exceptions:"] + (night.exceptions(key) or ["  (none)"])


def _payment(night: _Night, key: str) -> list[str]:
    found = night.executor.query("SELECT customer_id, amount, currency, reference FROM "
                                 "drop_payments WHERE payment_id = ?", [key])
    if not found:
        return []
    customer_id, amount, currency, reference = found[0]
    out = [f"payment {key}: {amount:.2f} {currency} from {customer_id or 'an unknown payer'}, "
           f"reference {reference!r}", "", "matching.yaml strategies, in order:"]
    applied = night.rows("cash_applications", payment_id=key)
    by = {a["strategy"] for a in applied if a["invoice_id"]}
    matching = matching_rules(night.ruleset)
    for s in matching.strategies if matching else ():
        hit = night.holds(s.when.sql if s.when else None, "drop_payments", _CUSTOMER,
                          "payment_id", key)
        produced = ", ".join(_applied(a) for a in applied
                             if a["strategy"] == s.id and a["invoice_id"])
        answer = "yes" if s.id in by else "no"
        why = "" if hit else "(its when does not hold)"
        out.append(_row(s.rule_ref, f"{s.id} ({s.type})", answer,
                        f"-> {produced}" if produced else why))
    rest = [a for a in applied if not a["invoice_id"]]
    out += [f"  unapplied: {a['applied_amount']:.2f} {a['currency']}" for a in rest]
    out += ["", "custom rules:"] + (night.custom(("payments", "cash_applications"), key)
                                    or ["  (none on payments)"])
    return out + ["", "exceptions:"] + (night.exceptions(key) or ["  (none)"])


def _customer_explained(night: _Night, key: str) -> list[str]:
    known = night.executor.query("SELECT name, country, segment FROM state.customers "
                                 "WHERE customer_id = ?", [key])
    if not known:
        return []
    name, country, segment = known[0]
    out = [f"customer {key}: {name}, {country}, segment {segment or '-'}"]
    policy = credit_rules(night.ruleset)
    decided = night.rows("credit_decisions", customer_id=key)
    if policy and decided:
        d = decided[0]
        out += ["", "credit.yaml, the limit (first that applies):"]
        for o in policy.overrides:
            if o.customer_id == key:
                ok = o.valid_until >= night.as_of
                out.append(_row(o.ref.rule_ref, f"{o.rule_id} {o.limit:,.2f}", "yes" if ok
                                else "no", _used(d, o.rule_id) if ok
                                else f"(expired {o.valid_until})"))
        for rule in policy.limit_rules:
            hit = night.holds(rule.when.sql, "state.customers", {}, "customer_id", key)
            out.append(_row(rule.ref.rule_ref, f"{rule.id} {rule.limit:,.2f}",
                            "yes" if hit else "no", _used(d, rule.id)))
        if policy.default_limit is not None:
            out.append(_row(policy.default_ref.rule_ref, f"default {policy.default_limit:,.2f}",
                            "yes", _used(d, "default")))
        limit = d["credit_limit"]
        out += [] if limit is not None else ["  no limit: held"]
        out += ["", "credit.yaml, the decision (first threshold reached):"]
        for t in policy.decisions:
            reached = limit is not None and d["exposure"] >= t.min_utilization * limit
            out.append(_row(t.ref.rule_ref, f"{t.id}: {_percent(t.min_utilization)} -> "
                            f"{t.decision}", "yes" if reached else "no"))
        out.append(f"  exposure {d['exposure']:.2f}, utilization {d['utilization']}: "
                   f"{d['decision']} ({d['rule_id']}, {d['rule_ref']})")
    ladder = dunning_rules(night.ruleset)
    notices = night.rows("dunning_notices", customer_id=key)
    if ladder:
        out += ["", "dunning tonight:"] + ([
            _row(n["rule_ref"], f"{n['invoice_id']}: level {n['level']}", "",
                 f"{n['notice_id']}, fee {n['fee_amount']:.2f}") for n in notices]
            or ["  (no notice)"])
    out += ["", "custom rules:"] + (night.custom(("customers", "credit_decisions", "aging"),
                                                 key) or ["  (none on customers)"])
    return out + ["", "exceptions:"] + (night.exceptions(key) or ["  (none)"])


_EXPLAIN: dict[str, Callable[[_Night, str], list[str]]] = {
    "invoice": _invoice, "payment": _payment, "customer": _customer_explained}

