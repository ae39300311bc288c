"""What a DSL expression can see: the row, its related records, client.*, as_of.

Field types come from the canonical Arrow schemas in `engine.tables`, so the
type checker and the tables can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from engine import tables
from engine.dsl.ast import Value

# DSL types: integer, decimal, string, boolean, date, null (a null literal only).
NUMERIC = ("integer", "decimal")


def dsl_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_decimal(arrow_type):
        return "decimal"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_date(arrow_type):
        return "date"
    return "string"


def fields_of(schema: pa.Schema) -> dict[str, str]:
    return {f.name: dsl_type(f.type) for f in schema if f.name != "run_id"}


def _scales(schema: pa.Schema | None, prefix: str = "") -> dict[str, int]:
    if schema is None:
        return {}
    return {prefix + f.name: f.type.scale for f in schema if pa.types.is_decimal(f.type)}


# Decimal places of each decimal field, so arithmetic can be typed exactly in SQL.
_MONEY_SCALE = tables.MONEY.scale
_TABLE_OF: dict[str, pa.Schema] = {**tables.INPUTS, **tables.OUTPUTS}


OPEN_ITEM_FIELDS: dict[str, str] = {
    "invoice_id": "string", "customer_id": "string", "item_type": "string",
    "invoice_date": "date", "due_date": "date", "currency": "string",
    "amount_original": "decimal", "amount_open": "decimal", "dunning_level": "integer",
    "last_dunned_on": "date",
}

_CUSTOMER = fields_of(tables.INPUTS["customers"])

# scope name: (the row's fields, {prefix: related record's fields})
SCOPE_TABLES: dict[str, tuple[dict[str, str], dict[str, dict[str, str]]]] = {
    "transactions": (fields_of(tables.INPUTS["transactions"]), {"customer": _CUSTOMER}),
    "customers": (_CUSTOMER, {}),
    "payments": (fields_of(tables.INPUTS["payments"]), {"customer": _CUSTOMER}),
    "open_items": (OPEN_ITEM_FIELDS, {"customer": _CUSTOMER}),
    "invoices": (fields_of(tables.OUTPUTS["invoices"]), {"customer": _CUSTOMER}),
    "invoice_lines": (fields_of(tables.OUTPUTS["invoice_lines"]), {
        "invoice": fields_of(tables.OUTPUTS["invoices"]), "customer": _CUSTOMER}),
    "cash_applications": (fields_of(tables.OUTPUTS["cash_applications"]), {
        "payment": fields_of(tables.INPUTS["payments"]), "invoice": OPEN_ITEM_FIELDS,
        "customer": _CUSTOMER}),
    "dunning_notices": (fields_of(tables.OUTPUTS["dunning_notices"]), {
        "invoice": OPEN_ITEM_FIELDS, "customer": _CUSTOMER}),
    "credit_decisions": (fields_of(tables.OUTPUTS["credit_decisions"]), {
        "customer": _CUSTOMER}),
    # The bucket columns are the client's own; rules see the totals.
    "aging": ({"customer_id": "string", "currency": "string", "unapplied": "decimal",
               "total_open": "decimal"}, {"customer": _CUSTOMER}),
}
# Input tables without a scope of their own see just their row.
for _name, _schema in tables.INPUTS.items():
    SCOPE_TABLES.setdefault(_name, (fields_of(_schema), {}))


@dataclass(frozen=True)
class Constant:
    type: str
    value: Value


@dataclass(frozen=True)
class Scope:
    """The names one expression may use, with their DSL types."""

    name: str
    row: Mapping[str, str]
    related: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    constants: Mapping[str, Constant] = field(default_factory=dict)
    sets: Mapping[str, tuple[Value, ...]] = field(default_factory=dict)
    row_alias: str | None = None

    def scale(self, parts: tuple[str, ...]) -> int:
        """Decimal places of a decimal field (money has four)."""
        name = parts[-1]
        if len(parts) == 1:
            schema = _TABLE_OF.get(self.name)
        else:
            schema = _TABLE_OF.get({"customer": "customers", "invoice": "invoices",
                                    "payment": "payments"}.get(parts[0], ""))
        scales = _scales(schema)
        return scales.get(name, _MONEY_SCALE)

    def names(self) -> list[str]:
        """Every field name an expression may write, for did-you-mean hints."""
        out = [*self.row, "as_of", *self.constants]
        out += [f"{prefix}.{name}" for prefix, cols in self.related.items() for name in cols]
        return out

    def lookup(self, parts: tuple[str, ...]) -> str | None:
        if len(parts) == 1:
            return "date" if parts[0] == "as_of" else self.row.get(parts[0])
        if len(parts) == 2 and parts[0] in self.related:
            return self.related[parts[0]].get(parts[1])
        const = self.constants.get(".".join(parts))
        return const.type if const else None


def scope_for(name: str, constants: Mapping[str, Constant] | None = None,
              sets: Mapping[str, tuple[Value, ...]] | None = None,
              row: Mapping[str, str] | None = None, row_alias: str | None = None) -> Scope:
    """The scope named in a schema's `x-dsl` (or a computed column's table)."""
    base_row, related = SCOPE_TABLES[name]
    return Scope(name, dict(row if row is not None else base_row), related,
                 dict(constants or {}), dict(sets or {}), row_alias)
