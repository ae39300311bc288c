"""tax.yaml as a typed decision table, each rule with its place and compiled trees."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from engine.config.client import percent
from engine.config.ruleset import CompiledExpr, RuleSet
from engine.errors import SourceRef


@dataclass(frozen=True)
class TaxRule:
    ref: SourceRef
    index: int
    id: str
    when: CompiledExpr
    code: str
    rate: Decimal  # a fraction: 0.19
    valid_from: dt.date | None
    valid_to: dt.date | None
    note: CompiledExpr | None

    @property
    def rule_ref(self) -> str:
        return self.ref.rule_ref

    def valid_on(self, day: dt.date) -> bool:
        return ((self.valid_from is None or self.valid_from <= day)
                and (self.valid_to is None or day <= self.valid_to))


@dataclass(frozen=True)
class TaxTable:
    ref: SourceRef
    hit_policy: str  # first or unique
    prices_include_tax: bool
    rounding_level: str  # line or invoice
    rules: tuple[TaxRule, ...]


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def tax_table(ruleset: RuleSet) -> TaxTable | None:
    """The client's tax table, or None when it has no tax.yaml."""
    rule_file = ruleset.files.get("tax")
    if rule_file is None:
        return None
    data, pos = rule_file.data, rule_file.pos
    rules = []
    for i, rule in enumerate(data["rules"]):
        path = ("rules", i)
        note = ruleset.expression("tax", path + ("note",)) if "note" in rule else None
        rules.append(TaxRule(
            ref=pos.ref(path + ("id",)), index=i, id=rule["id"],
            when=ruleset.expression("tax", path + ("when",)), code=rule["code"],
            rate=percent(rule["rate"]), valid_from=_date(rule.get("valid_from")),
            valid_to=_date(rule.get("valid_to")), note=note))
    return TaxTable(pos.ref(("hit_policy",)), data["hit_policy"],
                    bool(data.get("prices_include_tax", False)), data["rounding_level"],
                    tuple(rules))
