"""credit.yaml as typed records: where a customer's limit comes from, and the decisions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from engine.config.client import percent
from engine.config.ruleset import CompiledExpr, RuleSet
from engine.errors import Diagnostic, SourceRef


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
    count_unapplied_cash: bool
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
        bool(exposure.get("unapplied_cash", True)),
        rules, overrides, decisions, data.get("otherwise", "ok"),
        pos.key_ref(("otherwise",)) if "otherwise" in data else pos.ref(("decisions",)))


def check_credit(ruleset: RuleSet) -> list[Diagnostic]:
    """Limits the money type holds, and thresholds that can all be reached."""
    credit = credit_rules(ruleset)
    if credit is None:
        return []
    out = []
    limits = [(credit.default_limit, credit.default_ref)] if credit.default_limit is not None \
        else []
    limits += [(r.limit, r.ref) for r in credit.limit_rules]
    limits += [(o.limit, o.ref) for o in credit.overrides]
    for limit, ref in limits:
        if limit.as_tuple().exponent < -4:
            out.append(Diagnostic("E601", f"limit {limit} has more than four decimal places",
                                  ref, "money has at most four: write e.g. 1000.0001"))
        if limit >= 10**14:
            out.append(Diagnostic("E601", f"limit {limit} is more than the books hold", ref,
                                  "limits stay below 100,000,000,000,000"))
    for before, after in zip(credit.decisions, credit.decisions[1:], strict=False):
        if after.min_utilization >= before.min_utilization:
            out.append(Diagnostic(
                "E602", f"threshold {after.id} ({after.min_utilization:%}) can never be reached: "
                        f"{before.id} above it catches every ratio at or over "
                        f"{before.min_utilization:%} first", after.ref,
                "list the thresholds highest first"))
    return out
