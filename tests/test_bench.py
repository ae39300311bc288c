"""samples/bench.py measures real child runs; here at a toy size, for what it reports."""

from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "samples"))
import bench  # noqa: E402


def test_bench_measures_the_floor_and_a_real_run(tmp_path):
    rows = bench.run([2000], seed=3, work=tmp_path, memory_limit=None)
    assert [(r[0], r[1]) for r in rows] == [(2000, "floor"), (2000, "ruledger")]
    for _, _, wall, cpu, peak, _ in rows:
        assert wall > 0 and cpu > 0 and peak > 50  # a Python process with pyarrow loaded
    manifest = tmp_path / "synth-2000-3" / "run" / "out" / "synth" / "2026-03-02" / "manifest.json"
    assert manifest.exists()  # the measured run was the real night
    assert "| 2,000 | ruledger |" in bench.table(rows)
