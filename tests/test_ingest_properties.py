"""Property: every data row of a drop file is accepted or rejected, exactly once."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from pathlib import Path

from conftest import CLIENT_YAML
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config.ruleset import load_ruleset
from engine.executor import DuckDBExecutor
from engine.ingest import ingest

HEADER = ["customer_id", "name", "country", "currency", "payment_terms_days", "tax_exempt"]

value = st.one_of(
    st.sampled_from(["C1", "Alpha", "DE", "EUR", "30", "true", "", " ", "-1", "1.5", "NO",
                     "eur", "XX", "Ümlaut GmbH", 'quote " inside', "comma, inside",
                     "line\nbreak", "2026-01-01"]),
    st.text(max_size=12),
)
row = st.lists(value, min_size=len(HEADER), max_size=len(HEADER))
# A row may lose or gain a field, or carry bytes that are not UTF-8.
fault = st.sampled_from(["none", "none", "none", "short", "long", "latin1"])


def _csv(rows: list[tuple[list[str], str]]) -> tuple[bytes, int]:
    out = io.BytesIO()
    out.write((",".join(HEADER) + "\n").encode())
    count = 0
    for fields, kind in rows:
        fields = fields[:-1] if kind == "short" else fields + ["x"] if kind == "long" else fields
        buffer = io.StringIO()
        csv.writer(buffer).writerow(fields)  # \r\n endings: a lone \r in a value is quoted
        line = buffer.getvalue()
        if not line.strip():
            continue  # a blank line is not a data row
        data = line.encode("utf-8")
        if kind == "latin1":
            data = data[:-2] + b"\xe9\r\n"
        out.write(data)
        count += 1
    return out.getvalue(), count


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(row, fault), max_size=25))
def test_no_csv_row_is_lost(rows):
    raw, count = _csv(rows)
    _check(raw, "customers.csv", count)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(
    st.dictionaries(st.sampled_from(HEADER + ["extra"]), value, max_size=7).map(json.dumps),
    st.text(max_size=20).filter(lambda t: t.strip() and "\n" not in t and "\r" not in t)),
    max_size=25))
def test_no_json_lines_record_is_lost(lines):
    lines = [line for line in lines if line.strip() and not any(
        c in line for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")]
    _check(("\n".join(lines) + "\n").encode(), "customers.jsonl", len(lines))


def _check(raw: bytes, name: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        rules.mkdir()
        (rules / "client.yaml").write_text(CLIENT_YAML)
        drop = Path(tmp) / "drop"
        drop.mkdir()
        (drop / name).write_bytes(raw)
        executor = DuckDBExecutor()
        try:
            result = ingest(drop, load_ruleset(rules), executor, dt.date(2026, 3, 2))
            accepted = result.tables["customers"].column("__row").to_pylist()
        finally:
            executor.close()
    rejected = result.reject_table().column("row_number").to_pylist()
    assert sorted(accepted + rejected) == list(range(1, count + 1))
    assert result.files[0].rows == count
    assert result.files[0].rejected == len(rejected)
    for reject in result.reject_table().to_pylist():
        assert reject["reason"] and reject["source_file"] == name
