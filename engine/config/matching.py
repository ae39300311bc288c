"""matching.yaml as typed strategies, each knob with the place it was written."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.config.client import percent
from engine.config.ruleset import CompiledExpr, RuleSet
from engine.errors import Diagnostic, SourceRef

COMPONENTS = ("fees", "interest", "principal")


@dataclass(frozen=True)
class Tolerance:
    """How far a payment may miss the items and still settle them in full."""

    ref: SourceRef | None
    absolute: Decimal | None = None
    percent: Decimal | None = None  # a fraction of the open amount: 0.005

    def allows(self, difference: Decimal, open_amount: Decimal) -> bool:
        """`difference` (>= 0) is within the tolerance on items of `open_amount`."""
        if self.absolute is not None and difference > self.absolute:
            return False
        if self.percent is not None and difference > self.percent * open_amount:
            return False
        return self.absolute is not None or self.percent is not None or difference == 0

    def describe(self) -> str:
        parts = []
        if self.absolute is not None:
            parts.append(f"{self.absolute:,.2f}")
        if self.percent is not None:
            parts.append(f"{(self.percent * 100).normalize():f}% of the open amount")
        return " and ".join(parts) if parts else "no difference"


@dataclass(frozen=True)
class Strategy:
    ref: SourceRef
    index: int
    id: str
    type: str  # reference, amount, combination
    when: CompiledExpr | None
    tolerance: Tolerance
    on_short: str  # partial, exception
    tie_break: str  # oldest, exception (amount)
    max_items: int  # combination

    @property
    def rule_ref(self) -> str:
        return self.ref.rule_ref


@dataclass(frozen=True)
class Matching:
    ref: SourceRef
    strategies: tuple[Strategy, ...]
    components: tuple[str, ...] = COMPONENTS
    oldest_first: bool = True


def matching_rules(ruleset: RuleSet) -> Matching | None:
    """The client's strategies, or None when it has no matching.yaml."""
    rule_file = ruleset.files.get("matching")
    if rule_file is None:
        return None
    data, pos = rule_file.data, rule_file.pos
    strategies = []
    for i, s in enumerate(data["strategies"]):
        path = ("strategies", i)
        when = ruleset.expression("matching", path + ("when",)) if "when" in s else None
        tol = s.get("tolerance") or {}
        tolerance = Tolerance(
            pos.ref(path + ("tolerance",)) if "tolerance" in s else None,
            Decimal(str(tol["absolute"])) if "absolute" in tol else None,
            percent(tol["percent"]) if "percent" in tol else None)
        strategies.append(Strategy(
            pos.ref(path + ("id",)), i, s["id"], s["type"], when, tolerance,
            s.get("on_short", "exception"), s.get("tie_break", "exception"),
            int(s.get("max_items", 0))))
    order = data.get("allocation_order") or {}
    return Matching(pos.key_ref(("strategies",)), tuple(strategies),
                    tuple(order.get("components", COMPONENTS)),
                    bool(order.get("oldest_first", True)))


def check_matching(ruleset: RuleSet) -> list[Diagnostic]:
    """What the schema cannot say: knobs without effect, ids used twice, accounts missing."""
    matching = matching_rules(ruleset)
    client = ruleset.client
    out = []
    if client.discount_percent is not None and client.accounts.discount is None:
        out.append(Diagnostic(
            "E501", "payment_terms has an early-payment discount but accounts has no discount "
                    "account", client.refs.get("payment_terms"),
            "add accounts.discount: the account discounts taken are booked to"))
    if matching is None:
        return out
    seen: dict[str, Strategy] = {}
    for s in matching.strategies:
        if s.id in seen:
            out.append(Diagnostic("E502", f"strategy id {s.id} is used twice (first at "
                                          f"line {seen[s.id].ref.line})", s.ref,
                                  "give each strategy its own id: rows name it"))
        seen.setdefault(s.id, s)
        raw = ruleset.files["matching"].data["strategies"][s.index]
        if s.type != "reference" and "on_short" in raw:
            out.append(Diagnostic(
                "W503", f"on_short has no effect on the {s.type} strategy {s.id}", s.ref,
                f"a {s.type} strategy only selects items within its tolerance; a shortfall "
                "beyond it means no match, and the next strategy is tried", severity="warning"))
    return out
