"""Fuzz whole nightly drops through the real CLI.

A sample night of each shipped client (the first, or the second after a clean first)
is copied and its files are damaged: cells of the wrong type, missing, extra or
duplicate columns, empty and header-only files, bytes that are not UTF-8, 1 MB fields,
stray quotes, truncation, a BOM, CRLF, JSON lines that are not objects, corrupt
Parquet, and many copies of a row with a large amount. Whatever the damage:

- `ruledger run` exits 0 or 3, never 4 and never with a traceback;
- on exit 0 every data row of every input file is accepted or rejected exactly once
  (manifest counts and rejects.parquet agree) and every journal entry balances;
- on exit 3 there is no OUT/<client>/<as-of>/ folder and no run of that date;
- the same drop run twice gives the same exit code, and one run of the date.

Each bug the fuzzer found has a small test of its own at the end of the file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.run import run_log

ROOT = Path(__file__).resolve().parents[1]
FIRST, SECOND = "2026-03-02", "2026-03-03"
CLIENTS = ("nordwind", "lakeshore")
DELIMITER = {"Fakturadaten.csv": ";"}
# No shrinking: each example is a whole run, and shrinking one failure takes minutes.
# A failure prints its draws (labelled), which name the damage done.
SETTINGS = dict(deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
MB = 1_000_000


def _night(client: str, night: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((ROOT / "samples" / client / night).iterdir())}


ORIGINAL = {(client, night): _night(client, night) for client in CLIENTS
            for night in (FIRST, SECOND)}
RULES = {client: ROOT / "rules" / client for client in CLIENTS}


# ---------------------------------------------------------------- values

odd_text = st.sampled_from([
    "", " ", "abc", "zwei", "2 ea", "1,5", "1.450,00", "1e3", "-0", "NaN", "Infinity", "-1",
    "99999999999999999999999999999999", "0.000000000000000001", "12.345.678", "2026-02-30",
    "2026-13-01", "03/03/2026", "31.02.2026", "0000-00-00", "9999-12-31", "true", "yes",
    "null", "NULL", "None", "\\N", "EUR ", " C10001", "c10001", "C10001\t", "€", "Ü" * 40,
    "line\nbreak", 'quote " inside', "semi;colon", "comma, inside", "\u2028", "\u0085",
    "\x0b\x0c", "\x1c\x1d\x1e", "\ufeff", "\U0001f4a9", "=1+1", "'; DROP TABLE x; --",
    "{customer.name}", "%s%s%s", "\\", "\t",
])
cell_text = st.one_of(odd_text, st.text(max_size=15).filter(lambda s: "\r" not in s
                                                            and "\x00" not in s))
json_value = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), odd_text,
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2),
)
HIGH_BYTES = st.binary(min_size=1, max_size=3).map(lambda b: bytes(0x80 | x for x in b))


NUMBER = re.compile(r"^-?\d{1,3}(?:[.,]?\d{3})*(?:[.,]\d+)?$")
BIG = st.sampled_from(["999999999999.99", "999999999999.99", "999999999999,99", "99999999999.99",
                       "4999999999.5", "0.01", "0", "-999999999999.99", "1000000"])


def _clones(data, row: list, id_at: int, number_at: list[int]) -> list[list]:
    """Copies of `row` under new ids, one number in each made large (or small): many
    valid rows whose sums may not fit where single values do."""
    if not row:
        return []
    k = data.draw(st.sampled_from([5, 120, 120]), label="clones")
    at = data.draw(st.sampled_from(number_at)) if number_at else None
    value = data.draw(BIG, label="clone value")
    out = []
    for n in range(k):
        copy = list(row)
        copy[id_at] = f"{copy[id_at]}-Z{n:03d}"
        if at is not None:
            copy[at] = value
        out.append(copy)
    return out


# ---------------------------------------------------------------- CSV mutations
# A CSV is (header, rows) while its structure is changed; the expected count of data
# rows is kept alongside (None once it is no longer certain).


def _read_csv(raw: bytes, delimiter: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=delimiter))
    return rows[0], rows[1:]


def _write_csv(header: list[str], rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _csv_structure(data, header, rows, kind: str):
    """Change (header, rows) in place; return the change in the number of data rows."""
    width = len(header)
    pick_row = st.integers(0, max(len(rows) - 1, 0))
    pick_col = st.integers(0, width - 1)
    if kind == "cell" and rows:
        r = rows[data.draw(pick_row)]
        j = data.draw(st.integers(0, len(r) - 1))
        r[j] = data.draw(cell_text)
    elif kind == "huge" and rows:
        r = rows[data.draw(pick_row)]
        r[data.draw(st.integers(0, len(r) - 1))] = data.draw(st.sampled_from("xé9;,\"")) * MB
    elif kind == "drop_column":
        j = data.draw(pick_col)
        del header[j]
        for r in rows:
            if j < len(r):
                del r[j]
    elif kind == "extra_column":
        header.append(data.draw(st.sampled_from(["extra", "Notes", "", "amount", "ÄÖÜ"])))
        value = data.draw(cell_text)
        for r in rows:
            r.append(value)
    elif kind == "duplicate_header":
        i, j = data.draw(pick_col), data.draw(pick_col)
        header[i] = header[j]
    elif kind == "rename_header":
        j = data.draw(pick_col)
        header[j] = data.draw(st.sampled_from(
            [header[j].upper(), " " + header[j], header[j] + " ", "", "Ünknown", header[j] * 2]))
    elif kind == "ragged" and rows:
        r = rows[data.draw(pick_row)]
        if data.draw(st.booleans()) and len(r) > 1:
            del r[data.draw(st.integers(0, len(r) - 1))]
        else:
            r.extend(data.draw(st.lists(cell_text, min_size=1, max_size=3)))
    elif kind == "duplicate_row" and rows:
        i = data.draw(pick_row)
        rows.insert(data.draw(st.integers(0, len(rows))), list(rows[i]))
        return 1
    elif kind == "header_only":
        n = len(rows)
        rows.clear()
        return -n
    elif kind == "clone" and rows:
        row = rows[data.draw(pick_row)]
        numbers = [j for j, v in enumerate(row) if NUMBER.match(v) and j]
        clones = _clones(data, row, 0, numbers)
        rows.extend(clones)
        return len(clones)
    return 0


CSV_STRUCTURE = ["cell", "cell", "huge", "drop_column", "extra_column", "duplicate_header",
                 "rename_header", "ragged", "duplicate_row", "header_only", "clone", "clone"]


def _bytes_mutation(data, raw: bytes, kind: str, count: int | None) -> tuple[bytes, int | None]:
    """A change of the file's bytes; the data row count it leaves (None: not certain)."""
    body_end = max(len(raw) - 1, 0)  # before the final newline: no new line is made
    first_nl = raw.find(b"\n")
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw, count
    if kind == "crlf":
        every = data.draw(st.booleans())
        if every:
            return raw.replace(b"\n", b"\r\n"), count
        lines = raw.split(b"\n")
        n = len(lines) - 1
        flags = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
        return b"".join(ln + (b"\r\n" if f else b"\n")
                        for ln, f in zip(lines[:-1], flags, strict=True)) \
            + lines[-1], count
    if kind == "lone_cr":
        return raw.replace(b"\n", b"\r"), None
    if kind in ("not_utf8", "nul") and body_end > 0:
        at = data.draw(st.integers(0, body_end - 1))
        while at > 0 and raw[at] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
            at -= 1
        junk = data.draw(HIGH_BYTES) if kind == "not_utf8" else b"\x00"
        return raw[:at] + junk + raw[at:], count
    if kind == "latin1":
        text = raw.decode("utf-8", errors="replace")
        return text.encode("latin-1", errors="replace"), count
    if kind == "stray_quote" and body_end > first_nl + 1:
        at = data.draw(st.integers(first_nl + 1, body_end))
        return raw[:at] + b'"' + raw[at:], None
    if kind == "truncate" and raw:
        return raw[:data.draw(st.integers(0, len(raw) - 1))], None
    if kind == "empty":
        return b"", 0
    if kind == "blank_lines":
        return raw + b"\n\n", count
    if kind == "garbage":
        return data.draw(st.binary(max_size=300)), None
    return raw, count


