"""Fuzz the rule files of the shipped clients through the real CLI.

The rule files of rules/nordwind and rules/lakeshore (plus a small custom.rules file)
are damaged: lines deleted, doubled, swapped or re-indented, values replaced by random
text, numbers, dates and YAML oddities, unicode inserted, files truncated, deleted or
doubled, keys misspelt, and the DSL expressions inside (`when:`, `exclude:`, computed
columns, *.rules) mangled or replaced by random expressions. "Gentle" damage (another
number or enum value) keeps most rule sets valid, so that runs go on. Whatever the damage:

- `ruledger check` exits 0 or 2, never 4 and never with a traceback; on 2 it names
  each error as file:line:col of a file of the folder, the line inside the file
  (counted in \n-separated lines);
- `ruledger run` on the client's sample night (the first, or the second after a first
  under the shipped rules) exits 0, 2 or 3 and agrees with check on whether the rules
  are bad; on 0 the outputs keep their invariants, else no output and no run of the date.

Each bug the fuzzer found has a small test of its own at the end of the file.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_fuzz_drops import check_outputs

from engine.cli import main
from engine.run import run_log

ROOT = Path(__file__).resolve().parents[1]
FIRST, SECOND = "2026-03-02", "2026-03-03"
CLIENTS = ("nordwind", "lakeshore")
# No shrinking: each example is a whole run, and shrinking one failure takes minutes.
# A failure prints its draws (labelled), which name the damage done.
SETTINGS = dict(deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

CUSTOM_RULES = """\
# Custom rules: reviews and a fee waiver.
rule credit_note_review on invoices
  when gross_amount < 0 and abs(gross_amount) > 100
  raise warning CREDIT_NOTE_REVIEW "credit note {invoice_id} needs sign-off"

rule strategic_no_fee on dunning_notices
  when customer.segment == "strategic"
  set fee_amount = 0

rule round_payment on payments
  when amount > 0 and amount == round(amount, 0)
  raise info ROUND_PAYMENT "payment {payment_id}: round amount"
