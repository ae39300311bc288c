"""schemas/ agrees with engine/tables.py, and real accepted rows satisfy the JSON Schemas."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import ROOT
from jsonschema import Draft202012Validator

from engine import tables
from engine.checks import FILE, accepted_schema
from engine.config.ruleset import load_ruleset
from engine.executor import DuckDBExecutor
from engine.ingest import ingest
from engine.readers import ROW

SCHEMAS = ROOT / "schemas"


def _load(name: str) -> dict:
    return json.loads((SCHEMAS / "tables" / f"{name}.schema.json").read_text())


@pytest.mark.parametrize("name", [*tables.INPUTS, *tables.OUTPUTS])
def test_committed_table_schema_is_the_one_tables_py_writes(name):
    schema = {**tables.INPUTS, **tables.OUTPUTS}[name]
    kind = "input" if name in tables.INPUTS else "output"
    assert _load(name) == tables.json_schema(name, schema, kind), "run `make schemas`"


@pytest.mark.parametrize("name", tables.INPUTS)
def test_input_schema_columns_types_and_required_agree(name):
    arrow, js = tables.INPUTS[name], _load(name)
    assert list(js["properties"]) == arrow.names
    assert js["required"] == [f.name for f in arrow if not f.nullable]
    for f in arrow:
        types = js["properties"][f.name]["type"]
        types = [types] if isinstance(types, str) else types
        expected = ("integer" if pa.types.is_integer(f.type) else
                    "boolean" if pa.types.is_boolean(f.type) else "string")
        assert expected in types and (("null" in types) == f.nullable)


def test_money_is_decimal_and_dates_are_date32_everywhere():
    money = {"amount", "amount_open", "net_amount", "tax_amount", "gross_amount", "debit",
             "credit", "applied_amount", "written_off_amount", "discount_amount", "fee_amount",
             "interest_amount", "exposure", "credit_limit", "unapplied", "total_open"}
    for schema in [*tables.INPUTS.values(), *tables.OUTPUTS.values()]:
        for f in schema:
            if f.name in money:
                assert pa.types.is_decimal(f.type), f.name
            if f.name.endswith(("_date", "_on")):
                assert f.type == pa.date32(), f.name


def test_every_rule_kind_has_a_valid_schema():
    for kind in ("client", "tax", "credit", "dunning", "matching"):
        schema = json.loads((SCHEMAS / "rules" / f"{kind}.schema.json").read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["properties"]["kind"] == {"const": kind}


def _json_row(row: dict) -> dict:
    def value(v):
        if isinstance(v, Decimal):
            return format(v.normalize(), "f") if v == v.to_integral() else format(v, "f").rstrip(
                "0")
        if isinstance(v, dt.date):
            return v.isoformat()
        return v
    return {k: value(v) for k, v in row.items() if k not in (FILE, ROW)}


@pytest.mark.parametrize("client", ["nordwind", "lakeshore"])
def test_accepted_sample_rows_validate_against_the_input_json_schemas(client):
    night = sorted((ROOT / "samples" / client).iterdir())[0]
    executor = DuckDBExecutor()
    drop = ingest(night, load_ruleset(ROOT / "rules" / client), executor, dt.date(2026, 3, 2))
    accepted = dict(drop.tables.items())
    executor.close()
    assert set(accepted) >= {"customers", "transactions", "payments", "opening_items"}
    for name, table in accepted.items():
        assert table.schema == accepted_schema(name), name  # as kept in DuckDB, read back
        validator = Draft202012Validator(_load(name))
        for row in table.to_pylist():
            errors = list(validator.iter_errors(_json_row(row)))
            assert not errors, (name, row, errors[0].message)


def test_rule_schemas_live_in_schemas_rules():
    assert sorted(p.name for p in (SCHEMAS / "rules").glob("*.json")) == [
        "client.schema.json", "common.schema.json", "credit.schema.json",
        "dunning.schema.json", "matching.schema.json", "tax.schema.json"]
    assert Path(SCHEMAS / "tables").is_dir()
