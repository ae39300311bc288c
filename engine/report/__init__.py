"""The exception report: one static page an auditor can read and filter.

Rendered with jinja2, autoescaping everything it shows; no server and no network
(styles and the filter script are inline). Each row shows the rule's source line
and links to the rule file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import jinja2
import pyarrow as pa
import pyarrow.compute as pc
from markupsafe import Markup, escape

from engine.config.ruleset import RuleSet
from engine.errors import source_line
from engine.exceptions import STAGES, Problem, in_order, numbered_table

FILTERS = ("severity", "code", "stage", "customer")
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("exceptions.html.j2")


def _customer(entity_type: str | None, entity_id: str | None, details: dict) -> str | None:
    """The customer an exception is about: its entity, or the one its details name."""
    if entity_type == "customer":
        return entity_id
    customer = details.get("customer_id")
    return None if customer is None else str(customer)


def _rule_source(ruleset: RuleSet, rule_ref: str | None) -> tuple[str | None, str | None]:
    """(the rule file's URI, the text of the referenced line) for `tax.yaml:11`."""
    if not rule_ref or ":" not in rule_ref:
        return None, None
    name, _, line = rule_ref.rpartition(":")
    path = ruleset.root / name
    if not path.is_file() or not line.isdigit():
        return None, None
    return path.resolve().as_uri(), (source_line(str(path), int(line)) or "").strip()


def _customers(exceptions: pa.Table) -> list[str | None]:
    """`_customer` of each row of an exceptions table (its details read back from JSON)."""
    return [_customer(kind, entity, json.loads(details) if details else {})
            for kind, entity, details in zip(*(exceptions.column(name).to_pylist() for name in (
                "entity_type", "entity_id", "details")), strict=True)]


def render_exceptions(exceptions: pa.Table, ruleset: RuleSet, as_of: str, run_id: str,
                      built: tuple[list[str | None], list[Markup]] | None = None,
                      ) -> Iterator[str]:
    """The page for one run's exceptions, in pieces (a night's page can be tens of MB).
    `built`: the rows' customers and HTML, made already (see `ExceptionsBuilder`)."""
    plain = {name: exceptions.column(name).to_pylist()
             for name in ("severity", "code", "stage")}
    customers, rows = built or (None, None)
    if customers is None:
        customers = _customers(exceptions)
        rows = _rows_html(exceptions, customers, ruleset)
    counts = Counter(zip(plain["code"], plain["severity"], strict=True))
    by_name = {**plain, "customer": customers}
    filters = [(name, _options(sorted({v for v in by_name[name] if v}))) for name in FILTERS]
    return _template().generate(
        client=ruleset.client.id, as_of=as_of, run_id=run_id, rules_digest=ruleset.digest,
        rows=rows, row_count=exceptions.num_rows,
        filters=filters,
        counts=[{"code": c, "severity": s, "count": n} for (c, s), n in sorted(
            counts.items(), key=lambda kv: (_SEVERITY_ORDER.get(kv[0][1], 9), kv[0][0]))])


_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;"))


def _escaped(values: pa.Array | pa.ChunkedArray) -> list[str]:
    """Every value as HTML text (null as ''), escaped as markupsafe does, a column at once.
    A column with nothing to escape (ids, codes: most of them) is looked through once
    rather than replaced in five times."""
    text = pc.fill_null(values.cast(pa.string()), "")
    if pc.any(pc.match_substring_regex(text, "[&<>\"']")).as_py():
        for char, entity in _ENTITIES:  # & first, so no entity is escaped twice
            text = pc.replace_substring(text, char, entity)
    return text.to_pylist()


def _options(values: list[str]) -> Markup:
    """A filter's options, one per value, escaped a column at once (a night can have
    tens of thousands of customers)."""
    return Markup("".join(f'<option value="{v}">{v}</option>'
                          for v in _escaped(pa.array(values, pa.string()))))


def _rule_cell(ruleset: RuleSet, rule_ref: str | None, rule_id: str | None) -> str:
    """The rule column of a row: a link to the rule file, the rule's id, its source line."""
    if not rule_ref:
        return ""
    href, line = _rule_source(ruleset, rule_ref)
    e = escape
    cell = f"<code>{e(rule_ref)}</code>"
    if href:  # the rule file is there to link to
        cell = f'<a href="{e(href)}">{cell}</a>'
    if rule_id:
        cell += f" <code>{e(rule_id)}</code>"
    if line:
        cell += f'<span class="src">{e(line)}</span>'
    return cell


ROWS_PER_PIECE = 1000


def _rows_html(exceptions: pa.Table, customers: list[str | None],
               ruleset: RuleSet) -> list[Markup]:
    """The exceptions' table rows, every value escaped, joined ROWS_PER_PIECE to a piece.
    Written here rather than in the template, and escaped a column at a time: a night can
    have tens of thousands of rows."""
    col = {name: _escaped(exceptions.column(name)) for name in (
        "exception_id", "severity", "code", "stage", "entity_type", "entity_id", "message")}
    col["customer"] = _escaped(pa.array(customers, pa.string()))
    rules: dict[tuple[str | None, str | None], str] = {}  # a few rules, many rows
    cells = []
    for key in zip(exceptions.column("rule_ref").to_pylist(),
                   exceptions.column("rule_id").to_pylist(), strict=True):
        if key not in rules:
            rules[key] = _rule_cell(ruleset, *key)
        cells.append(rules[key])
    rows = [
        f'  <tr data-severity="{sev}" data-code="{code}" data-stage="{stage}" '
        f'data-customer="{customer}">\n'
        f"    <td><code>{eid}</code></td>\n"
        f'    <td><span class="sev sev-{sev}">{sev}</span></td>\n'
        f"    <td><code>{code}</code></td>\n"
        f"    <td>{stage}</td>\n"
        f"    <td>{etype} <code>{entity}</code></td>\n"
        f"    <td>{customer}</td>\n"
        f"    <td>{message}</td>\n"
        f"    <td>{rule}</td>\n"
        "  </tr>\n" for eid, sev, code, stage, etype, entity, message, customer, rule in zip(
        col["exception_id"], col["severity"], col["code"], col["stage"], col["entity_type"],
        col["entity_id"], col["message"], col["customer"], cells, strict=True)]
    return [Markup("".join(rows[i:i + ROWS_PER_PIECE]))
            for i in range(0, len(rows), ROWS_PER_PIECE)]


class ExceptionsBuilder:
    """The night's exceptions table and the report's rows, made a stage at a time on a
    worker thread, beside the statements of the stages after it (DuckDB lets go of
    Python while it works): at a million lines, the 40,000 exceptions took 0.3 s of
    Python at the end of the night.

    Stages add their problems; `seal` says which stages will add no more. Exceptions are
    numbered in `STAGES` order, so stages are sealed in that order."""

    def __init__(self, ruleset: RuleSet, run_id: str):
        self.ruleset, self.run_id = ruleset, run_id
        self._open: dict[str, list[Problem | Future]] = {stage: [] for stage in STAGES}
        self._parts: list[Future] = []
        self._numbered = 0  # on the worker: the exceptions numbered so far
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exceptions")

    def add(self, problems: list[Problem]) -> None:
        for problem in problems:
            if problem.stage not in self._open:
                raise ValueError(f"{problem.stage} problems after the stage was sealed")
            self._open[problem.stage].append(problem)

    def later(self, stage: str, make: Callable[[], list[Problem]]) -> None:
        """Problems of `stage` that `make` makes, on the worker: Python over tables the
        stage is done with, beside the statements that come next."""
        if stage not in self._open:
            raise ValueError(f"{stage} problems after the stage was sealed")
        self._open[stage].append(self._worker.submit(make))

    def seal(self, through: str) -> None:
        """The stages up to `through` (in `STAGES` order) are done: their rows are made."""
        for stage in STAGES[:STAGES.index(through) + 1]:
            if stage in self._open:
                self._parts.append(self._worker.submit(self._build, stage,
                                                       self._open.pop(stage)))

    def _build(self, stage: str, parts: list[Problem | Future],
               ) -> tuple[pa.Table, list, list[Markup]]:
        problems = [p for part in parts for p in (
            part.result() if isinstance(part, Future) else [part])]  # made before, in turn
        strays = {p.stage for p in problems} - {stage}
        if strays:  # they would be numbered among this stage's
            raise ValueError(f"problems of {', '.join(sorted(strays))} made as {stage}'s")
        ordered = in_order(problems)
        table = numbered_table(ordered, self.run_id, first=self._numbered + 1)
        self._numbered += table.num_rows
        customers = [_customer(p.entity_type, p.entity_id, p.details) for p in ordered]
        return table, customers, _rows_html(table, customers, self.ruleset)

    def finish(self) -> tuple[pa.Table, tuple[list[str | None], list[Markup]]]:
        """The exceptions table, and the rows' customers and HTML for `render_exceptions`."""
        self.seal(STAGES[-1])
        parts = [part.result() for part in self._parts]
        self._worker.shutdown()
        return (pa.concat_tables([table for table, _, _ in parts]).combine_chunks(),
                ([c for _, customers, _ in parts for c in customers],
                 [r for _, _, rows in parts for r in rows]))

    def close(self) -> None:
        """The worker let go (a night that failed does not wait for its report)."""
        self._worker.shutdown(wait=False, cancel_futures=True)
