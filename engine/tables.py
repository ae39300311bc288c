"""The canonical Arrow schema of every input and output table (SPEC sections 2 and 5).

A required input column is a non-nullable field. Money is decimal128 with four
places, enough for every ISO 4217 minor unit (CLF has four); amounts are
rounded to their currency's own minor unit by the stages, never stored as float.
The JSON Schemas of the tables under `schemas/tables/` are written from here by
`python -m engine.tables` and a test keeps them in step.
"""

from __future__ import annotations

import pyarrow as pa

MONEY = pa.decimal128(18, 4)
QUANTITY = pa.decimal128(18, 6)
PRICE = pa.decimal128(18, 6)
RATE = pa.decimal128(18, 8)
TAX_RATE = pa.decimal128(9, 6)
UTILIZATION = pa.decimal128(18, 4)
STRING = pa.string()
DATE = pa.date32()
INT = pa.int64()
BOOL = pa.bool_()


def _schema(*fields: tuple[str, pa.DataType, bool], doc: str = "") -> pa.Schema:
    """Columns as (name, type, required); required columns are non-nullable."""
    return pa.schema(
        [pa.field(name, typ, nullable=not required) for name, typ, required in fields],
        metadata={"doc": doc} if doc else None,
    )


INPUTS: dict[str, pa.Schema] = {
    "customers": _schema(
        ("customer_id", STRING, True),
        ("name", STRING, True),
        ("country", STRING, True),
        ("region", STRING, False),
        ("segment", STRING, False),
        ("currency", STRING, True),
        ("payment_terms_days", INT, False),
        ("vat_id", STRING, False),
        ("tax_exempt", BOOL, False),
        ("exemption_id", STRING, False),
        ("email", STRING, False),
        doc="Customers: full or changed rows; later rows update earlier ones.",
    ),
    "transactions": _schema(
        ("txn_id", STRING, True),
        ("customer_id", STRING, True),
        ("txn_date", DATE, True),
        ("product_code", STRING, True),
        ("description", STRING, False),
        ("quantity", QUANTITY, True),
        ("unit_price", PRICE, True),
        ("currency", STRING, True),
        ("tax_category", STRING, False),
        ("po_number", STRING, False),
        ("ship_to_country", STRING, False),
        ("ship_to_region", STRING, False),
        doc="Billable lines, each billed once.",
    ),
    "payments": _schema(
        ("payment_id", STRING, True),
        ("received_on", DATE, True),
        ("amount", MONEY, True),
        ("currency", STRING, True),
        ("customer_id", STRING, False),
        ("payer_name", STRING, False),
        ("reference", STRING, False),
        doc="Receipts from the bank or lockbox.",
    ),
    "disputes": _schema(
        ("invoice_id", STRING, True),
        ("opened_on", DATE, True),
        ("status", STRING, True),
        ("reason", STRING, False),
        doc="Dispute events; the latest status per invoice stands.",
    ),
    "open_orders": _schema(
        ("order_id", STRING, True),
        ("customer_id", STRING, True),
        ("currency", STRING, True),
        ("amount", MONEY, True),
        doc="Accepted but not yet billed orders, full list each night.",
    ),
    "fx_rates": _schema(
        ("rate_date", DATE, True),
        ("from_currency", STRING, True),
        ("to_currency", STRING, True),
        ("rate", RATE, True),
        doc="Units of to_currency for one from_currency.",
    ),
    "opening_items": _schema(
        ("invoice_id", STRING, True),
        ("customer_id", STRING, True),
        ("invoice_date", DATE, True),
        ("due_date", DATE, True),
        ("currency", STRING, True),
        ("amount_open", MONEY, True),
        ("dunning_level", INT, False),
        ("last_dunned_on", DATE, False),
        doc="AR carried over from before the client's first night.",
    ),
}

# The id column of each input table: a repeat within one drop is rejected.
INPUT_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "transactions": ("txn_id",),
    "payments": ("payment_id",),
    "open_orders": ("order_id",),
    "fx_rates": ("rate_date", "from_currency", "to_currency"),
    "opening_items": ("invoice_id",),
}

_RULE = (("rule_id", STRING, False), ("rule_ref", STRING, False))
_RUN = (("run_id", STRING, True),)