CSV_BYTES = ["bom", "crlf", "lone_cr", "not_utf8", "nul", "latin1", "stray_quote",
             "truncate", "empty", "blank_lines", "garbage"]


def _mutate_csv(data, name: str, raw: bytes) -> tuple[bytes, int | None]:
    delimiter = DELIMITER.get(name, ",")
    header, rows = _read_csv(raw, delimiter)
    count = len(rows)
    for kind in data.draw(st.lists(st.sampled_from(CSV_STRUCTURE), max_size=2),
                          label=f"{name} structure"):
        count += _csv_structure(data, header, rows, kind)
    raw = _write_csv(header, rows, delimiter)
    kind = data.draw(st.sampled_from(["none", "none", *CSV_BYTES]), label=f"{name} bytes")
    return _bytes_mutation(data, raw, kind, count)


# ---------------------------------------------------------------- JSON Lines mutations


def _mutate_jsonl(data, name: str, raw: bytes) -> tuple[bytes, int | None]:
    lines = [ln for ln in raw.decode("utf-8").split("\n") if ln.strip()]
    count = len(lines)
    for kind in data.draw(st.lists(st.sampled_from(
            ["value", "value", "drop_key", "extra_key", "not_object", "bad_json",
             "duplicate_key", "huge", "raw_unicode", "duplicate_row", "clone"]), max_size=3),
            label=f"{name} structure"):
        i = data.draw(st.integers(0, len(lines) - 1)) if lines else None
        if i is None:
            break
        try:
            record = json.loads(lines[i])
        except ValueError:
            record = None
        if kind == "value" and isinstance(record, dict) and record:
            record[data.draw(st.sampled_from(sorted(record)))] = data.draw(json_value)
            lines[i] = json.dumps(record)
        elif kind == "drop_key" and isinstance(record, dict) and record:
            del record[data.draw(st.sampled_from(sorted(record)))]
            lines[i] = json.dumps(record)
        elif kind == "extra_key" and isinstance(record, dict):
            record[data.draw(st.text(max_size=8))] = data.draw(json_value)
            lines[i] = json.dumps(record)
        elif kind == "not_object":
            lines[i] = json.dumps(data.draw(st.one_of(
                json_value.filter(lambda v: not isinstance(v, dict)),
                st.just(list(record.values()) if isinstance(record, dict) else []))))
        elif kind == "bad_json":
            lines[i] = data.draw(st.sampled_from(
                ["{", "{'a': 1}", '{"amount": 1,}', "NaN", "{\"a\": NaN}", "}{", "[1, 2",
                 lines[i][: len(lines[i]) // 2], "undefined", '{"a": "\\x41"}']))
        elif kind == "duplicate_key" and isinstance(record, dict) and record:
            key = data.draw(st.sampled_from(sorted(record)))
            lines[i] = lines[i].rstrip("}") + f", {json.dumps(key)}: {json.dumps('dup')}}}"
        elif kind == "huge" and isinstance(record, dict) and record:
            record[data.draw(st.sampled_from(sorted(record)))] = "x" * MB
            lines[i] = json.dumps(record)
        elif kind == "raw_unicode" and isinstance(record, dict) and record:
            record[data.draw(st.sampled_from(sorted(record)))] = data.draw(odd_text)
            lines[i] = json.dumps(record, ensure_ascii=False)
        elif kind == "duplicate_row":
            lines.insert(i, lines[i])
            count += 1
        elif kind == "clone" and isinstance(record, dict) and record:
            keys = list(record)
            values = [str(v) for v in record.values()]
            numbers = [j for j, v in enumerate(values) if NUMBER.match(v) and j]
            for copy in _clones(data, values, 0, numbers):
                lines.append(json.dumps(dict(zip(keys, copy, strict=True))))
                count += 1
    raw = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    kind = data.draw(st.sampled_from(["none", "none", "bom", "crlf", "not_utf8", "nul",
                                      "truncate", "empty", "blank_lines", "garbage"]),
                     label=f"{name} bytes")
    return _bytes_mutation(data, raw, kind, count)


# ---------------------------------------------------------------- Parquet mutations


PARQUET_STRUCTURE = ["retype", "retype", "drop_column", "extra_column", "nulls", "no_rows",
                     "duplicate_name", "huge", "binary_not_utf8", "string_not_utf8", "clone"]
PARQUET_BYTES = ["flip", "truncate", "empty", "garbage", "csv_inside"]


def _typed_column(kind: str, n: int) -> pa.Array:
    """n values of another type than the text the table expects."""
    if kind == "int":
        return pa.array(range(n), pa.int64())
    if kind == "float":
        return pa.array([i + 0.5 for i in range(n)], pa.float64())
    if kind == "bool":
        return pa.array([i % 2 == 0 for i in range(n)])
    if kind == "date":
        return pa.array([20000 + i for i in range(n)], pa.date32())
    if kind == "decimal":
        return pa.array([Decimal(i) / 4 for i in range(n)], pa.decimal128(20, 6))
    if kind == "list":
        return pa.array([[i] for i in range(n)])
    if kind == "struct":
        return pa.array([{"a": i} for i in range(n)])
    return pa.nulls(n)


def _as_bytes(column: pa.ChunkedArray) -> list[bytes | None]:
    """A column's values as bytes; text columns as they are stored, UTF-8 or not."""
    if pa.types.is_string(column.type) or pa.types.is_binary(column.type):
        return pc.cast(column, pa.binary()).to_pylist()
    return [None if v is None else str(v).encode() for v in column.to_pylist()]


def _mutate_parquet(data, name: str, raw: bytes) -> tuple[bytes, int | None]:
    table = pq.read_table(io.BytesIO(raw))
    count = table.num_rows
    kinds = data.draw(st.lists(st.sampled_from(PARQUET_STRUCTURE), max_size=2),
                      label=f"{name} structure")
    for kind in sorted(kinds, key=lambda k: k.endswith("not_utf8")):  # bad bytes come last
        j = data.draw(st.integers(0, table.num_columns - 1)) if table.num_columns else None
        n = table.num_rows
        if j is None:
            break
        col_name = table.column_names[j]
        if kind == "retype":
            choice = data.draw(st.sampled_from(
                ["int", "float", "bool", "date", "decimal", "list", "struct", "null"]))
            array = _typed_column(choice, n)
            table = table.set_column(j, col_name, array)
        elif kind == "drop_column":
            table = table.remove_column(j)
        elif kind == "extra_column":
            table = table.append_column(f"extra{table.num_columns}",
                                        pa.array([str(i) for i in range(n)]))
        elif kind == "nulls":
            mask = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
            # by Arrow, not Python: an earlier mutation may have left bytes that are not UTF-8
            table = table.set_column(j, col_name, pc.if_else(
                pa.array(mask, pa.bool_()), pa.scalar(None, table.schema.field(j).type),
                table.column(j)))
        elif kind == "no_rows":
            table = table.slice(0, 0)
            count = 0
        elif kind == "clone" and n:
            rows = [[None if v is None else str(v) for v in r.values()]
                    for r in table.to_pylist()]
            row = rows[data.draw(st.integers(0, n - 1))]
            numbers = [k for k, v in enumerate(row) if v is not None and NUMBER.match(v) and k]
            clones = _clones(data, row, 0, numbers)
            names = table.column_names
            table = pa.table([pa.array([r[k] for r in rows + clones], pa.string())
                              for k in range(len(names))], names=names)
            count += len(clones)
        elif kind == "duplicate_name":
            k = data.draw(st.integers(0, table.num_columns - 1))
            table = table.rename_columns(
                [table.column_names[k] if i == j else c for i, c in enumerate(table.column_names)])
        elif kind == "huge" and n:
            column = table.column(j).to_pylist()
            column[data.draw(st.integers(0, n - 1))] = "x" * MB
            table = table.set_column(j, col_name, pa.array([None if v is None else str(v)
                                                            for v in column]))
        elif kind == "binary_not_utf8" and n:
            column = _as_bytes(table.column(j))
            column[data.draw(st.integers(0, n - 1))] = data.draw(HIGH_BYTES)
            table = table.set_column(j, col_name, pa.array(column, pa.binary()))
        elif kind == "string_not_utf8" and n:  # a string column whose bytes are not UTF-8
            column = _as_bytes(table.column(j))
            column[data.draw(st.integers(0, n - 1))] = b"L-" + data.draw(HIGH_BYTES)
            table = table.set_column(j, col_name, pa.array(column, pa.binary()).view(pa.string()))
    out = io.BytesIO()
    pq.write_table(table, out)
    raw = out.getvalue()
    kind = data.draw(st.sampled_from(["none", "none", *PARQUET_BYTES]), label=f"{name} bytes")
    if kind == "flip" and raw:
        spots = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8))
        buf = bytearray(raw)
        for at in spots:
            buf[at] ^= 0xFF
        return bytes(buf), None
    if kind == "csv_inside":
        return b"txn_id,customer_id\nL-1,L20001\n", None
    return _bytes_mutation(data, raw, kind, count)


# ---------------------------------------------------------------- the drop


def _mutate(data, name: str, raw: bytes) -> tuple[bytes, int | None]:
    if name.endswith(".csv"):
        return _mutate_csv(data, name, raw)
    if name.endswith(".jsonl"):
        return _mutate_jsonl(data, name, raw)
    return _mutate_parquet(data, name, raw)


def _original_count(name: str, raw: bytes) -> int:
    if name.endswith(".csv"):
        return len(_read_csv(raw, DELIMITER.get(name, ","))[1])
    if name.endswith(".jsonl"):
        return sum(1 for ln in raw.split(b"\n") if ln.strip())
    return pq.read_metadata(io.BytesIO(raw)).num_rows


def _rules(tmp: Path, client: str, relaxed: bool) -> Path:
    """The client's rules, or a copy that accepts any share of rejects."""
    if not relaxed:
        return RULES[client]
    folder = tmp / "rules" / client
    shutil.copytree(RULES[client], folder)
    path = folder / "client.yaml"
    path.write_text(re.sub(r"(?m)^max_reject_ratio: .*$", "max_reject_ratio: 1",
                           path.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def _run_drop(files: dict[str, bytes], client: str, relaxed: bool, expected: dict,
              capfd, night: str = FIRST, rerun: bool = False) -> None:
    """Run `files` as the drop of `night` (after a clean first night when it is the
    second) and check the outcome; with `rerun`, run the same drop a second time."""
    capfd.readouterr()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        state, out = tmp / "state.duckdb", tmp / "out"
        rules = _rules(tmp, client, relaxed)
        if night != FIRST:
            first = ["run", str(rules), "--drop", str(ROOT / "samples" / client / FIRST),
                     "--state", str(state), "--out", str(out)]
            assert main(first) == 0, capfd.readouterr().err[-3000:]
            capfd.readouterr()
        drop = tmp / "drop" / night
        drop.mkdir(parents=True)
        for name, raw in files.items():
            (drop / name).write_bytes(raw)
        command = ["run", str(rules), "--drop", str(drop), "--state", str(state),
                   "--out", str(out)]
        code = main(command)
        _check_run(code, capfd.readouterr().err, out / client / night, state, client, night,
                   expected)
        if rerun:  # the same drop again: the same outcome; a done night is not run twice
            again = main(command)
            _check_run(again, capfd.readouterr().err, out / client / night, state, client,
                       night, expected)
            assert again == code, (code, again)
            if code == 0:
                runs = [r for r in run_log(state, client) if r.as_of.isoformat() == night]
                assert len(runs) == 1, runs


def _check_run(code: int, err: str, folder: Path, state: Path, client: str, night: str,
               expected: dict) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert "internal error" not in err and "internal failure" not in err, err[-3000:]
    assert code in (0, 3), (code, err[-3000:])
    runs = [r for r in run_log(state, client) if r.as_of.isoformat() == night] \
        if state.exists() else []
    if code == 3:
        assert not folder.exists(), sorted(p.name for p in folder.iterdir())
        assert not runs, runs
        # nothing staged is left behind: no hidden folder, no publication intent
        assert not list(folder.parent.glob(f".{night}.tmp-*")), list(folder.parent.iterdir())
        assert not state.with_name(state.name + ".publishing").exists()
        return
    check_outputs(folder, expected)
    assert runs


def check_outputs(folder: Path, expected: dict[str, int | None] | None = None) -> None:
    """Every input row accepted or rejected once; every journal entry balanced."""
    manifest = json.loads((folder / "manifest.json").read_text())
    counts = manifest["counts"]
    inputs = manifest["inputs"]
    by_file = {i["file"]: i for i in inputs}
    assert len(by_file) == len(inputs), inputs
    for i in inputs:
        assert 0 <= i["rejected"] <= i["rows"], i
    assert counts["rows_in"] == sum(i["rows"] for i in inputs), manifest
    assert counts["rejected"] == sum(i["rejected"] for i in inputs), manifest
    assert counts["rows_in"] == counts["rejected"] + sum(counts["accepted"].values()), counts
    for i in inputs:
        if i["table"] in counts["accepted"]:
            assert counts["accepted"][i["table"]] == i["rows"] - i["rejected"], (i, counts)
        else:
            assert i["rows"] == i["rejected"], (i, counts)
    for name, count in (expected or {}).items():
        if count is not None and name in by_file:
            assert by_file[name]["rows"] == count, (name, by_file[name], count)
    rejects_path = folder / "rejects.parquet"
    rejects = pq.read_table(rejects_path).to_pylist() if rejects_path.exists() else []
    per_file = Counter(r["source_file"] for r in rejects)
    assert per_file == Counter({f: i["rejected"] for f, i in by_file.items() if i["rejected"]}), \
        (per_file, inputs)
    for r in rejects:
        assert 1 <= r["row_number"] <= by_file[r["source_file"]]["rows"], r
    numbers = Counter((r["source_file"], r["row_number"]) for r in rejects)
    assert all(n == 1 for n in numbers.values()), [k for k, n in numbers.items() if n > 1]
    journal_path = folder / "journal_entries.parquet"
    if journal_path.exists():
        sums: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for e in pq.read_table(journal_path).to_pylist():
            s = sums[e["entry_id"], e["currency"]]
            s[0] += e["debit"] or 0
            s[1] += e["credit"] or 0
        unbalanced = {k: v for k, v in sums.items() if v[0] != v[1]}
        assert not unbalanced, unbalanced


# ---------------------------------------------------------------- the tests


@settings(max_examples=22, **SETTINGS)
@given(data=st.data())
def test_fuzzed_drop_is_run_or_refused(data, capfd):
    client = data.draw(st.sampled_from(CLIENTS), label="client")
    night = data.draw(st.sampled_from([FIRST, FIRST, FIRST, SECOND]), label="night")
    relaxed = data.draw(st.booleans(), label="max_reject_ratio 1")
    files = dict(ORIGINAL[client, night])
    expected: dict[str, int | None] = {n: _original_count(n, raw) for n, raw in files.items()}
    names = sorted(files)
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True),
                       label="files")
    for name in chosen:
        files[name], expected[name] = _mutate(data, name, files[name])
    extra = data.draw(st.sampled_from(["none", "none", "none", "remove", "unknown_file"]),
                      label="drop")
    if extra == "remove":
        gone = data.draw(st.sampled_from(names))
        del files[gone]
        expected.pop(gone)
    elif extra == "unknown_file":
        files[data.draw(st.sampled_from(["notes.txt", "unknown.csv", "payments.csv",
                                         "transactions.jsonl", ".hidden.csv"]))] = b"a,b\n1,2\n"
    rerun = data.draw(st.sampled_from([False, False, False, True]), label="rerun")
    _run_drop(files, client, relaxed, expected, capfd, night, rerun)


@settings(max_examples=4, **SETTINGS)
@given(client=st.sampled_from(CLIENTS), kind=st.sampled_from(["empty", "header_only"]))
def test_empty_files_are_valid(client, kind, capfd):
    """Every file of the night empty (0 bytes) or header-only: no rows, no failure."""
    files = {}
    for name, raw in ORIGINAL[client, FIRST].items():
        if name.endswith(".csv") and kind == "header_only":
            files[name] = raw[: raw.index(b"\n") + 1]
        elif name.endswith(".parquet") and kind == "header_only":
            out = io.BytesIO()
            pq.write_table(pq.read_table(io.BytesIO(raw)).slice(0, 0), out)
            files[name] = out.getvalue()
        else:
            files[name] = b""
    _run_drop(files, client, False, {n: 0 for n in files}, capfd)


# ---------------------------------------------------------------- found by the fuzzer
# One small drop per bug found, so that each stays checked whatever the fuzzer draws.


def _one_file(client: str, name: str, raw: bytes) -> dict[str, bytes]:
    return {**ORIGINAL[client, FIRST], name: raw}


def _parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


SAMPLE_TRANSACTIONS = pq.read_table(
    io.BytesIO(ORIGINAL["lakeshore", FIRST]["transactions.parquet"]))


def test_csv_with_cr_line_ends_is_not_an_internal_failure(capfd):
    raw = b"order_id,customer_id,currency,amount\rAU-1,C10001,EUR,1.00\r"
    _run_drop(_one_file("nordwind", "open_orders.csv", raw), "nordwind", True, {}, capfd)


@pytest.mark.parametrize("raw", [
    b"order_id,customer_id,currency," + b"x" * 131073 + b"\nAU-1,C10001,EUR,1.00\n",
    b"order_id,order_id,currency,amount\nAU-1," + b"x" * 131073 + b",EUR,1.00\n",
], ids=["long_header", "long_value_under_a_duplicate_header"])
def test_csv_with_a_field_over_128k_is_not_an_internal_failure(raw, capfd):
    _run_drop(_one_file("nordwind", "open_orders.csv", raw), "nordwind", True,
              {"open_orders.csv": 1}, capfd)


def test_parquet_text_that_is_not_utf8_is_rejected(capfd):
    ids = [s.encode() for s in SAMPLE_TRANSACTIONS.column("txn_id").to_pylist()]
    ids[0] = b"L-0001\xcc1"
    table = SAMPLE_TRANSACTIONS.set_column(
        0, "txn_id", pa.array(ids, pa.binary()).view(pa.string()))
    _run_drop(_one_file("lakeshore", "transactions.parquet", _parquet(table)), "lakeshore",
              True, {"transactions.parquet": table.num_rows}, capfd)


def test_parquet_with_a_duplicate_column_name_loses_no_row(capfd):
    names = SAMPLE_TRANSACTIONS.column_names
    table = SAMPLE_TRANSACTIONS.rename_columns([names[0], names[0], *names[2:]])
    _run_drop(_one_file("lakeshore", "transactions.parquet", _parquet(table)), "lakeshore",
              True, {"transactions.parquet": table.num_rows}, capfd)


@pytest.mark.parametrize("name", ["open_orders.csv", "opening_items.csv", "lockbox.csv"])
def test_exposure_over_the_books_is_not_an_internal_failure(name, capfd):
    raw = ORIGINAL["lakeshore", FIRST][name]
    lines = [{"open_orders.csv": f"BIG-{i},L20009,USD,999999999999.99",
              "opening_items.csv": f"LS-2025-{i:06d},L20009,2026-02-20,2026-03-22,USD,"
                                   "999999999999.99,0,",
              "lockbox.csv": f"9{i:05d},2026-03-02,999999999999.99,L20009,BIG PAYER,no ref",
              }[name] for i in range(101)]
    _run_drop(_one_file("lakeshore", name, raw + "\n".join(lines).encode() + b"\n"),
              "lakeshore", False, {name: _original_count(name, raw) + 101}, capfd)


def test_a_parquet_file_that_cannot_be_counted_refuses_the_drop(capfd):
    """Bytes that are not Parquet at all: no footer, so its rows cannot be counted or
    rejected one by one; the drop is refused (exit 3), never run without them."""
    files = _one_file("lakeshore", "transactions.parquet", b"PAR1 not really parquet")
    with tempfile.TemporaryDirectory() as tmp:
        drop = Path(tmp) / "drop" / FIRST
        drop.mkdir(parents=True)
        for name, raw in files.items():
            (drop / name).write_bytes(raw)
        capfd.readouterr()
        code = main(["run", str(ROOT / "rules" / "lakeshore"), "--drop", str(drop),
                     "--state", str(Path(tmp) / "s.duckdb"), "--out", str(Path(tmp) / "out")])
        err = capfd.readouterr().err
        assert code == 3, err
        assert "transactions.parquet: not a readable Parquet file" in err
        assert "error[E304]" in err and not (Path(tmp) / "out" / "lakeshore" / FIRST).exists()
