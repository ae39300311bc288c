"""samples/bench.py measures real child runs; here at a toy size, for what it reports, and
samples/baseline.sql checked against ruledger's own run of the same drop."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "samples"))
import bench  # noqa: E402

LINES, SEED = 2000, 3


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[list[tuple], Path]:
    """One bench run at a toy size: its rows, and the folder of the runs' outputs."""
    work = tmp_path_factory.mktemp("bench")
    rows = bench.run([LINES], seed=SEED, work=work, memory_limit=None, repeat=2)
    return rows, work / f"synth-{LINES}-{SEED}" / "run"


def _rows(folder: Path, table: str, select: str, tail: str = "") -> list[tuple]:
    """`select` over one output table of a run (money as Decimal, rows in order)."""
    path = folder / f"{table}.parquet"
    with duckdb.connect() as con:
        return con.sql(f"SELECT {select} FROM read_parquet('{path}') {tail} ORDER BY ALL"
                       ).fetchall()


@pytest.fixture(scope="module")
def outputs(measured) -> tuple[Path, Path]:
    """(ruledger's output folder, the SQL baseline's) for the same night."""
    _, run = measured
    return run / "ruledger" / "out" / "synth" / bench.NIGHT, run / "sql" / "out"


def test_bench_measures_the_floor_the_baseline_and_a_real_run(measured):
    rows, run = measured
    assert [(r[0], r[1]) for r in rows] == [(LINES, "floor"), (LINES, "sql"), (LINES, "ruledger")]
    for _, _, wall, cpu, peak, to_sql, to_floor in rows:
        assert wall > 0 and cpu > 0 and peak > 50  # a Python process with DuckDB loaded
        assert to_sql > 0 and to_floor > 0
    assert rows[1][5] == 1 and rows[0][6] == 1  # each ratio is to its own run
    manifest = run / "ruledger" / "out" / "synth" / bench.NIGHT / "manifest.json"
    assert manifest.exists()  # the measured run was the real night
    report = bench.table(rows)
    assert "| 2,000 | ruledger |" in report and "| 2,000 | sql |" in report
    assert "| wall / sql | wall / floor |" in report


def test_each_figure_is_the_median_of_its_runs():
    runs = [bench.Figures(3.0, 5.0, 100.0, 0), bench.Figures(1.0, 9.0, 300.0, 0),
            bench.Figures(2.0, 1.0, 200.0, 0)]
    assert bench.median(runs) == bench.Figures(2.0, 5.0, 200.0, 0)
    assert bench.median(runs[:2]) == bench.Figures(2.0, 7.0, 200.0, 0)


def test_baseline_writes_every_output_table(outputs):
    _, sql = outputs
    assert sorted(p.name for p in sql.iterdir()) == sorted(
        f"{t}.parquet" for t in ("invoices", "invoice_lines", "cash_applications",
                                 "dunning_notices", "credit_decisions", "journal_entries",
                                 "aging"))


def test_baseline_invoices_as_ruledger_does(outputs):
    """Tax and invoicing have no deliberate difference: documents, lines and totals agree."""
    ruledger, sql = outputs
    per_type = ("document_type, currency, count(*), sum(net_amount), sum(tax_amount), "
                "sum(gross_amount)")
    tail = "GROUP BY document_type, currency"
    expected = _rows(ruledger, "invoices", per_type, tail)
    assert _rows(sql, "invoices", per_type, tail) == expected
    assert {r[0] for r in expected} == {"invoice", "credit_note"}
    numbers = "invoice_id, customer_id, due_date, gross_amount"
    assert _rows(sql, "invoices", numbers) == _rows(ruledger, "invoices", numbers)
    lines = "count(*), sum(net_amount), sum(tax_amount)"
    assert _rows(sql, "invoice_lines", lines) == _rows(ruledger, "invoice_lines", lines)


def _close(got: Decimal, want: Decimal, share: str = "0.01") -> bool:
    return abs(got - want) <= abs(want) * Decimal(share)


def test_baseline_applies_cash_as_ruledger_does(outputs):
    """Every payment's cash is accounted for in both; what goes to items agrees, within the
    matching the baseline simplifies (one round per strategy; see samples/baseline.sql)."""
    ruledger, sql = outputs
    cash = "currency, sum(applied_amount)"
    assert _rows(sql, "cash_applications", cash, "GROUP BY currency") == \
        _rows(ruledger, "cash_applications", cash, "GROUP BY currency")
    to_items = "currency, sum(applied_amount), sum(written_off_amount), sum(discount_amount)"
    tail = "WHERE invoice_id IS NOT NULL GROUP BY currency"
    expected = _rows(ruledger, "cash_applications", to_items, tail)
    got = _rows(sql, "cash_applications", to_items, tail)
    assert [r[0] for r in got] == [r[0] for r in expected]
    for g, e in zip(got, expected, strict=True):
        assert _close(g[1], e[1]) and _close(g[2] + g[3], e[2] + e[3], "0.05")


def test_baseline_journal_balances_and_books_what_ruledger_books(outputs):
    ruledger, sql = outputs
    unbalanced = _rows(sql, "journal_entries", "entry_id, currency",
                       "GROUP BY entry_id, currency HAVING sum(debit) <> sum(credit)")
    assert unbalanced == []
    # one entry per document and per payment
    entries = "document_type, count(DISTINCT entry_id)"
    tail = "WHERE document_type IN ('invoice', 'credit_note', 'payment') GROUP BY document_type"
    assert _rows(sql, "journal_entries", entries, tail) == \
        _rows(ruledger, "journal_entries", entries, tail)
    # what each account moved: exactly for invoicing, nearly for the rest
    moved = "account, currency, sum(debit) - sum(credit)"
    tail = "WHERE document_type IN ('invoice', 'credit_note') GROUP BY account, currency"
    assert _rows(sql, "journal_entries", moved, tail) == \
        _rows(ruledger, "journal_entries", moved, tail)
    tail = "GROUP BY account, currency"
    expected = {(a, c): n for a, c, n in _rows(ruledger, "journal_entries", moved, tail)}
    got = {(a, c): n for a, c, n in _rows(sql, "journal_entries", moved, tail)}
    assert got.keys() == expected.keys()
    for key, net in got.items():
        assert _close(net, expected[key]), key


def test_baseline_dunning_credit_and_aging_as_ruledger(outputs):
    """These follow from the cash applied: equal counts, totals within a small share."""
    ruledger, sql = outputs
    decisions = "count(*), count(DISTINCT customer_id)"
    assert _rows(sql, "credit_decisions", decisions) == \
        _rows(ruledger, "credit_decisions", decisions)  # every customer, once
    holds = "decision, count(*)"
    expected = dict(_rows(ruledger, "credit_decisions", holds, "GROUP BY decision"))
    for decision, count in _rows(sql, "credit_decisions", holds, "GROUP BY decision"):
        assert abs(count - expected[decision]) <= max(2, expected[decision] // 50), decision
    aging = "count(DISTINCT customer_id), sum(total_open), sum(unapplied)"
    (want,) = _rows(ruledger, "aging", aging)
    (got,) = _rows(sql, "aging", aging)
    assert abs(got[0] - want[0]) <= max(2, want[0] // 100)
    assert _close(got[1], want[1]) and _close(got[2], want[2])
    notices = "level, count(DISTINCT notice_id), sum(fee_amount), sum(interest_amount)"
    expected = _rows(ruledger, "dunning_notices", notices, "GROUP BY level")
    got = _rows(sql, "dunning_notices", notices, "GROUP BY level")
    assert [r[0] for r in got] == [r[0] for r in expected] == [1, 2, 3, 4]
    for g, e in zip(got, expected, strict=True):
        assert abs(g[1] - e[1]) <= max(2, e[1] // 50), g[0]
        assert _close(g[2], e[2]) and _close(g[3], e[3]), g[0]


def test_the_ratio_to_the_baseline_is_shown_to_two_places():
    """1.46x must not read as the target's 1.5x."""
    rows = [(1000, "sql", 5.0, 8.0, 100.0, 1.0, 6.0),
            (1000, "ruledger", 7.3, 11.0, 100.0, 7.3 / 5.0, 8.8)]
    assert "| 1,000 | ruledger | 7.30 | 11.0 | 100 | 1.46x | 8.8x |" in bench.table(rows)
