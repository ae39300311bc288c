"""The DSL's syntax tree: frozen records, each with its place in the rule file first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from engine.errors import SourceRef

Value = Decimal | int | str | bool | dt.date | None


@dataclass(frozen=True)
class Literal:
    ref: SourceRef
    value: Value
    type: str  # integer, decimal, string, boolean, date, null
    text: str


@dataclass(frozen=True)
class Field:
    ref: SourceRef
    parts: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Neg:
    ref: SourceRef
    operand: Node


@dataclass(frozen=True)
class Not:
    ref: SourceRef
    operand: Node


@dataclass(frozen=True)
class BinOp:
    """Arithmetic (+ - * /), comparison (== != < <= > >=) and logic (and or)."""

    ref: SourceRef
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class InList:
    ref: SourceRef
    operand: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True)
class InSet:
    """`x in EU`: a named set of client.yaml."""

    ref: SourceRef
    operand: Node
    name: str
    name_ref: SourceRef
    negated: bool


@dataclass(frozen=True)
class Between:
    ref: SourceRef
    operand: Node
    low: Node
    high: Node


@dataclass(frozen=True)
class IsNull:
    ref: SourceRef
    operand: Node
    negated: bool


@dataclass(frozen=True)
class If:
    ref: SourceRef
    cond: Node
    then: Node
    else_: Node


@dataclass(frozen=True)
class Call:
    ref: SourceRef
    name: str
    args: tuple[Node, ...]


Node = Literal | Field | Neg | Not | BinOp | InList | InSet | Between | IsNull | If | Call


def children(node: Node) -> tuple[Node, ...]:
    match node:
        case Neg(operand=o) | Not(operand=o) | IsNull(operand=o) | InSet(operand=o):
            return (o,)
        case BinOp(left=left, right=right):
            return (left, right)
        case InList(operand=o, items=items):
            return (o, *items)
        case Between(operand=o, low=low, high=high):
            return (o, low, high)
        case If(cond=c, then=t, else_=e):
            return (c, t, e)
        case Call(args=args):
            return args
    return ()
