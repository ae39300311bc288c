"""Writing a run's outputs: tables, manifest.json, and the rename into place.

Outputs are written into a hidden temporary folder next to the target and
renamed into `OUT/<client>/<as-of>/` in one step once the state has committed
(`engine.safety`), so a reader sees either the
whole night or nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def with_run_id(table: pa.Table, schema: pa.Schema, run_id: str) -> pa.Table:
    """`table` in the output `schema`, with every row's run_id set."""
    run = pa.array([run_id] * table.num_rows, pa.string())
    columns = {name: table.column(name) for name in table.column_names}
    columns["run_id"] = run
    return pa.table([columns[f.name] for f in schema], schema=schema)


def write_table(table: pa.Table, folder: Path, name: str, fmt: str) -> Path:
    """One output table; Parquet is written with fixed settings so bytes repeat."""
    if fmt == "csv":
        path = folder / f"{name}.csv"
        pacsv.write_csv(table, path)
    else:
        path = folder / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd", use_dictionary=False,
                       write_statistics=False, store_schema=True)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n",
                    encoding="utf-8")
    return path


def staging_folder(target: Path, run_id: str) -> Path:
    """A fresh hidden folder beside `target` to write into."""
    staging = target.parent / f".{target.name}.tmp-{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging
