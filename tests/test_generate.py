"""samples/generate.py: the same seed gives the same bytes, and the engine runs what it
writes, two nights in a row, paying most payments and rejecting only the planted rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT

from engine.cli import main

GENERATE = ROOT / "samples" / "generate.py"
NIGHTS = ("2026-03-02", "2026-03-03")
# The rejects the generator plants on purpose (see its docstring), and nothing else.
PLANTED = re.compile(r"duplicate (txn_id|payment_id): first given in row \d+"
                     r"|(txn_id|payment_id) \S+ was already processed on \d{4}-\d{2}-\d{2}"
                     r"|unknown customer K99999999 .*")


def generate(out: Path, seed: int = 5, *extra: str) -> str:
    done = subprocess.run([sys.executable, str(GENERATE), str(out), "--transactions", "2000",
                           "--nights", "2", "--seed", str(seed), *extra],
                          capture_output=True, text=True, check=True)
    return done.stderr


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, 5, "--expected")
    return out


@pytest.fixture(scope="module")
def runs(generated, tmp_path_factory) -> dict[str, dict[str, list[dict]]]:
    """as-of -> output table -> rows, after both nights on one state store."""
    work = tmp_path_factory.mktemp("runs")
    out: dict[str, dict[str, list[dict]]] = {}
    for night in NIGHTS:
        assert main(["run", str(generated / "rules" / "synth"),
                     "--drop", str(generated / "drops" / "synth" / night),
                     "--state", str(work / "synth.duckdb"), "--out", str(work / "out")]) == 0
        folder = work / "out" / "synth" / night
        out[night] = {p.stem: pq.read_table(p).to_pylist() for p in folder.glob("*.parquet")}
    return out


def test_the_same_seed_gives_the_same_bytes(generated, tmp_path):
    again = tmp_path / "again"
    stderr = generate(again, 5, "--expected")
    assert files(again) == files(generated)
    # one summary line per file written
    assert len(stderr.splitlines()) == len([p for p in again.rglob("*") if p.suffix == ".parquet"])
    assert "drops/synth/2026-03-02/transactions.parquet: 2,0" in stderr


def test_another_seed_gives_other_data(generated, tmp_path):
    other = tmp_path / "other"
    generate(other, 6)
    night = Path("drops/synth/2026-03-02")
    for table in ("customers", "transactions", "payments", "opening_items"):
        name = str(night / f"{table}.parquet")
        assert files(other)[name] != files(generated)[name], table


def test_the_rules_check(generated):
    assert main(["check", str(generated / "rules" / "synth")]) == 0


def test_the_engine_makes_the_invoices_the_generator_predicted(generated, runs):
    """Payments of the second night name first-night invoices: their numbers and amounts
    must be the engine's."""
    for night in NIGHTS:
        expected = pq.read_table(generated / "expected" / "synth" / night / "invoices.parquet")
        made = {(r["invoice_id"], r["customer_id"], r["gross_amount"])
                for r in runs[night]["invoices"]}
        assert made == {(r["invoice_id"], r["customer_id"], r["gross_amount"])
                        for r in expected.to_pylist()}
        assert len(made) > 300


def test_only_the_planted_rows_are_rejected(runs):
    for night in NIGHTS:
        reasons = [r["reason"] for r in runs[night]["rejects"]]
        assert reasons, night
        assert all(PLANTED.fullmatch(r) for r in reasons), reasons
    second = " ".join(r["reason"] for r in runs[NIGHTS[1]]["rejects"])
    assert "already processed" in second


def test_most_payments_are_applied_by_every_strategy(runs):
    for night in NIGHTS:
        apps = runs[night]["cash_applications"]
        payments = {a["payment_id"] for a in apps}
        applied = {a["payment_id"] for a in apps if a["invoice_id"]}
        assert len(applied) >= 0.85 * len(payments), (night, len(applied), len(payments))
        strategies = {a["strategy"] for a in apps if a["invoice_id"]}
        assert strategies == {"by_reference", "by_amount", "by_combination"}, night
        assert any(a["written_off_amount"] > 0 for a in apps), night
        assert len(payments) - len(applied) > 0, "some payers stay unidentified"
    # the second night pays first-night invoices within the discount days
    assert any(a["discount_amount"] > 0 for a in runs[NIGHTS[1]]["cash_applications"])


def test_dunning_credit_and_aging_have_work(runs):
    first = runs[NIGHTS[0]]
    levels = {n["level"] for n in first["dunning_notices"]}
    assert levels >= {1, 2, 3}
    assert any(n["fee_amount"] > 0 for n in first["dunning_notices"])
    assert any(n["interest_amount"] > 0 for n in first["dunning_notices"])
    decisions = {d["decision"] for d in first["credit_decisions"]}
    assert decisions == {"ok", "warn", "hold"}
    assert len(first["aging"]) > 100
    assert any(a["over_90"] > 0 for a in first["aging"])
    codes = {e["code"] for e in first["exceptions"]}
    assert {"PAYMENT_UNMATCHED", "PARTIAL_PAYMENT", "OVERPAYMENT", "CREDIT_HOLD"} <= codes
