"""What a condition says about the fields it tests, for proofs about rules.

A condition is turned into a disjunction of terms; a term is a conjunction of
per-field `Domain`s plus the atoms we cannot reason about (`unknown`). From these,
`overlap` finds a line two conditions both accept, and `implies` shows one
condition can only hold where another does. Both are sound, not complete: a
term with an unknown atom proves nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.dsl import ast

MAX_TERMS = 64
_FLIP = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class Domain:
    """The values one field may take in a term (None: no constraint of that kind)."""

    allowed: frozenset | None = None
    excluded: frozenset = frozenset()
    null: bool | None = None  # True: must be null; False: must not be
    low: Any = None
    low_open: bool = False
    high: Any = None
    high_open: bool = False

    def meet(self, other: Domain) -> Domain:
        allowed = self.allowed if other.allowed is None else (
            other.allowed if self.allowed is None else self.allowed & other.allowed)
        null = self.null if other.null is None else other.null if self.null is None else (
            self.null if self.null == other.null else "conflict")
        low, low_open = _tighter(self.low, self.low_open, other.low, other.low_open, max)
        high, high_open = _tighter(self.high, self.high_open, other.high, other.high_open, min)
        return Domain(allowed, self.excluded | other.excluded, null, low, low_open, high,
                      high_open)

    def _in_range(self, v: Any) -> bool:
        try:
            if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
                return False
            if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
                return False
        except TypeError:
            return False
        return True

    def has_range(self) -> bool:
        return self.low is not None or self.high is not None

    def satisfiable(self) -> bool:
        if self.null == "conflict":
            return False
        if self.null is True:
            return self.allowed is None and not self.has_range()
        if self.allowed is not None:
            return any(v not in self.excluded and self._in_range(v) for v in self.allowed)
        if self.low is not None and self.high is not None:
            try:
                if self.low > self.high or (self.low == self.high
                                            and (self.low_open or self.high_open)):
                    return False
            except TypeError:
                return False
        return True

    def describe(self, name: str) -> str:
        """A value this domain allows, said of `name`: `x = "AT"`, `x > 100`, `x is null`."""
        if self.null is True:
            return f"{name} is null"
        if self.allowed is not None:
            fits = sorted((v for v in self.allowed if v not in self.excluded
                           and self._in_range(v)), key=str)
            return f"{name} = {_show(fits[0]) if fits else '?'}"
        parts = []
        if self.low is not None:
            parts.append(f"{name} {'>' if self.low_open else '>='} {_show(self.low)}")
        if self.high is not None:
            parts.append(f"{name} {'<' if self.high_open else '<='} {_show(self.high)}")
        if self.excluded:
            shown = ", ".join(_show(v) for v in sorted(self.excluded, key=str))
            parts.append(f"{name} not {shown}")
        return " and ".join(parts) or (f"{name} is not null" if self.null is False
                                       else f"{name} any value")

    def within(self, wider: Domain) -> bool:
        """Every value this domain allows, `wider` allows too."""
        if wider.null is True and self.null is not True:
            return False
        if wider.null is False and self.null is not False and self.allowed is None \
                and not self.has_range():
            return False
        if wider.allowed is not None:
            if self.allowed is None:
                return False
            if any(v not in wider.allowed for v in self.allowed if v not in self.excluded
                   and self._in_range(v)):
                return False
        for v in wider.excluded:
            if v in (self.allowed if self.allowed is not None else ()) and v not in self.excluded:
                return False
            if self.allowed is None and v not in self.excluded and self._in_range(v):
                return False
        if wider.has_range():
            if self.allowed is not None:
                return all(wider._in_range(v) for v in self.allowed if v not in self.excluded)
            return _range_within(self, wider)
        return True


def _range_within(inner: Domain, outer: Domain) -> bool:
    try:
        if outer.low is not None:
            if inner.low is None or inner.low < outer.low or (
                    inner.low == outer.low and outer.low_open and not inner.low_open):
                return False
        if outer.high is not None:
            if inner.high is None or inner.high > outer.high or (
                    inner.high == outer.high and outer.high_open and not inner.high_open):
                return False
    except TypeError:
        return False
    return True


def _tighter(a, a_open, b, b_open, pick):
    if a is None:
        return b, b_open
    if b is None:
        return a, a_open
    try:
        if a == b:
            return a, a_open or b_open
        return (a, a_open) if pick(a, b) == a else (b, b_open)
    except TypeError:
        return a, a_open


def _show(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


@dataclass(frozen=True)
class Term:
    fields: dict[str, Domain] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    def meet(self, other: Term) -> Term:
        merged = dict(self.fields)
        for name, dom in other.fields.items():
            merged[name] = merged[name].meet(dom) if name in merged else dom
        return Term(merged, self.unknown + other.unknown)

    def satisfiable(self) -> bool:
        return all(d.satisfiable() for d in self.fields.values())

    def implies(self, wider: Term) -> bool:
        """Every line this term accepts, `wider` accepts (never proven with unknowns)."""
        if wider.unknown:
            return False
        return all(name in self.fields and self.fields[name].within(dom)
                   for name, dom in wider.fields.items())

    def example(self) -> str:
        """A line the term accepts, in words: `customer.country = "AT", quantity > 5`."""
        return ", ".join(d.describe(name) for name, d in sorted(self.fields.items())) or (
            "any line")


ALWAYS = (Term(),)
NEVER: tuple[Term, ...] = ()


def terms(node: ast.Node, sets: dict[str, tuple], negate: bool = False) -> tuple[Term, ...]:
    """The condition as a disjunction of terms (`negate`: of its negation)."""
    match node:
        case ast.BinOp(op="and" | "or", left=left, right=right):
            is_and = (node.op == "and") != negate
            lt, rt = terms(left, sets, negate), terms(right, sets, negate)
            if is_and:
                out = tuple(a.meet(b) for a in lt for b in rt)
            else:
                out = lt + rt
            return out if len(out) <= MAX_TERMS else (Term(unknown=("(too many cases)",)),)
        case ast.Not(operand=inner):
            return terms(inner, sets, not negate)
        case ast.Literal(value=bool() as v):
            return ALWAYS if v != negate else NEVER
    atom = _atom(node, sets, negate)
    if atom is None:
        return (Term(unknown=(_text(node, negate),)),)
    return atom


def _text(node: ast.Node, negate: bool) -> str:
    return ("not " if negate else "") + type(node).__name__


def _field(node: ast.Node) -> str | None:
    return node.name if isinstance(node, ast.Field) else None


def _value(node: ast.Node) -> tuple[bool, Any]:
    if isinstance(node, ast.Literal) and node.type != "null":
        return True, node.value
    if isinstance(node, ast.Neg) and isinstance(node.operand, ast.Literal) and \
            isinstance(node.operand.value, int | Decimal):
        return True, -node.operand.value
    return False, None


def _one(name: str, dom: Domain) -> tuple[Term, ...]:
    return (Term({name: dom}),)


def _atom(node: ast.Node, sets: dict[str, tuple], negate: bool) -> tuple[Term, ...] | None:
    match node:
        case ast.Field() as f:
            return _one(f.name, Domain(allowed=frozenset({not negate}), null=False))
        case ast.IsNull(operand=ast.Field() as f, negated=neg):
            return _one(f.name, Domain(null=(not neg) != negate))
        case ast.InList(operand=ast.Field() as f, items=items, negated=neg):
            values = [_value(i) for i in items]
            if not all(ok for ok, _ in values):
                return None
            return _membership(f.name, frozenset(v for _, v in values), neg != negate)
        case ast.InSet(operand=ast.Field() as f, name=set_name, negated=neg):
            if set_name not in sets:
                return None
            return _membership(f.name, frozenset(sets[set_name]), neg != negate)
        case ast.Between(operand=ast.Field() as f, low=low, high=high):
            (ok1, lo), (ok2, hi) = _value(low), _value(high)
            if not (ok1 and ok2):
                return None
            inside = Domain(null=False, low=lo, high=hi)
            if not negate:
                return _one(f.name, inside)
            return (Term({f.name: Domain(null=False, high=lo, high_open=True)}),
                    Term({f.name: Domain(null=False, low=hi, low_open=True)}))
        case ast.BinOp(op=op, left=left, right=right) if op in _FLIP:
            return _compare(op, left, right, negate)
    return None


def _membership(name: str, values: frozenset, outside: bool) -> tuple[Term, ...]:
    if outside:  # SQL: a null is neither in nor not in a list
        return _one(name, Domain(excluded=values, null=False))
    return _one(name, Domain(allowed=values, null=False))


def _compare(op: str, left: ast.Node, right: ast.Node, negate: bool) -> tuple[Term, ...] | None:
    name, (ok, value) = _field(left), _value(right)
    if name is None:
        name, (ok, value) = _field(right), _value(left)
        op = _MIRROR[op]
    if name is None or not ok:
        return None
    op = _FLIP[op] if negate else op
    dom = {
        "==": Domain(allowed=frozenset({value}), null=False),
        "!=": Domain(excluded=frozenset({value}), null=False),
        "<": Domain(null=False, high=value, high_open=True),
        "<=": Domain(null=False, high=value),
        ">": Domain(null=False, low=value, low_open=True),
        ">=": Domain(null=False, low=value),
    }[op]
    return _one(name, dom)


def with_window(term: Term, valid_from: dt.date | None, valid_to: dt.date | None) -> Term:
    """The term with the rule's validity window as a constraint on txn_date."""
    if valid_from is None and valid_to is None:
        return term
    window = Domain(null=False, low=valid_from, high=valid_to)
    return term.meet(Term({"txn_date": window}))

