"""`ruledger test`: a client's rule tests, each a real night over a few rows.

A test file `rules/<client>/tests/*.yaml` holds a list of tests:

    tests:
      - name: german_customer_pays_19_percent
        as_of: 2026-03-02                # optional: else the latest txn_date, received_on,
                                         # opened_on or rate_date of the rows
        given:                           # canonical columns (the client's `inputs:`
          customers:                     # file layout is not applied)
            - {customer_id: C1, name: A GmbH, country: DE, currency: EUR}
          transactions:
            - {txn_id: T1, customer_id: C1, txn_date: 2026-03-01, product_code: P,
               quantity: 1, unit_price: 100.00, currency: EUR}
        expect:
          invoice_lines:                 # exactly these rows, compared on the columns named
            - {txn_id: T1, tax_code: DE-STD, tax_amount: 19.00}
          exceptions:
            contains: [{code: TAX_NO_RULE}]   # at least these rows
            absent: [{code: CREDIT_HOLD}]      # none of these

Each test runs the client's real rules on an empty state in a temporary folder,
so it shows what a night with those rows would write. Numbers compare as numbers
(19 equals 19.0000), dates as ISO text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from loguru import logger

from engine import tables
from engine.config.ruleset import RuleSet, load_ruleset
from engine.config.yamlpos import Positions, load_yaml
from engine.errors import Diagnostic, Diagnostics, RuledgerError, RuleError, SourceRef, did_you_mean

MODES = ("rows", "contains", "absent")
# The dates of things that happen on a night; a due date is not one.
EVENT_DATES = {("transactions", "txn_date"), ("payments", "received_on"),
               ("disputes", "opened_on"), ("fx_rates", "rate_date")}


@dataclass(frozen=True)
class Expectation:
    table: str
    mode: str  # rows: exactly these; contains: at least these; absent: none of these
    rows: tuple[dict, ...]


@dataclass(frozen=True)
class RuleTest:
    name: str
    ref: SourceRef
    as_of: dt.date
    given: dict[str, list[dict]]
    expect: tuple[Expectation, ...]


@dataclass
class Outcome:
    test: RuleTest
    failures: list[str] = field(default_factory=list)  # each a readable block

    @property
    def passed(self) -> bool:
        return not self.failures


# -- reading test files -----------------------------------------------------------------

def test_files(rules_dir: Path) -> list[Path]:
    folder = rules_dir / "tests"
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def load_tests(path: Path) -> list[RuleTest]:
    """The tests of one file; raise RuleError naming every problem at its place."""
    diags = Diagnostics()
    data, pos = load_yaml(path.read_text(encoding="utf-8"), str(path))
    diags.extend(pos.problems)
    items = data.get("tests") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise RuleError([Diagnostic("E900", "a test file holds `tests:`, a list of tests",
                                    pos.ref(()), "see README: Rule tests")])
    out = []
    for i, item in enumerate(items):
        test = _test(item, ("tests", i), pos, diags)
        if test is not None:
            out.append(test)
    names = [t.name for t in out]
    for t in out:
        if names.count(t.name) > 1:
            diags.add("E901", f"two tests named {t.name}", t.ref, "test names are unique "
                      "within a file")
            break
    diags.raise_if_any()
    return out


def _test(item: Any, path: tuple, pos: Positions, diags: Diagnostics) -> RuleTest | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        diags.add("E900", "a test is a mapping with a `name`", pos.ref(path))
        return None
    for key in item:
        if key not in ("name", "as_of", "given", "expect", "description"):
            diags.add("E902", f"unknown key {key!r} in a test", pos.key_ref(path + (key,)),
                      did_you_mean(str(key), ("name", "as_of", "given", "expect",
                                              "description")))
    given = _tables(item.get("given") or {}, path + ("given",), pos, diags, tables.INPUTS)
    expect = []
    raw = item.get("expect")
    if not isinstance(raw, dict) or not raw:
        diags.add("E900", f"test {item['name']} expects nothing", pos.ref(path),
                  "add `expect:` with the rows of one or more output tables")
        raw = {}
    for table, spec in raw.items():
        where = path + ("expect", table)
        if table not in tables.OUTPUTS:
            diags.add("E903", f"unknown output table {table!r}", pos.key_ref(where),
                      did_you_mean(str(table), tables.OUTPUTS) or
                      f"tables: {', '.join(tables.OUTPUTS)}")
            continue
        parts = {"rows": spec} if isinstance(spec, list) else spec
        if not isinstance(parts, dict) or not set(parts) <= set(MODES):
            diags.add("E904", f"expect.{table} is a list of rows, or `contains:` / `absent:` "
                              "lists", pos.ref(where))
            continue
        for mode, rows in parts.items():
            at = where if isinstance(spec, list) else where + (mode,)
            checked = _rows(rows, at, pos, diags, table, _columns(table))
            if checked is not None:
                expect.append(Expectation(table, mode, tuple(checked)))
    as_of = _as_of(item, path, pos, diags, given)
    if as_of is None:
        return None
    return RuleTest(item["name"], pos.ref(path + ("name",)), as_of, given, tuple(expect))


def _columns(table: str) -> list[str]:
    return [f.name for f in tables.OUTPUTS[table] if f.name != "run_id"]


def _tables(raw: Any, path: tuple, pos: Positions, diags: Diagnostics,
            known: dict) -> dict[str, list[dict]]:
    if not isinstance(raw, dict):
        diags.add("E904", "`given` maps input tables to lists of rows", pos.ref(path))
        return {}
    out = {}
    for table, rows in raw.items():
        if table not in known:
            diags.add("E903", f"unknown input table {table!r}", pos.key_ref(path + (table,)),
                      did_you_mean(str(table), known) or f"tables: {', '.join(known)}")
            continue
        checked = _rows(rows, path + (table,), pos, diags, table, list(known[table].names))
        if checked is not None:
            out[table] = checked
    return out


def _rows(rows: Any, path: tuple, pos: Positions, diags: Diagnostics, table: str,
          columns: list[str]) -> list[dict] | None:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        diags.add("E904", f"{table}: a list of rows, each a mapping of column: value",
                  pos.ref(path))
        return None
    if table == "aging":
        return rows  # its bucket columns are the client's own
    for i, row in enumerate(rows):
        for column in row:
            if column not in columns:
                diags.add("E905", f"unknown column {column!r} of {table}",
                          pos.key_ref(path + (i, column)),
                          did_you_mean(str(column), columns) or f"columns: {', '.join(columns)}")
    return rows


def _as_of(item: dict, path: tuple, pos: Positions, diags: Diagnostics,
           given: dict[str, list[dict]]) -> dt.date | None:
    """The test's night: `as_of`, else the latest line, payment, dispute or rate date."""
    if "as_of" in item:
        try:
            return dt.date.fromisoformat(str(item["as_of"]))
        except ValueError:
            diags.add("E906", f"as_of {item['as_of']!r} is not a date YYYY-MM-DD",
                      pos.ref(path + ("as_of",)))
            return None
    dates = []
    for table, rows in given.items():
        for row in rows:
            for column, value in row.items():
                if (table, column) in EVENT_DATES:
                    try:
                        dates.append(dt.date.fromisoformat(str(value)))
                    except ValueError:
                        pass  # the night's ingest rejects it, and says why
    if not dates:
        diags.add("E906", f"test {item['name']} needs an as_of (no line, payment, dispute or "
                          "rate date to take it from)", pos.ref(path),
                  "add `as_of: YYYY-MM-DD`")
        return None
    return max(dates)


