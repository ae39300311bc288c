"""dunning.yaml as a typed ladder, each knob with the place it was written."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.config.client import percent
from engine.config.ruleset import CompiledExpr, RuleSet
from engine.errors import Diagnostic, SourceRef


@dataclass(frozen=True)
class Level:
    ref: SourceRef
    id: str
    level: int
    after_days: int
    action: str
    template: CompiledExpr
    fee_fixed: Decimal | None
    fee_percent: Decimal | None
    fee_cap: Decimal | None
    annual_rate: Decimal | None  # a fraction: 0.1027
    day_basis: int  # 365 or 360
    credit_hold: bool


@dataclass(frozen=True)
class Ladder:
    ref: SourceRef
    grace_days: int
    min_amount: Decimal
    min_days_between: int
    interest_from: str  # due_date or last_partial_payment
    exclude: CompiledExpr | None
    levels: tuple[Level, ...]  # level 1 first

    def reached(self, days_past_due: int) -> int:
        """The highest level whose after_days + grace_days `days_past_due` reaches."""
        return max((lv.level for lv in self.levels
                    if days_past_due >= lv.after_days + self.grace_days), default=0)


def dunning_rules(ruleset: RuleSet) -> Ladder | None:
    """The client's ladder, or None when it has no dunning.yaml."""
    rule_file = ruleset.files.get("dunning")
    if rule_file is None:
        return None
    data, pos = rule_file.data, rule_file.pos
    levels = []
    for i, lv in enumerate(data["levels"]):
        path = ("levels", i)
        fee = lv.get("fee") or {}
        interest = lv.get("interest") or {}
        levels.append(Level(
            pos.ref(path + ("id",)), lv["id"], int(lv["level"]), int(lv["after_days"]),
            lv["action"], ruleset.expression("dunning", path + ("template",)),
            Decimal(str(fee["fixed"])) if "fixed" in fee else None,
            percent(fee["percent"]) if "percent" in fee else None,
            Decimal(str(fee["cap"])) if "cap" in fee else None,
            percent(interest["annual_rate"]) if interest else None,
            360 if interest.get("day_basis") == "act/360" else 365,
            bool(lv.get("credit_hold", False))))
    exclude = ruleset.expression("dunning", ("exclude",)) if "exclude" in data else None
    return Ladder(pos.ref(("kind",)), int(data["grace_days"]), Decimal(str(data["min_amount"])),
                  int(data["min_days_between"]), data.get("interest_from", "due_date"),
                  exclude, tuple(sorted(levels, key=lambda lv: lv.level)))


def check_dunning(ruleset: RuleSet) -> list[Diagnostic]:
    """The ladder climbs: levels 1, 2, 3, ... once each, each later than the one before."""
    ladder = dunning_rules(ruleset)
    if ladder is None:
        return []
    out = []
    for n, lv in enumerate(ladder.levels, 1):
        if lv.level != n:
            twice = any(other.level == lv.level for other in ladder.levels[:n - 1])
            out.append(Diagnostic(
                "E701", f"level {lv.level} ({lv.id}) is " + (
                    "given twice" if twice else f"where level {n} should be"), lv.ref,
                "number the levels 1, 2, 3, ... without gaps: an item climbs one level a night"))
    for before, after in zip(ladder.levels, ladder.levels[1:], strict=False):
        if after.after_days <= before.after_days:
            out.append(Diagnostic(
                "E702", f"level {after.level} ({after.id}) starts after {after.after_days} days, "
                        f"not later than level {before.level} ({before.after_days} days)",
                after.ref, "after_days must grow with the level"))
    return out
