"""exceptions.html: escaped, self-contained, and filtered in a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape
from scenario import CUSTOMER, Scenario, line

from engine.config.ruleset import load_ruleset
from engine.exceptions import Problem, exceptions_table
from engine.report import ExceptionsBuilder, _escaped, _rule_cell, render_exceptions

TAX = """\
kind: tax
version: 1
hit_policy: first
rounding_level: line
rules:
  - {id: de, when: 'ship_to_country == "DE"', code: DE, rate: 19%}
"""
HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A night with two errors (lines no rule matches) and one warning (a column named
    like an HTML tag, which must show as text)."""
    s = Scenario(tmp_path_factory.mktemp("report"), TAX)
    customers = [{**CUSTOMER, HOSTILE: "x"}, {**CUSTOMER, "customer_id": "C2"}]
    lines = [line("T1", "1", "10", ship_to_country="FR"), line("T2", "1", "10"),
             line("T3", "1", "10", customer="C2", ship_to_country="AT")]
    assert s.night("2026-03-02", customers=customers, transactions=lines) == 0
    return s.tmp / "out" / "testco" / "2026-03-02" / "exceptions.html"


class _Rows(HTMLParser):
    """The body rows of #rows: their data attributes and whether they are hidden."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.shown = ""
        self._in_shown = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-severity" in attrs:
            self.rows.append(attrs)
        self._in_shown = attrs.get("id") == "shown"

    def handle_data(self, data):
        if self._in_shown:
            self.shown += data


def _parse(html: str) -> _Rows:
    parser = _Rows()
    parser.feed(html)
    return parser


def test_the_page_escapes_everything_and_needs_no_network(report):
    html = report.read_text()
    assert HOSTILE not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert not re.search(r'(src|href)="https?:', html)  # no outside resources
    rows = _parse(html).rows
    assert sorted((r["data-severity"], r["data-code"]) for r in rows) == [
        ("error", "TAX_NO_RULE"), ("error", "TAX_NO_RULE"), ("warning", "UNKNOWN_COLUMN")]
    assert {r["data-customer"] for r in rows} == {"C1", "C2", ""}
    assert html.count('href="file://') == 2  # the two rule references link to tax.yaml
    assert "hit_policy: first" in html  # the rule's source line is shown
    assert "· 3 exceptions</div>" in html


def test_one_exception_is_counted_as_one(tmp_path):
    ruleset = load_ruleset(Scenario(tmp_path, TAX).rules)
    one = exceptions_table([Problem("warning", "CREDIT_HOLD", "credit", "customer", "C1",
                                    "customer C1 is on credit hold")], "r1")
    html = "".join(render_exceptions(one, ruleset, "2026-03-02", "r1"))
    assert "· 1 exception</div>" in html and "1 of 1 shown" in html


def _problems() -> list[Problem]:
    """Problems of several stages, some about customers, given out of order."""
    return [
        Problem("warning", "CREDIT_HOLD", "credit", "customer", "C2", "C2 is held"),
        Problem("info", "RULE_SET", "custom", "invoice", "I1", "rule r set x"),
        Problem("warning", "PAYMENT_UNMATCHED", "matching", "payment", "P2", "P2 <unmatched>",
                None, "matching.yaml:3", details={"customer_id": "C1"}),
        Problem("warning", "UNKNOWN_COLUMN", "ingest", "file", "t.csv", "t.csv has x"),
        Problem("info", "OVERPAYMENT", "matching", "payment", "P1", "P1 paid more",
                details={"customer_id": "C9"}),
        Problem("warning", "CREDIT_HOLD", "credit", "customer", "C1", "C1 is held"),
    ]


def test_exceptions_built_a_stage_at_a_time_are_those_built_at_the_end(tmp_path):
    """The run seals stages as it goes and has the rows made on a worker: the table and
    the page are byte for byte those made from every problem at the end."""
    ruleset = load_ruleset(Scenario(tmp_path, TAX).rules)
    problems = _problems()
    whole = exceptions_table(problems, "r1")
    builder = ExceptionsBuilder(ruleset, "r1")
    try:
        builder.add([p for p in problems if p.stage in ("ingest", "custom")])
        builder.later("matching", lambda: [p for p in problems if p.stage == "matching"])
        builder.seal("matching")
        with pytest.raises(ValueError, match="matching problems after the stage was sealed"):
            builder.add([problems[2]])
        builder.later("credit", lambda: [p for p in problems if p.stage == "credit"])
        built_table, built = builder.finish()
    finally:
        builder.close()
    assert built_table.equals(whole)
    assert whole.column("exception_id").to_pylist() == [f"r1-{i:06d}" for i in range(1, 7)]
    assert whole.column("entity_id").to_pylist() == ["t.csv", "P1", "P2", "C1", "C2", "I1"]
    at_end = "".join(render_exceptions(whole, ruleset, "2026-03-02", "r1"))
    assert "".join(render_exceptions(built_table, ruleset, "2026-03-02", "r1", built)) == at_end
    assert 'data-customer="C9"' in at_end and "P2 &lt;unmatched&gt;" in at_end


def test_a_failure_in_problems_made_later_fails_the_finish(tmp_path):
    """A maker that raises, or makes another stage's problems (they would be numbered
    among the wrong stage's), fails `finish`, and so the night, rather than being lost."""
    ruleset = load_ruleset(Scenario(tmp_path, TAX).rules)
    problems = _problems()

    def broken() -> list[Problem]:
        raise RuntimeError("a bug in a message")

    for stage, make, error in (
            ("credit", broken, "a bug in a message"),
            ("matching", lambda: [problems[0]], "problems of credit made as matching's")):
        builder = ExceptionsBuilder(ruleset, "r1")
        try:
            builder.later(stage, make)
            with pytest.raises((RuntimeError, ValueError), match=error):
                builder.finish()
        finally:
            builder.close()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed and could "
                    "not be installed here (make test tries apt-get install chromium)")
def test_a_filter_in_a_real_browser_shows_only_the_matching_rows(report, tmp_path):
    url = report.resolve().as_uri() + "#severity=error&customer=C2"
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([_chromium(), *BROWSER_FLAGS, *profile, "--dump-dom", url],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    page = _parse(dom)
    visible = [r for r in page.rows if "hidden" not in r]
    assert [(r["data-severity"], r["data-customer"]) for r in visible] == [("error", "C2")]
    assert page.shown.strip() == "1 of 3 shown"
    shot = tmp_path / "exceptions.png"
    subprocess.run([_chromium(), *BROWSER_FLAGS, *profile, "--window-size=1400,600",
                    f"--screenshot={shot}", url], capture_output=True, timeout=60, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
    shutil.copy(shot, Path(__file__).parent / ".last-report.png")  # for a person to look at


def test_a_rule_reference_without_its_file_is_shown_but_not_linked(tmp_path):
    s = Scenario(tmp_path, TAX)
    ruleset = load_ruleset(s.rules)
    assert _rule_cell(ruleset, "tax.yaml:1", "de").startswith('<a href="file://')
    gone = _rule_cell(ruleset, "gone.yaml:3", "x<y")
    assert gone == "<code>gone.yaml:3</code> <code>x&lt;y</code>"
    assert _rule_cell(ruleset, None, None) == ""


@given(st.lists(st.one_of(st.none(), st.text(), st.text(alphabet="ab&<>\"'"))))
def test_a_column_is_escaped_as_markupsafe_escapes_each_value(values):
    """Whether or not the column has anything to escape (then it is looked through once)."""
    assert _escaped(pa.array(values, pa.string())) == [
        "" if v is None else str(escape(v)) for v in values]
