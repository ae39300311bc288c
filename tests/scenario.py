"""Scenario helper: a client folder, nightly drops written from rows, real `ruledger run`s.

    s = Scenario(tmp_path, tax=TAX)
    s.night("2026-03-02", customers=[...], transactions=[...])
    s.rows("invoices")  # the night's output rows, as dicts
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from conftest import CLIENT_YAML

from engine.cli import main

CUSTOMER = {"customer_id": "C1", "name": "Alpha GmbH", "country": "DE", "currency": "EUR"}


class Scenario:
    def __init__(self, tmp: Path, tax: str, client_extra: str = "", **files: str):
        self.tmp = tmp
        self.rules = tmp / "rules" / "testco"
        self.rules.mkdir(parents=True)
        (self.rules / "client.yaml").write_text(CLIENT_YAML + textwrap.dedent(client_extra))
        (self.rules / "tax.yaml").write_text(textwrap.dedent(tax))
        for name, text in files.items():
            (self.rules / name).write_text(textwrap.dedent(text))
        self.as_of: str | None = None
        self.exit_code: int | None = None

    def night(self, as_of: str, **tables: list[dict]) -> int:
        """Write the drop of `as_of` from rows per table and run it; return the exit code."""
        drop = self.tmp / "drops" / as_of
        drop.mkdir(parents=True, exist_ok=True)
        for table, rows in tables.items():
            (drop / f"{table}.csv").write_text(_csv(rows))
        self.as_of = as_of
        self.exit_code = main(["run", str(self.rules), "--drop", str(drop),
                               "--state", str(self.tmp / "state.duckdb"),
                               "--out", str(self.tmp / "out")])
        return self.exit_code

    def rows(self, table: str, as_of: str | None = None) -> list[dict]:
        path = self.tmp / "out" / "testco" / (as_of or self.as_of) / f"{table}.parquet"
        if not path.exists():
            return []
        return [{k: v for k, v in row.items() if k != "run_id"}
                for row in pq.read_table(path).to_pylist()]

    def state(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.tmp / "state.duckdb"), read_only=True)
        try:
            return con.sql(sql).fetchall()
        finally:
            con.close()


def _csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue() if rows else ""


def line(txn_id: str, quantity: str, unit_price: str, customer: str = "C1",
         txn_date: str = "2026-03-01", **extra: str) -> dict:
    """A billable line in EUR unless `currency` is given."""
    return {"txn_id": txn_id, "customer_id": customer, "txn_date": txn_date,
            "product_code": extra.pop("product_code", "P-1"), "quantity": quantity,
            "unit_price": unit_price, "currency": extra.pop("currency", "EUR"), **extra}


def money(rows: list[dict], *columns: str) -> list[tuple]:
    """The given columns of each row, decimals normalised to their plain text."""
    def show(v):
        return format(v.normalize(), "f") if isinstance(v, Decimal) else v
    return [tuple(show(row[c]) for c in columns) for row in rows]


def details(row: dict) -> dict:
    return json.loads(row["details"]) if row.get("details") else {}
