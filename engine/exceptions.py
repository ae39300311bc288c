"""Exception rows: business problems found while the run goes on, never raised.

Stages add `Problem`s; the run numbers them in a fixed order (stage, then entity)
so identical runs give identical exception ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from operator import attrgetter

import pyarrow as pa

from engine import tables

STAGES = ("ingest", "invoicing", "matching", "dunning", "credit", "custom", "journal")

# The codes the engine raises, with their severities (a test keeps this in step with the
# stages). A custom rule raising one of them at another severity is linted (W810).
ENGINE_CODES: dict[str, tuple[str, ...]] = {
    "AMOUNT_AMBIGUOUS": ("warning",), "CREDIT_HOLD": ("warning",),
    "CREDIT_NO_LIMIT": ("error",), "CREDIT_OVERRIDE_UNKNOWN": ("warning",),
    "CURRENCY_CHANGED": ("error",), "DUNNING_BLOCKED": ("info",), "EMPTY_FILE": ("warning",),
    "FUTURE_DATED": ("warning",), "FX_RATE_MISSING": ("warning", "error"),
    "FX_RATE_REVISED": ("warning",), "OVERPAYMENT": ("info",), "PARTIAL_PAYMENT": ("info",),
    "PAYMENT_SHORT": ("warning",), "PAYMENT_UNMATCHED": ("warning",),
    "RENAME_NOT_FOUND": ("warning",), "TAX_AMBIGUOUS": ("error",), "TAX_NO_RULE": ("error",),
    "UNKNOWN_COLUMN": ("warning",), "RULE_SET": ("info",), "RULE_SET_REFUSED": ("error",),
}


_DETAILS = json.JSONEncoder(sort_keys=True, default=str)  # one encoder for every row


@dataclass(frozen=True)
class Problem:
    severity: str  # info, warning, error
    code: str
    stage: str
    entity_type: str | None
    entity_id: str | None
    message: str
    rule_id: str | None = None
    rule_ref: str | None = None
    details: dict = field(default_factory=dict)


def in_order(problems: list[Problem]) -> list[Problem]:
    """The order exceptions are numbered in: stage, entity, code."""
    return sorted(problems, key=lambda p: (STAGES.index(p.stage), p.entity_type or "",
                                           p.entity_id or "", p.code, p.message))


def exceptions_table(problems: list[Problem], run_id: str) -> pa.Table:
    """The `exceptions` output: ids `<run_id>-000001` in stage, entity, code order."""
    return numbered_table(in_order(problems), run_id)


def numbered_table(ordered: list[Problem], run_id: str, first: int = 1) -> pa.Table:
    """The `exceptions` rows of problems already `in_order`, numbered from `first` on (for
    the stages after those numbered before)."""
    columns = {
        "exception_id": [f"{run_id}-{i:06d}" for i in range(first, first + len(ordered))],
        **{name: list(map(attrgetter(name), ordered)) for name in (
            "severity", "code", "stage", "entity_type", "entity_id", "message", "rule_id",
            "rule_ref")},
        "details": [_DETAILS.encode(p.details) if p.details else None for p in ordered],
        "run_id": [run_id] * len(ordered),
    }
    schema = tables.OUTPUTS["exceptions"]
    return pa.table([pa.array(columns[f.name], f.type) for f in schema], schema=schema)