"""


def _originals(client: str) -> dict[str, str]:
    folder = ROOT / "rules" / client
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())
            if p.is_file()}


ORIGINAL = {client: _originals(client) for client in CLIENTS}

# ---------------------------------------------------------------- values

FIELDS = ["amount", "customer_id", "reference", "gross_amount", "product_code", "quantity",
          "unit_price", "ship_to_country", "ship_to_region", "tax_category", "txn_date",
          "customer.country", "customer.segment", "customer.vat_id", "customer.tax_exempt",
          "customer.exemption_id", "customer.name", "invoice.currency", "line.quantity",
          "client.base_currency", "as_of", "customer.contry", "nope", "customer", "x.y.z",
          "fee_amount", "days_overdue", "level"]
SETS = ["EU", "DACH", "NEXUS_STATES", "NO_SALES_TAX_STATES", "NOPE"]
FUNCTIONS = ["days_between", "round", "abs", "coalesce", "lower", "upper", "contains",
             "matches", "extract", "concat", "nope", "if"]

atom = st.one_of(
    st.sampled_from(FIELDS),
    st.integers(-10**25, 10**25).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from(['"DE"', "'US-CA'", '""', '"^(BK|FD)-"', '"[("', '"(a"', '"\\\\"',
                     '"é€😀"', "2026-01-01", "2026-02-30", "9999-99-99", "0000-01-01",
                     "19%", "0%", "100.5%", "999999999999999999999%", "true", "false",
                     "null", "1e5", "0.0000001", "-0", "1/0"]),
)


def _expr(children):
    unary = st.tuples(st.sampled_from(["not ", "-", "(", "abs("]), children).map(
        lambda t: t[0] + t[1] + (")" if t[0] in ("(", "abs(") else ""))
    binary = st.tuples(children, st.sampled_from(
        [" and ", " or ", " == ", " != ", " < ", " >= ", " + ", " - ", " * ", " / ",
         " matches ", " contains "]), children).map("".join)
    between = st.tuples(children, children, children).map(
        lambda t: f"{t[0]} between {t[1]} and {t[2]}")
    in_list = st.tuples(children, st.lists(children, max_size=3)).map(
        lambda t: f"{t[0]} in [{', '.join(t[1])}]")
    in_set = st.tuples(children, st.sampled_from(SETS), st.booleans()).map(
        lambda t: f"{t[0]} {'not in' if t[2] else 'in'} {t[1]}")
    call = st.tuples(st.sampled_from(FUNCTIONS), st.lists(children, max_size=3)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})")
    if_ = st.tuples(children, children, children).map(
        lambda t: f"if {t[0]} then {t[1]} else {t[2]}")
    is_null = st.tuples(children, st.booleans()).map(
        lambda t: f"{t[0]} is {'not ' if t[1] else ''}null")
    return st.one_of(unary, binary, between, in_list, in_set, call, if_, is_null)


expression = st.recursive(atom, _expr, max_leaves=8)

TOKENS = [" and ", " or ", "not ", "(", ")", "[", "]", ",", "==", "!=", "<", ">", " in ",
          " between ", " is null", " is not null", "customer.", ".", '"', "'", "%", "-",
          "*", "/", "+", "if ", " then ", " else ", "round(", "days_between(", "matches",
          "extract(", "nope", "EU", "2026-13-45", "99999999999999999999999", "#", "{", "}",
          "\\", "\t", "\n", "é", "\u200b", "\x00"]

JUNK = ["\u2028", "\x85", "\ufeff", "\x00", "\x1b[31m", "😀", "\t", ": ", "- ", "#", "'", '"',
        "&", "*", "!", "%"]
YAML_VALUES = [
    "", "~", "null", "true", "false", "yes", "no", "on", "NO", "0", "-1", "1.5", "1e400",
    "-0.0", ".nan", ".inf", "-.inf", "0x10", "0o17", "1_000", "99999999999999999999999",
    "2026-02-30", "2026-03-02", "2026-03-02T10:00:00Z", "12:30", "150%", "-5%", "19 %",
    "1e3%", "[]", "{}", "[a, b]", "{a: 1}", "[", "{", "]", "}", "|", ">", "&a", "*a",
    "&a [*a, *a]", "!!python/object:os.system", "!!binary aGk=", "!!str 1", "!!int x",
    "!!float x", "!!float .nan", "!!float .inf", "!!int 0x1F", "!!timestamp x", "? a", "- x",
    ": x", "'", '"', "'unterminated", '"unterminated', '"\\x"', "'it''s'", "%YAML 1.2", "---",
    "...", "@x", "`x`", "#comment", "a: b: c", "[" * 300 + "]" * 300, "[" * 600 + "]" * 600,
    "{a: " * 120 + "1" + "}" * 120, "<<: *a", "éñ€😀", "\u202e\u200b", "\t", "a\tb"]
yaml_value = st.one_of(
    st.sampled_from(YAML_VALUES),
    st.integers(-10**30, 10**30).map(str),
    st.dates().map(str),
    st.text(max_size=20).filter(lambda s: "\n" not in s and "\r" not in s),
)


# ---------------------------------------------------------------- mutations

EXPR_LINE = re.compile(r"^(\s*(?:-\s+)?[\w-]+:\s*)'((?:[^']|'')*)'(.*)$")
VALUE_LINE = re.compile(r"^(\s*(?:-\s+)?[^#:\s][^:#]*:\s+)(\S.*?)(\s*#.*)?$")
KEY_LINE = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z_][\w-]*)(:.*)$")


EXPR_MUTATIONS = ["insert", "delete", "replace", "random", "random", "swap_field", "truncate",
                  "deep"]


def _mutate_expr(data, text: str) -> str:
    kind = data.draw(st.sampled_from(EXPR_MUTATIONS), label="expr mutation")
    if kind == "random":
        return data.draw(expression, label="expression")
    if kind == "deep":  # a long, but well-formed, expression
        n = data.draw(st.sampled_from([50, 300, 1200]), label="depth")
        return data.draw(st.sampled_from([
            "not " * n + text, f"({text})" + " and true" * n, "1" + " + 1" * n + " > 0",
            "-" * n + "1 < 0", "if true then " * n + "true" + " else false" * n,
            "(" * n + text + ")" * n]))
    at = data.draw(st.integers(0, len(text)))
    if kind == "insert":
        return text[:at] + data.draw(st.sampled_from(TOKENS)) + text[at:]
    if kind == "delete":
        end = data.draw(st.integers(at, min(len(text), at + 6)))
        return text[:at] + text[end:]
    if kind == "truncate":
        return text[:at]
    if kind == "swap_field":
        names = re.findall(r"[A-Za-z_][\w.]*", text)
        if names:
            old = data.draw(st.sampled_from(names))
            return text.replace(old, data.draw(st.sampled_from(FIELDS + SETS + FUNCTIONS)), 1)
        return text
    words = re.findall(r"\w+|[^\w\s]+", text)
    if words:
        old = data.draw(st.sampled_from(words))
        return text.replace(old, data.draw(st.sampled_from(TOKENS + FIELDS)).strip(), 1)
    return text


NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:\.\d+)?%?(?![\w.-])")
NUMBERS = ["0", "1", "0.01", "0.005", "3", "7", "30", "365", "10000", "999999999", "-1",
           "0%", "1%", "19%", "33.333%", "99.99%", "100%", "150%", "0.5%"]
ENUMS = [("first", "unique"), ("line", "invoice"), ("half_up", "half_even"),
         ("true", "false"), ("partial", "exception"), ("oldest", "exception"),
         ("act/365", "act/360"), ("email", "letter"), ("hold", "warn"), ("warn", "ok"),
         ("reference", "amount"), ("amount", "combination"), ("fees", "principal"),
         ("due_date", "invoice_date"), ("EUR", "USD"), ("DE", "US")]


def _semantic(data, lines: list[str]) -> None:
    """A change that likely keeps the rules valid: another number, or another enum value."""
    spots = [i for i, ln in enumerate(lines)
             if not ln.lstrip().startswith("#") and (NUMBER.search(ln.partition("#")[0])
                                                     or any(f": {a}" in ln or f" {a}" in ln
                                                            for pair in ENUMS for a in pair))]
    if not spots:
        return
    i = data.draw(st.sampled_from(spots), label="semantic line")
    code, hash_, comment = lines[i].partition("#")
    if data.draw(st.booleans()) and NUMBER.search(code):
        found = list(NUMBER.finditer(code))
        m = found[data.draw(st.integers(0, len(found) - 1))]
        new = data.draw(st.sampled_from(NUMBERS), label="number")
        if m.group(0).endswith("%") != new.endswith("%"):
            new = new.rstrip("%") + ("%" if m.group(0).endswith("%") else "")
        code = code[:m.start()] + new + code[m.end():]
    else:
        pairs = [(a, b) for pair in ENUMS for a, b in (pair, pair[::-1])
                 if re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", code)]
        if pairs:
            a, b = data.draw(st.sampled_from(pairs), label="enum")
            code = re.sub(rf"(?<![\w-]){re.escape(a)}(?![\w-])", b, code, count=1)
    lines[i] = code + hash_ + comment


TEXT_MUTATIONS = ["expr", "expr", "expr", "value", "value", "delete_line", "duplicate_line",
                  "swap_lines", "indent", "key", "insert", "truncate", "semantic"]


def _mutate_text(data, name: str, text: str, gentle: bool = False) -> str:
    lines = text.split("\n")
    kind = "semantic" if gentle else data.draw(st.sampled_from(TEXT_MUTATIONS),
                                               label=f"{name} mutation")
    if kind == "semantic":
        _semantic(data, lines)
        return "\n".join(lines)
    pick = st.integers(0, len(lines) - 1)
    if kind == "expr":
        spots = [i for i, ln in enumerate(lines) if EXPR_LINE.match(ln)
                 or (name.endswith(".rules") and re.match(r"\s+(when|set)\b", ln))]
        if spots:
            i = data.draw(st.sampled_from(spots))
            if name.endswith(".rules"):
                head, _, body = lines[i].partition(lines[i].split()[0])
                lines[i] = head + lines[i].split()[0] + _mutate_expr(data, body)
            else:
                m = EXPR_LINE.match(lines[i])
                new = _mutate_expr(data, m.group(2).replace("''", "'"))
                quoted = data.draw(st.booleans())  # else raw, which may break the YAML
                lines[i] = m.group(1) + "'" + (new.replace("'", "''") if quoted else new) \
                    + "'" + m.group(3)
            return "\n".join(lines)
        kind = "value"
    if kind == "value":
        spots = [i for i, ln in enumerate(lines) if VALUE_LINE.match(ln)]
        if spots:
            i = data.draw(st.sampled_from(spots))
            m = VALUE_LINE.match(lines[i])
            lines[i] = m.group(1) + data.draw(yaml_value, label="value") + (m.group(3) or "")
    elif kind == "delete_line":
        del lines[data.draw(pick)]
    elif kind == "duplicate_line":
        i = data.draw(pick)
        lines.insert(i, lines[i])
    elif kind == "swap_lines":
        i, j = data.draw(pick), data.draw(pick)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        i = data.draw(pick)
        change = data.draw(st.sampled_from([" ", "  ", "\t", "-1", "-2", "all"]))
        if change == "all":
            lines[i] = lines[i].lstrip()
        elif change.startswith("-"):
            lines[i] = lines[i][int(change[1:]):] if lines[i][:2].strip() == "" else lines[i]
        else:
            lines[i] = change + lines[i]
    elif kind == "key":
        spots = [i for i, ln in enumerate(lines) if KEY_LINE.match(ln)]
        if spots:
            i = data.draw(st.sampled_from(spots))
            m = KEY_LINE.match(lines[i])
            key = m.group(2)
            new = data.draw(st.sampled_from(
                [key[:-1], key + "s", key.upper(), key.replace("_", "-"), "unknown_key",
                 "kind", "id", "when", "", "é"]))
            lines[i] = m.group(1) + new + m.group(3)
    elif kind == "insert":
        i = data.draw(pick)
        at = data.draw(st.integers(0, len(lines[i])))
        junk = data.draw(st.one_of(st.text(min_size=1, max_size=6),
                                   st.sampled_from(JUNK)))
        lines[i] = lines[i][:at] + junk + lines[i][at:]
    elif kind == "truncate":
        return text[:data.draw(st.integers(0, len(text)))]
    return "\n".join(lines)


def _mutated_folder(data, client: str, tmp: Path, gentle: bool = False) -> Path:
    """The client's rules with 1-3 files damaged; `gentle`: changed in ways that are
    likely still valid (numbers, enum values), so that the run goes on."""
    files = dict(ORIGINAL[client])
    if data.draw(st.booleans(), label="custom.rules"):
        files["custom.rules"] = CUSTOM_RULES
    names = sorted(files)
    raw: dict[str, bytes] = {}
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3), label="files")
    for name in chosen:
        for _ in range(data.draw(st.integers(1, 3))):
            files[name] = _mutate_text(data, name, files[name], gentle)
    for name, text in files.items():
        raw[name] = text.encode("utf-8", errors="surrogatepass")
    whole = "none" if gentle else data.draw(st.sampled_from(
        ["none", "none", "none", "delete", "empty", "not_utf8", "bom", "crlf", "tabs",
         "second_kind"]), label="file-level")
    name = data.draw(st.sampled_from(names), label="file-level target")
    if whole == "delete":
        del raw[name]
    elif whole == "empty":
        raw[name] = b""
    elif whole == "not_utf8":
        at = data.draw(st.integers(0, len(raw[name])))
        raw[name] = raw[name][:at] + b"\xff\xfe\xc3" + raw[name][at:]
    elif whole == "bom":
        raw[name] = b"\xef\xbb\xbf" + raw[name]
    elif whole == "crlf":
        raw[name] = raw[name].replace(b"\n", b"\r\n")
    elif whole == "tabs":
        raw[name] = raw[name].replace(b"  ", b"\t")
    elif whole == "second_kind":
        raw["copy_of_" + name.replace(".rules", ".yaml")] = raw[name]
    folder = tmp / "rules" / client
    folder.mkdir(parents=True)
    for name, content in raw.items():
        (folder / name).write_bytes(content)
    return folder


# ---------------------------------------------------------------- checks

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error\[E\d+\]: ", re.M)


def _check(folder: Path, capfd) -> int:
    capfd.readouterr()
    code = main(["check", str(folder)])
    captured = capfd.readouterr()
    err = captured.err
    assert "Traceback" not in err, err[-3000:]
    assert "internal error" not in err and "internal failure" not in err, err[-3000:]
    assert code in (0, 2), (code, err[-3000:])
    if code == 0:
        return code
    located = list(LOCATED.finditer(err))
    assert located, err[-3000:]
    code_json = main(["check", "--json", str(folder)])
    diags = json.loads(capfd.readouterr().out)
    assert code_json == 2, diags
    errors = [d for d in diags if d["severity"] == "error"]
    assert errors, diags
    for d in errors:
        assert d["file"] and d["line"] and d["col"], d
        path = Path(d["file"])
        assert path.parent == folder, d
        assert d["col"] >= 1, d
        if path.is_file():  # else a file that is missing, e.g. client.yaml
            n_lines = len(path.read_bytes().split(b"\n"))
            assert 1 <= d["line"] <= n_lines, (d, n_lines)
    return code


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_check_of_fuzzed_rules_exits_0_or_2_with_located_errors(data, capfd):
    client = data.draw(st.sampled_from(CLIENTS), label="client")
    with tempfile.TemporaryDirectory() as tmp:
        _check(_mutated_folder(data, client, Path(tmp)), capfd)


@settings(max_examples=16, **SETTINGS)
@given(data=st.data())
def test_run_with_fuzzed_rules_exits_0_2_or_3(data, capfd):
    client = data.draw(st.sampled_from(CLIENTS), label="client")
    second = data.draw(st.sampled_from([False, False, True]), label="after a first night")
    night = SECOND if second else FIRST
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        state, out = tmp / "state.duckdb", tmp / "out"
        if second:  # the first night under the shipped rules, the second under changed ones
            assert main(["run", str(ROOT / "rules" / client), "--drop",
                         str(ROOT / "samples" / client / FIRST), "--state", str(state),
                         "--out", str(out)]) == 0
        gentle = data.draw(st.booleans(), label="gentle")
        folder = _mutated_folder(data, client, tmp, gentle)
        checked = _check(folder, capfd)
        code = main(["run", str(folder), "--drop", str(ROOT / "samples" / client / night),
                     "--state", str(state), "--out", str(out)])
        err = capfd.readouterr().err
        assert "Traceback" not in err, err[-3000:]
        assert "internal error" not in err and "internal failure" not in err, err[-3000:]
        assert code in (0, 2, 3), (code, err[-3000:])
        assert (code == 2) == (checked == 2), (checked, code, err[-3000:])
        clients = [p.name for p in out.iterdir()] if out.exists() else []
        if code == 0:
            assert len([c for c in clients if (out / c / night).exists()]) == 1, clients
            check_outputs(next(out / c / night for c in clients if (out / c / night).exists()))
        else:
            assert not any((out / c / night).exists() for c in clients), clients
            if state.exists():
                assert not [r for r in run_log(state, client)
                            if r.as_of.isoformat() == night], "refused, but a run is kept"


# ---------------------------------------------------------------- found by the fuzzer
# One small change per bug found, so that each stays checked whatever the fuzzer draws.


def _changed(tmp: Path, client: str, name: str, old: str, new: str) -> Path:
    folder = tmp / "rules" / client
    folder.mkdir(parents=True)
    for file_name, text in ORIGINAL[client].items():
        if file_name == name:
            assert old in text, (name, old)
            text = text.replace(old, new, 1)
        (folder / file_name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("char", ["\x01", "\x1f", "\x0b", "\x9c"])
def test_control_character_in_yaml_is_a_located_error(tmp_path, char, capfd):
    folder = _changed(tmp_path, "nordwind", "credit.yaml", "default_limit: 50000",
                      f"default_limit: 50000  # note {char}")
    assert _check(folder, capfd) == 2


@pytest.mark.parametrize("value", ["!!int x", "!!int 0x1F", "!!float x", "!!float .nan",
                                   "!!float .inf"])
def test_yaml_tag_that_does_not_fit_is_a_located_error(tmp_path, value, capfd):
    folder = _changed(tmp_path, "nordwind", "credit.yaml", "default_limit: 50000",
                      f"default_limit: {value}")
    assert _check(folder, capfd) == 2


@pytest.mark.parametrize("value", ["[" * 600 + "]" * 600, "&a [*a]"],
                         ids=["nested_600", "recursive_alias"])
def test_deep_or_recursive_yaml_is_a_located_error(tmp_path, value, capfd):
    folder = _changed(tmp_path, "nordwind", "tax.yaml", "hit_policy: first",
                      f"hit_policy: {value}")
    assert _check(folder, capfd) == 2


@pytest.mark.parametrize("expr", [
    " and ".join(['segment == "strategic"'] * 1000),
    "not " * 1000 + 'segment == "strategic"',
    "1" + " + 1" * 1000 + " > 0",
    "-" * 1000 + "1 < 0",
    "if true then " * 1000 + "true" + " else false" * 1000,
], ids=["and", "not", "plus", "minus", "if"])
def test_long_expression_is_checked_or_refused(tmp_path, expr, capfd):
    folder = _changed(tmp_path, "nordwind", "credit.yaml", """when: 'segment == "strategic"'""",
                      f"when: '{expr}'")
    assert _check(folder, capfd) in (0, 2)


def test_an_alias_bomb_is_refused_quickly(tmp_path, capfd):
    """Nine levels of nine aliases would expand to 387 million values."""
    bomb = '\nx0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    folder = _changed(tmp_path, "nordwind", "credit.yaml", "otherwise: ok",
                      "otherwise: ok" + bomb)
    assert _check(folder, capfd) == 2
    main(["check", str(folder)])
    assert "error[E105]: the file holds more than 100,000 values" in capfd.readouterr().err


@pytest.mark.parametrize("char", ["\u2028", "\u0085", "\u2029"])
def test_a_line_separator_is_refused_where_an_editor_sees_it(tmp_path, char, capfd):
    """YAML counts U+2028 as a line break and editors do not: refused, at the line and
    column an editor shows."""
    folder = _changed(tmp_path, "nordwind", "credit.yaml", "default_limit: 50000",
                      f"default_limit: 50000  # a{char}b")
    assert _check(folder, capfd) == 2
    main(["check", str(folder)])
    line = ORIGINAL["nordwind"]["credit.yaml"].split("\n").index("default_limit: 50000") + 1
    assert (f"credit.yaml:{line}:26: error[E103]: character U+{ord(char):04X} is not allowed"
            in capfd.readouterr().err)
