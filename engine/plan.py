"""A RuleSet to the SQL a run executes, for `ruledger compile` to show.

Planning is pure: rules in, sqlglot trees out; `render` picks the dialect.
"""

from __future__ import annotations

from pathlib import Path

from engine import tables
from engine.checks import checked_query
from engine.config.credit import credit_rules
from engine.config.dunning import dunning_rules
from engine.config.matching import matching_rules
from engine.config.ruleset import RuleSet, load_ruleset
from engine.config.tax import tax_table
from engine.dsl.compile import to_sql
from engine.stages import aging, cash, credit, custom, dunning, invoicing, journal


def ingest_statements(ruleset: RuleSet) -> dict[str, object]:
    """The statement that types and checks each input table (all columns present)."""
    out = {}
    for table, schema in tables.INPUTS.items():
        mapping = ruleset.client.inputs.get(table)
        out[table] = checked_query(f"raw_{table}", table, list(schema.names), mapping, ruleset)
    return out


def compiled_sql(rules_dir: Path, dialect: str) -> str:
    """Every compiled expression and statement of a client, rendered in `dialect`."""
    ruleset = load_ruleset(rules_dir)
    lines = [f"-- ruledger compile {rules_dir} --dialect {dialect}",
             f"-- client {ruleset.client.id}, rules digest {ruleset.digest}", ""]
    for e in sorted(ruleset.expressions, key=lambda e: (e.ref.file, e.ref.line, e.ref.col)):
        lines.append(f"-- {e.ref} {e.where} ({e.type}): {e.text}")
        lines.append(to_sql(e.sql, dialect) + ";")
        lines.append("")
    for table, statement in ingest_statements(ruleset).items():
        lines.append(f"-- ingest {table}: type and check every row")
        lines.append(to_sql(statement, dialect, pretty=True) + ";")
        lines.append("")
    table = tax_table(ruleset)
    stage = invoicing.plan(ruleset, table) if table else []
    if stage:
        lines.append("-- invoicing: numbers start after the year's last number in the state "
                     "store (shown from 0)")
    for statement in stage:
        lines.append(f"-- invoicing {statement.name}")
        lines.append(to_sql(statement.tree, dialect, pretty=True) + ";")
        lines.append("")
    if stage:
        lines.append("-- journal: invoice entries")
        lines.append(to_sql(journal.invoice_entries(ruleset), dialect, pretty=True) + ";")
        lines.append("")
    matching = matching_rules(ruleset)
    if matching:
        lines.append("-- cash application: a reference or amount strategy repeats its round "
                     "while an earlier payment holds an item another payment picked; a "
                     "combination strategy's set comes from a bounded search in Python")
        for statement in cash.plan(ruleset, matching):
            lines.append(f"-- cash {statement.name}")
            lines.append(to_sql(statement.tree, dialect, pretty=True) + ";")
            lines.append("")
        lines.append("-- journal: payment entries")
        lines.append(to_sql(journal.cash_entries(ruleset), dialect, pretty=True) + ";")
        lines.append("")
    ladder = dunning_rules(ruleset)
    if ladder:
        for statement in dunning.plan(ruleset, ladder):
            lines.append(f"-- dunning {statement.name}")
            lines.append(to_sql(statement.tree, dialect, pretty=True) + ";")
            lines.append("")
    policy = credit_rules(ruleset)
    if policy:
        lines.append("-- credit: every override is shown; a run keeps those valid on its night")
        for statement in credit.plan(ruleset, policy, None,
                                     tuple(dunning.hold_levels(ladder))):
            lines.append(f"-- credit {statement.name}")
            lines.append(to_sql(statement.tree, dialect, pretty=True) + ";")
            lines.append("")
    lines.append("-- aging")
    lines.append(to_sql(aging.query(ruleset), dialect, pretty=True) + ";")
    for rule in ruleset.custom:
        action = (f"raise {rule.raises.severity} {rule.raises.code}" if rule.raises
                  else "set " + ", ".join(a.field for a in rule.sets))
        lines.append("")
        lines.append(f"-- custom rule {rule.name} on {rule.table} ({rule.ref}): {action}"
                     + ("; the rows it gives are written back by key" if rule.sets else ""))
        lines.append(to_sql(custom.statement(rule, ruleset.client.rounding), dialect,
                            pretty=True) + ";")
    return "\n".join(lines)