# -- running ----------------------------------------------------------------------------

def for_tests(ruleset: RuleSet) -> RuleSet:
    """The client's rules with canonical input files and no reject limit."""
    client = dataclasses.replace(ruleset.client, inputs={}, max_reject_ratio=Decimal(1))
    return dataclasses.replace(ruleset, client=client)


def run_test(ruleset: RuleSet, test: RuleTest) -> Outcome:
    from engine.run import RunOptions, run_night

    outcome = Outcome(test)
    with tempfile.TemporaryDirectory(prefix="ruledger-test-") as tmp:
        drop = Path(tmp) / "drop"
        drop.mkdir()
        for table, rows in test.given.items():
            with (drop / f"{table}.jsonl").open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, default=str) + "\n")
        options = RunOptions(rules_dir=ruleset.root, drop_dir=drop, as_of=test.as_of,
                             state_path=Path(tmp) / "state.duckdb", out_root=Path(tmp) / "out",
                             keep_before=False, ruleset=ruleset)
        try:
            result = run_night(options)
        except RuledgerError as exc:
            outcome.failures.append(f"the night did not run: {exc}")
            return outcome
        for e in test.expect:
            path = result.folder / f"{e.table}.parquet"
            actual = pq.read_table(path).to_pylist() if path.exists() else []
            failure = compare(e, actual)
            if failure:
                outcome.failures.append(failure)
    return outcome


