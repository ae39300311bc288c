"""The exception report: one static page an auditor can read and filter.

Rendered with jinja2, autoescaping everything it shows; no server and no network
(styles and the filter script are inline). Each row shows the rule's source line
and links to the rule file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import jinja2
import pyarrow as pa
from markupsafe import Markup, escape

from engine.config.ruleset import RuleSet
from engine.errors import source_line

FILTERS = ("severity", "code", "stage", "customer")
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("exceptions.html.j2")


def _customer(row: dict) -> str | None:
    if row.get("entity_type") == "customer":
        return row.get("entity_id")
    details = json.loads(row["details"]) if row.get("details") else {}
    return details.get("customer_id")


def _rule_source(ruleset: RuleSet, rule_ref: str | None) -> tuple[str | None, str | None]:
    """(the rule file's URI, the text of the referenced line) for `tax.yaml:11`."""
    if not rule_ref or ":" not in rule_ref:
        return None, None
    name, _, line = rule_ref.rpartition(":")
    path = ruleset.root / name
    if not path.is_file() or not line.isdigit():
        return None, None
    return path.resolve().as_uri(), (source_line(str(path), int(line)) or "").strip()


def render_exceptions(exceptions: pa.Table, ruleset: RuleSet, as_of: str,
                      run_id: str) -> Iterator[str]:
    """The page for one run's exceptions, in pieces (a night's page can be tens of MB)."""
    rows = []
    sources: dict[str | None, tuple[str | None, str | None]] = {}  # a few rules, many rows
    for row in exceptions.to_pylist():
        ref = row.get("rule_ref")
        if ref not in sources:
            sources[ref] = _rule_source(ruleset, ref)
        href, text = sources[ref]
        rows.append({**row, "customer": _customer(row), "rule_href": href, "rule_line": text})
    counts = Counter((r["code"], r["severity"]) for r in rows)
    filters = [(name, sorted({r[name] for r in rows if r[name]})) for name in FILTERS]
    return _template().generate(
        client=ruleset.client.id, as_of=as_of, run_id=run_id, rules_digest=ruleset.digest,
        rows=[_row_html(r) for r in rows], filters=filters,
        counts=[{"code": c, "severity": s, "count": n} for (c, s), n in sorted(
            counts.items(), key=lambda kv: (_SEVERITY_ORDER.get(kv[0][1], 9), kv[0][0]))])


def _row_html(r: dict) -> Markup:
    """One exception's table row, every value escaped. Written here rather than in the
    template: a night can have tens of thousands of rows, and this is five times faster."""
    e = escape
    rule = ""
    if r["rule_ref"]:
        rule = f'<a href="{e(r["rule_href"])}"><code>{e(r["rule_ref"])}</code></a>'
        if r["rule_id"]:
            rule += f" <code>{e(r['rule_id'])}</code>"
        if r["rule_line"]:
            rule += f'<span class="src">{e(r["rule_line"])}</span>'
    return Markup(
        f'  <tr data-severity="{e(r["severity"])}" data-code="{e(r["code"])}" '
        f'data-stage="{e(r["stage"])}" data-customer="{e(r["customer"] or "")}">\n'
        f'    <td><code>{e(r["exception_id"])}</code></td>\n'
        f'    <td><span class="sev sev-{e(r["severity"])}">{e(r["severity"])}</span></td>\n'
        f'    <td><code>{e(r["code"])}</code></td>\n'
        f'    <td>{e(r["stage"])}</td>\n'
        f'    <td>{e(r["entity_type"] or "")} <code>{e(r["entity_id"] or "")}</code></td>\n'
        f'    <td>{e(r["customer"] or "")}</td>\n'
        f'    <td>{e(r["message"])}</td>\n'
        f"    <td>{rule}</td>\n"
        "  </tr>\n")
