"""credit.yaml as typed records: where a customer's limit comes from, and the decisions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from engine.config.client import percent
from engine.config.ruleset import CompiledExpr, RuleSet
from engine.errors import SourceRef


@dataclass(frozen=True)
class LimitRule:
    ref: SourceRef
    id: str
    when: CompiledExpr
    limit: Decimal


@dataclass(frozen=True)
class Override:
    ref: SourceRef
    customer_id: str
    limit: Decimal
    valid_until: dt.date

    @property
    def rule_id(self) -> str:
        return f"override:{self.customer_id}"


@dataclass(frozen=True)
class Decision:
    ref: SourceRef
    id: str
    min_utilization: Decimal  # a fraction: 1.0 is 100%
    decision: str


@dataclass(frozen=True)
class Credit:
    ref: SourceRef
    default_limit: Decimal | None
    default_ref: SourceRef | None
    count_open_items: bool
    count_open_orders: bool
    limit_rules: tuple[LimitRule, ...]
    overrides: tuple[Override, ...]
    decisions: tuple[Decision, ...]
    otherwise: str
    otherwise_ref: SourceRef


def credit_rules(ruleset: RuleSet) -> Credit | None:
    """The client's credit policy, or None when it has no credit.yaml."""
    rule_file = ruleset.files.get("credit")
    if rule_file is None:
        return None
    data, pos = rule_file.data, rule_file.pos
    exposure = data.get("exposure") or {}
    rules = tuple(
        LimitRule(pos.ref(("limit_rules", i, "id")), r["id"],
                  ruleset.expression("credit", ("limit_rules", i, "when")),
                  Decimal(str(r["limit"])))
        for i, r in enumerate(data.get("limit_rules") or []))
    overrides = tuple(
        Override(pos.ref(("overrides", i, "customer_id")), o["customer_id"],
                 Decimal(str(o["limit"])), dt.date.fromisoformat(o["valid_until"]))
        for i, o in enumerate(data.get("overrides") or []))
    decisions = tuple(
        Decision(pos.ref(("decisions", i, "id")), d["id"], percent(d["min_utilization"]),
                 d["decision"])
        for i, d in enumerate(data["decisions"]))
    default = data.get("default_limit")
    return Credit(
        pos.ref(("kind",)), Decimal(str(default)) if default is not None else None,
        pos.key_ref(("default_limit",)) if default is not None else None,
        bool(exposure.get("open_items", True)), bool(exposure.get("open_orders", True)),
        rules, overrides, decisions, data.get("otherwise", "ok"),
        pos.key_ref(("otherwise",)) if "otherwise" in data else pos.ref(("decisions",)))
