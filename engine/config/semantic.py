"""Checks of a client.yaml that a JSON Schema cannot express, each a small pass."""

from __future__ import annotations

import re
from collections.abc import Callable

from engine import tables
from engine.config.client import ClientConfig
from engine.errors import Diagnostic, did_you_mean
from engine.money import is_currency

_SEQ = re.compile(r"\{seq(?::0(\d+))?\}")
_FIELD = re.compile(r"\{([^{}]*)\}")


def check_currency(client: ClientConfig) -> list[Diagnostic]:
    if is_currency(client.base_currency):
        return []
    return [Diagnostic("E130", f"unknown currency {client.base_currency}",
                       client.ref, "use an ISO 4217 code such as EUR or USD")]


def check_numbering(client: ClientConfig) -> list[Diagnostic]:
    out = []
    formats = (("invoice", client.invoice_format), ("credit_note", client.credit_note_format))
    for name, fmt in formats:
        unknown = [f for f in _FIELD.findall(fmt) if f != "year" and not _SEQ.fullmatch(f"{{{f}}}")]
        for f in unknown:
            out.append(Diagnostic("E131", f"unknown placeholder {{{f}}} in the {name} number "
                                          "format", client.refs.get("invoice_numbering"),
                                  "use {year} and {seq} or {seq:06}"))
    if client.invoice_format == client.credit_note_format:
        out.append(Diagnostic("E132", "invoices and credit notes need different number formats",
                              client.refs.get("invoice_numbering"),
                              "each document type has its own gapless series"))
    return out


def check_inputs(client: ClientConfig) -> list[Diagnostic]:
    out = []
    for mapping in client.inputs.values():
        canonical = tables.INPUTS[mapping.table].names
        for _source, target in mapping.rename:
            if target not in canonical:
                out.append(Diagnostic("E133", f"rename target {target} is not a column of "
                                              f"{mapping.table}", mapping.ref,
                                      did_you_mean(target, canonical)))
        for comp in mapping.computed:
            if comp.column not in canonical:
                out.append(Diagnostic("E133", f"computed column {comp.column} is not a column "
                                              f"of {mapping.table}", comp.ref,
                                      did_you_mean(comp.column, canonical)))
    return out


_DATE_DIRECTIVES = set("dmyYbBjeHMS%")


def check_date_formats(client: ClientConfig) -> list[Diagnostic]:
    """A date_format may only use directives both Python and the SQL engine read."""
    out = []
    for mapping in client.inputs.values():
        fmt = mapping.date_format
        if not fmt:
            continue
        used = re.findall(r"%(.)", fmt)
        bad = [d for d in used if d not in _DATE_DIRECTIVES]
        if bad or not {"d", "m"} <= set(used) or not {"Y", "y"} & set(used):
            out.append(Diagnostic(
                "E135", f"date_format {fmt!r} of {mapping.table} is not a day-month-year format "
                        "the engine can read", mapping.ref,
                "use %d, %m and %Y (also %y, %b, %B, %j, %e, %H, %M, %S), e.g. %d.%m.%Y"))
    return out


def check_buckets(client: ClientConfig) -> list[Diagnostic]:
    out = []
    buckets = client.aging_buckets
    previous = None
    for i, bucket in enumerate(buckets):
        last = i == len(buckets) - 1
        if bucket.max_days is None and not last:
            out.append(Diagnostic("E134", f"bucket {bucket.name} has no max_days but is not the "
                                          "last", bucket.ref, "only the last bucket is open-ended"))
        if last and bucket.max_days is not None:
            out.append(Diagnostic("E134", f"the last bucket {bucket.name} must be open-ended",
                                  bucket.ref, "leave out max_days on the last bucket"))
        if previous is not None and bucket.max_days is not None and bucket.max_days <= previous:
            out.append(Diagnostic("E134", f"bucket {bucket.name} does not come after the one "
                                          "before it", bucket.ref, "max_days must increase"))
        previous = bucket.max_days if bucket.max_days is not None else previous
    names = [b.name for b in buckets]
    for i, name in enumerate(names):
        if name in names[:i]:
            out.append(Diagnostic("E134", f"bucket name {name} is used twice", buckets[i].ref,
                                  "each bucket is a column of aging: give it its own name"))
    for reserved in ("customer_id", "currency", "unapplied", "total_open", "run_id"):
        if reserved in names:
            out.append(Diagnostic("E134", f"bucket name {reserved} is taken by a column",
                                  buckets[names.index(reserved)].ref))
    return out


CLIENT_CHECKS: tuple[Callable[[ClientConfig], list[Diagnostic]], ...] = (
    check_currency, check_numbering, check_inputs, check_date_formats, check_buckets,
)
