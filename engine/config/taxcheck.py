"""Checks of tax.yaml that need the rules' meaning: overlaps, dead rules, gaps in time.

Each check is a small function of the tax table returning diagnostics:
- under `unique`, two rules that a line can match at once are an error (SPEC 7);
- under `first`, a rule that an earlier rule always catches can never match (warning);
- a rule whose own condition can never hold (warning);
- a rule that follows another with the same condition but starts after a gap (warning).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable
from decimal import Decimal

from engine.config.client import Account
from engine.config.constraints import Term, terms, with_window
from engine.config.tax import TaxRule, TaxTable
from engine.dsl.compile import to_sql
from engine.errors import Diagnostic


def _terms(rule: TaxRule, sets: dict) -> tuple[Term, ...]:
    found = terms(rule.when.node, sets)
    return tuple(t for t in (with_window(t, rule.valid_from, rule.valid_to) for t in found)
                 if t.satisfiable())


def check_overlaps(table: TaxTable, sets: dict) -> list[Diagnostic]:
    if table.hit_policy != "unique":
        return []
    out = []
    rules = [(r, _terms(r, sets)) for r in table.rules]
    for i, (a, a_terms) in enumerate(rules):
        for b, b_terms in rules[i + 1:]:
            both = next((x.meet(y) for x in a_terms for y in b_terms
                         if not x.unknown and not y.unknown and x.meet(y).satisfiable()), None)
            if both is not None:
                out.append(Diagnostic(
                    "E401", f"rules {a.id} and {b.id} both match a line such as "
                            f"{both.example()}, but hit_policy is unique", b.ref,
                    f"make the conditions exclusive, or use hit_policy: first "
                    f"({a.id} is at {a.ref})"))
    return out


def check_never_match(table: TaxTable, sets: dict) -> list[Diagnostic]:
    out = []
    for rule in table.rules:
        if not _terms(rule, sets):
            out.append(Diagnostic("W402", f"rule {rule.id} can never match: its condition "
                                          "and validity window cannot both hold", rule.ref,
                                  severity="warning"))
    return out


def check_shadowed(table: TaxTable, sets: dict) -> list[Diagnostic]:
    if table.hit_policy != "first":
        return []
    out = []
    earlier: list[tuple[TaxRule, tuple[Term, ...]]] = []
    for rule in table.rules:
        mine = _terms(rule, sets)
        cover = next((e for e, e_terms in earlier
                      if mine and all(any(t.implies(w) for w in e_terms) for t in mine)), None)
        if cover is not None:
            out.append(Diagnostic(
                "W403", f"rule {rule.id} can never match: every line it matches is taken by "
                        f"the earlier rule {cover.id} (hit_policy first)", rule.ref,
                f"move it above {cover.id} ({cover.ref}) or remove it", severity="warning"))
        earlier.append((rule, mine))
    return out


def _condition_key(rule: TaxRule, sets: dict) -> str:
    """Rules with the same meaning share a key (`a and b` is `b and a`); a condition
    the analysis cannot read is keyed by its SQL text."""
    found = terms(rule.when.node, sets)
    if any(t.unknown for t in found):
        return "sql:" + to_sql(rule.when.sql)
    return repr(sorted(repr(sorted(t.fields.items())) for t in found))


def check_gaps(table: TaxTable, sets: dict) -> list[Diagnostic]:
    """Rules with the same condition, one after the other in time, must leave no gap."""
    out = []
    groups: dict[str, list[TaxRule]] = {}
    for rule in table.rules:
        groups.setdefault(_condition_key(rule, sets), []).append(rule)
    for rules in groups.values():
        for rule in rules:
            if rule.valid_from is None:
                continue
            before = [r for r in rules if r.valid_to is not None and r.valid_to < rule.valid_from]
            if not before:
                continue
            day = rule.valid_from - dt.timedelta(days=1)
            if any(r.valid_on(day) for r in rules):
                continue
            last = max(before, key=lambda r: r.valid_to)
            start = last.valid_to + dt.timedelta(days=1)
            out.append(Diagnostic(
                "W404", f"rule {rule.id} starts on {rule.valid_from}, but {last.id} with the "
                        f"same condition ends on {last.valid_to}: lines dated {start} to {day} "
                        "match neither", rule.ref,
                f"let {last.id} run to {day} or start {rule.id} on {start}", severity="warning"))
    return out


def check_rates(table: TaxTable, sets: dict) -> list[Diagnostic]:
    """A rate is kept to six places of its fraction (four of a percent)."""
    fine = Decimal("0.000001")
    return [Diagnostic("E406", f"rate {(r.rate * 100).normalize():f}% of rule {r.id} has more "
                               "than four decimal places of a percent", r.ref)
            for r in table.rules if r.rate != r.rate.quantize(fine)]


TAX_CHECKS: tuple[Callable[[TaxTable, dict], list[Diagnostic]], ...] = (
    check_overlaps, check_never_match, check_shadowed, check_gaps, check_rates,
)


def check_tax(table: TaxTable | None, sets: dict, accounts: Account | None = None,
              ) -> list[Diagnostic]:
    if table is None:
        return []
    found = [d for check in TAX_CHECKS for d in check(table, sets)]
    return found + (check_tax_accounts(table, accounts) if accounts else [])


def check_tax_accounts(table: TaxTable, accounts: Account) -> list[Diagnostic]:
    """A tax code with no account of its own books to the default: say so, once a code."""
    if not accounts.by:
        return []
    out, seen = [], set()
    for rule in table.rules:
        if rule.code in seen or rule.rate == 0:
            continue
        seen.add(rule.code)
        if not any(fnmatch.fnmatchcase(rule.code, m.key) for m in accounts.by):
            out.append(Diagnostic(
                "W405", f"tax code {rule.code} of rule {rule.id} has no account under "
                        f"accounts.tax_payable.by; its tax books to the default {accounts.default}",
                rule.ref, "map the code in client.yaml if that is not intended",
                severity="warning"))
    return out