def run_tests(rules_dir: Path) -> list[tuple[Path, list[Outcome]]]:
    """Every test file of the client, each test run; RuleError for bad rules or tests."""
    ruleset = for_tests(load_ruleset(rules_dir))
    files = test_files(rules_dir)
    loaded = []
    problems: list[Diagnostic] = []
    for path in files:
        try:
            loaded.append((path, load_tests(path)))
        except RuleError as exc:
            problems += exc.diagnostics
    if problems:
        raise RuleError(problems)
    out = []
    for path, tests in loaded:
        with logger.contextualize(client=ruleset.client.id):
            out.append((path, [run_test(ruleset, t) for t in tests]))
    return out


# -- comparing --------------------------------------------------------------------------

def same(expected: Any, actual: Any) -> bool:
    """A test's value against an output value: numbers as numbers, dates as ISO text."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(expected).lower() == str(actual).lower()
    if isinstance(actual, int | Decimal):
        try:
            return Decimal(str(expected)) == Decimal(actual)
        except InvalidOperation:
            return False
    return str(expected) == str(actual)


def compare(e: Expectation, actual: list[dict]) -> str | None:
    """None when the rows are as expected; else a table of what differs."""
    unmatched = list(range(len(actual)))
    missing, found = [], []
    for row in e.rows:
        hit = next((i for i in unmatched if all(same(v, actual[i].get(k))
                                                for k, v in row.items())), None)
        if hit is None:
            missing.append(row)
        else:
            unmatched.remove(hit)
            found.append(row)
    columns = list(dict.fromkeys(k for row in e.rows for k in row)) or [
        c for c in (actual[0] if actual else {}) if c != "run_id"]
    if e.mode == "absent":
        if not found:
            return None
        return _table(f"{e.table}: {len(found)} row(s) found that should be absent",
                      columns, [("+", r) for r in found])
    extra = [actual[i] for i in unmatched] if e.mode == "rows" else []
    if not missing and not extra:
        return None
    said = [f"{len(missing)} expected row(s) not found"] if missing else []
    said += [f"{len(extra)} row(s) not expected"] if extra else []
    return _table(f"{e.table}: {', '.join(said)}", columns,
                  [("-", r) for r in missing] + [("+", r) for r in extra])


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Decimal):  # as few places as it needs, and at least two
        places = max(2, -value.normalize().as_tuple().exponent)
        return format(value.quantize(Decimal(1).scaleb(-places)), "f")
    return str(value)


def _table(title: str, columns: list[str], rows: list[tuple[str, dict]]) -> str:
    cells = [[_show(r.get(c)) if c in r or mark == "+" else "" for c in columns]
             for mark, r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = [title, "    " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for (mark, _), row in zip(rows, cells, strict=True):
        lines.append(f"  {mark} " + "  ".join(v.ljust(w) for v, w in
                                              zip(row, widths, strict=True)))
    lines.append("  (- expected, not in the output; + in the output, not expected)")
    return "\n".join(line.rstrip() for line in lines)