OUTPUTS: dict[str, pa.Schema] = {
    "invoices": _schema(
        ("invoice_id", STRING, True),
        ("document_type", STRING, True),
        ("customer_id", STRING, True),
        ("invoice_date", DATE, True),
        ("due_date", DATE, True),
        ("currency", STRING, True),
        ("net_amount", MONEY, True),
        ("tax_amount", MONEY, True),
        ("gross_amount", MONEY, True),
        ("po_number", STRING, False),
        *_RUN,
    ),
    "invoice_lines": _schema(
        ("invoice_id", STRING, True),
        ("line_no", INT, True),
        ("txn_id", STRING, True),
        ("product_code", STRING, True),
        ("description", STRING, False),
        ("quantity", QUANTITY, True),
        ("unit_price", PRICE, True),
        ("net_amount", MONEY, True),
        ("tax_code", STRING, True),
        ("tax_rate", TAX_RATE, True),
        ("tax_amount", MONEY, True),
        ("tax_note", STRING, False),
        *_RULE,
        *_RUN,
    ),
    "cash_applications": _schema(
        ("payment_id", STRING, True),
        ("invoice_id", STRING, False),
        ("applied_amount", MONEY, True),
        ("written_off_amount", MONEY, True),
        ("discount_amount", MONEY, True),
        ("currency", STRING, True),
        ("strategy", STRING, False),
        *_RULE,
        *_RUN,
    ),
    "dunning_notices": _schema(
        ("notice_id", STRING, True),
        ("customer_id", STRING, True),
        ("invoice_id", STRING, True),
        ("level", INT, True),
        ("days_overdue", INT, True),
        ("amount_open", MONEY, True),
        ("fee_amount", MONEY, True),
        ("interest_amount", MONEY, True),
        ("action", STRING, True),
        ("template", STRING, False),
        *_RULE,
        *_RUN,
    ),
    "credit_decisions": _schema(
        ("customer_id", STRING, True),
        ("exposure", MONEY, False),
        ("credit_limit", MONEY, False),
        ("utilization", UTILIZATION, False),
        ("decision", STRING, True),
        *_RULE,
        *_RUN,
    ),
    "journal_entries": _schema(
        ("entry_id", STRING, True),
        ("line_no", INT, True),
        ("entry_date", DATE, True),
        ("account", STRING, True),
        ("debit", MONEY, True),
        ("credit", MONEY, True),
        ("currency", STRING, True),
        ("customer_id", STRING, False),
        ("document_type", STRING, True),
        ("document_id", STRING, True),
        ("memo", STRING, False),
        *_RULE,
        *_RUN,
    ),
    "aging": _schema(
        ("customer_id", STRING, False),  # empty: unapplied cash of unidentified payers
        ("currency", STRING, True),
        ("unapplied", MONEY, True),
        ("total_open", MONEY, True),
        *_RUN,
        doc="The bucket columns are the client's (see aging_schema).",
    ),
    "exceptions": _schema(
        ("exception_id", STRING, True),
        ("severity", STRING, True),
        ("code", STRING, True),
        ("stage", STRING, True),
        ("entity_type", STRING, False),
        ("entity_id", STRING, False),
        ("message", STRING, True),
        *_RULE,
        ("details", STRING, False),
        *_RUN,
    ),
    "rejects": _schema(
        ("source_file", STRING, True),
        ("row_number", INT, True),
        ("column", STRING, False),
        ("value", STRING, False),
        ("reason", STRING, True),
        *_RUN,
    ),
}


def aging_schema(bucket_names: list[str]) -> pa.Schema:
    """The aging table for a client's buckets: one money column per bucket."""
    base = OUTPUTS["aging"]
    buckets = [pa.field(name, MONEY, nullable=False) for name in bucket_names]
    fields = [base.field("customer_id"), base.field("currency"), *buckets]
    fields += [base.field(n) for n in ("unapplied", "total_open", "run_id")]
    return pa.schema(fields)


def required_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if not f.nullable]


def json_schema(name: str, schema: pa.Schema, kind: str) -> dict:
    """The JSON Schema (draft 2020-12) of one row of a table."""
    properties = {}
    for f in schema:
        prop = _json_type(f.type)
        if f.nullable:
            prop["type"] = [prop["type"], "null"] if isinstance(prop["type"], str) else [
                *prop["type"], "null"]
        properties[f.name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://ruledger.dev/schemas/tables/{name}.schema.json",
        "title": f"{name} ({kind} table), one row",
        "description": (schema.metadata or {}).get(b"doc", b"").decode() or name,
        "type": "object",
        "required": required_columns(schema),
        "additionalProperties": False,
        "properties": properties,
    }


def _json_type(t: pa.DataType) -> dict:
    if pa.types.is_decimal(t):
        return {"type": "string", "pattern": rf"^-?\d+(\.\d{{1,{t.scale}}})?$",
                "description": f"decimal({t.precision},{t.scale}), written as text"}
    if pa.types.is_integer(t):
        return {"type": "integer"}
    if pa.types.is_boolean(t):
        return {"type": "boolean"}
    if pa.types.is_date(t):
        return {"type": "string", "format": "date"}
    return {"type": "string"}


def write_json_schemas(folder: str) -> list[str]:
    import json
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, group in (("input", INPUTS), ("output", OUTPUTS)):
        for name, schema in group.items():
            path = out / f"{name}.schema.json"
            path.write_text(json.dumps(json_schema(name, schema, kind), indent=2) + "\n")
            written.append(str(path))
    return written


if __name__ == "__main__":
    import sys

    print("\n".join(write_json_schemas(sys.argv[1] if len(sys.argv) > 1 else "schemas/tables")))
