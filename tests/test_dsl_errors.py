"""Rule folders with deliberate errors: the exact file, line, column, code and hint.

Each folder under tests/fixtures/dsl/ holds a valid client.yaml (trimmed from
rules/nordwind/client.yaml) and a tax.yaml with the error(s) named by the folder.
Every expected line and column below was counted by hand in the fixture file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from engine.config.ruleset import load_ruleset
from engine.dsl.check import check
from engine.dsl.compile import to_sql
from engine.dsl.parser import parse
from engine.dsl.scope import scope_for
from engine.errors import Diagnostic, RuleError, SourceRef

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dsl"


def tax_file(case: str) -> str:
    return str(FIXTURES / case / "tax.yaml")


def diagnostics(case: str) -> list[Diagnostic]:
    with pytest.raises(RuleError) as info:
        load_ruleset(FIXTURES / case)
    return info.value.diagnostics


def where(d: Diagnostic) -> tuple:
    return (d.code, d.ref.file, d.ref.line, d.ref.col, d.hint)


# case, code, line, col, length, message, hint
SINGLE = [
    ("unknown_field", "E210", 13, 40, 15, "unknown field customer.contry",
     "did you mean customer.country?"),
    ("unknown_set", "E211", 13, 31, 3, "unknown set EUU", "did you mean EU?"),
    ("type_mismatch", "E212", 13, 12, 14, "'+' needs numbers, found a number and text", None),
    ("null_compare", "E212", 13, 12, 23, "comparing with null using '==' is never true",
     "write `x is null` or `x is not null`"),
    ("arity", "E214", 13, 12, 22, "days_between takes 2 arguments, got 1", None),
    ("unknown_function", "E213", 13, 12, 17, "unknown function lowr", "did you mean lower?"),
    ("bad_regex", "E215", 13, 32, 6,
     "invalid regular expression: unterminated character set at position 0", None),
    ("syntax_error", "E200", 13, 23, 1, "syntax error: unexpected '>'",
     "expected '(', '-', a date, a name, a number, a percentage, a string"),
    ("when_number", "E212", 13, 12, 2,
     "expected a condition (true or false), found a whole number", None),
    ("note_placeholder", "E216", 14, 23, 16, "unknown field ship_to_contry in placeholder",
     "did you mean ship_to_country?"),
    # `when: |` on line 13; the error is on the block's second line, after 6 spaces + "and "
    ("block_scalar", "E210", 15, 11, 15, "unknown field customer.contry",
     "did you mean customer.country?"),
    # `    when: "` is 11 characters: the text starts at column 12, one right of the quote
    ("double_quoted", "E210", 13, 12, 15, "unknown field customer.contry",
     "did you mean customer.country?"),
    # YAML level
    ("yaml_syntax", "E100", 14, 7, 1,
     "YAML syntax error: expected <block end>, but found '<block mapping start>' "
     "(while parsing a block mapping)",
     "check the indentation and that ':' inside a value is quoted"),
    ("missing_key", "E111", 12, 5, 1, "rules[1] is missing the required key 'code'", None),
    ("wrong_enum", "E112", 4, 13, 5, "hit_policy: 'frist' is not one of first, unique",
     "did you mean first?"),
]


@pytest.mark.parametrize("case, code, line, col, length, message, hint", SINGLE,
                         ids=[c[0] for c in SINGLE])
def test_single_error_at_exact_place(case, code, line, col, length, message, hint):
    diags = diagnostics(case)
    assert len(diags) == 1, [d.render() for d in diags]
    (d,) = diags
    assert where(d) == (code, tax_file(case), line, col, hint)
    assert d.message == message
    assert d.ref.length == length
    assert d.severity == "error"


@pytest.mark.parametrize("case, code, line, col, length, message, hint", SINGLE,
                         ids=[c[0] for c in SINGLE])
def test_render_shows_the_source_line_and_a_caret_under_the_column(case, code, line, col,
                                                                    length, message, hint):
    (d,) = diagnostics(case)
    source = Path(tax_file(case)).read_text(encoding="utf-8").splitlines()[line - 1]
    rendered = d.render().splitlines()
    assert rendered[0] == f"{tax_file(case)}:{line}:{col}: error[{code}]: {message}"
    assert rendered[1] == f"{line:>4} | {source}"
    gutter = len(f"{line:>4} | ")
    assert rendered[2].index("^") == gutter + col - 1
    assert rendered[2][:gutter] == "     | "
    assert (rendered[3] == f"  = hint: {hint}") if hint else len(rendered) == 3


def test_render_exact_text():
    (d,) = diagnostics("unknown_field")
    assert d.render() == "\n".join([
        f"{tax_file('unknown_field')}:13:40: error[E210]: unknown field customer.contry",
        """  13 |     when: 'ship_to_country == "DE" and customer.contry == "DE"'""",
        "     |                                        ^^^^^^^^^^^^^^^",
        "  = hint: did you mean customer.country?",
    ])


def test_render_exact_text_in_a_block_scalar():
    (d,) = diagnostics("block_scalar")
    assert d.render() == "\n".join([
        f"{tax_file('block_scalar')}:15:11: error[E210]: unknown field customer.contry",
        """  15 |       and customer.contry == "DE\"""",
        "     |           ^^^^^^^^^^^^^^^",
        "  = hint: did you mean customer.country?",
    ])


def test_rule_error_message_is_every_rendered_diagnostic():
    with pytest.raises(RuleError) as info:
        load_ruleset(FIXTURES / "several_errors")
    assert str(info.value) == "\n".join(d.render() for d in info.value.diagnostics)
    assert info.value.exit_code == 2


def test_misspelt_key_reported_at_the_key_with_did_you_mean():
    diags = diagnostics("misspelt_key")
    by_code = {d.code: d for d in diags}
    assert set(by_code) == {"E110", "E111"}
    typo = by_code["E110"]
    assert where(typo) == ("E110", tax_file("misspelt_key"), 4, 1, "did you mean hit_policy?")
    assert typo.message == "unknown key 'hit_polcy' in the file"
    assert typo.ref.length == len("hit_polcy")
    # and the key it should have been is missing
    assert by_code["E111"].message == "the file is missing the required key 'hit_policy'"


def test_several_errors_in_one_file_are_all_reported_in_file_order():
    diags = diagnostics("several_errors")
    file = tax_file("several_errors")
    assert [where(d) for d in diags] == [
        ("E210", file, 13, 12, "did you mean customer.country?"),
        ("E211", file, 17, 31, "did you mean EU?"),
        ("E213", file, 21, 12, "did you mean lower?"),
        # two problems inside one expression: the checker does not stop at the first
        ("E210", file, 25, 12, "did you mean customer.region?"),
        ("E213", file, 25, 37, "did you mean upper?"),
        # schema errors of the same file come along with the DSL errors
        ("E111", file, 28, 5, None),
        ("E110", file, 30, 5, "did you mean code?"),
    ]


def test_yaml_1_1_trap_no_stays_the_string_no():
    ruleset = load_ruleset(FIXTURES / "valid")
    nordics = ruleset.client.sets["NORDICS"]
    assert nordics == ("DK", "FI", "IS", "NO", "SE")
    assert all(type(v) is str for v in nordics)
    nordic = ruleset.expression("tax", ("rules", 1, "when"))
    sql = to_sql(nordic.sql, "duckdb")
    assert sql == "t.ship_to_country IN ('DK', 'FI', 'IS', 'NO', 'SE')"
    con = duckdb.connect()
    rows = con.sql(f"SELECT {sql} FROM (VALUES ('NO'), ('DE')) AS t(ship_to_country)").fetchall()
    assert rows == [(True,), (False,)]


def test_valid_fixture_compiles_every_expression():
    ruleset = load_ruleset(FIXTURES / "valid")
    assert [e.where for e in ruleset.expressions] == [
        "rules.0.when", "rules.0.note", "rules.1.when", "rules.2.when"]
    assert [e.type for e in ruleset.expressions] == ["boolean", "string", "boolean", "boolean"]
    first = ruleset.expression("tax", ("rules", 0, "when"))
    assert (first.ref.line, first.ref.col) == (8, 11)


def test_invalid_date_literal_is_a_rule_error():
    diags = diagnostics("invalid_date")
    assert [where(d) for d in diags] == [
        ("E201", tax_file("invalid_date"), 13, 24, "dates are written YYYY-MM-DD")]


# --- places in every YAML scalar style ---------------------------------------------------
# Each case's error sits after text that the YAML value does not hold as written (quotes,
# escapes, folded line breaks, block indentation); the place must still be exact.

POSITION_CASES = [
    pytest.param("folded_block", (15, 11), id="folded_block"),
    pytest.param("escaped_double_quote", (13, 42), id="escaped_double_quote"),
    pytest.param("escaped_single_quote", (13, 42), id="escaped_single_quote"),
    pytest.param("plain_multiline", (14, 11), id="plain_multiline"),
    pytest.param("block_leading_blank", (15, 7), id="block_leading_blank"),
    pytest.param("template_block", (16, 7), id="template_block"),
]


@pytest.mark.parametrize("case, expected", POSITION_CASES)
def test_error_position_in_unusual_scalars(case, expected):
    (d,) = diagnostics(case)
    assert d.code in ("E210", "E216")
    assert d.ref.file == tax_file(case)
    assert (d.ref.line, d.ref.col) == expected


# --- the checker on its own: a named set's values against the value tested -----------------

def _check(text: str):
    scope = scope_for("transactions", {}, {"EU": ("AT", "DE", "FR")})
    node = parse(text, lambda line, col, length: SourceRef("<expr>", line, col, length))
    return check(node, scope, "boolean")


def test_list_items_of_the_wrong_kind_are_e212():
    type_, problems = _check("quantity in ['DE']")
    assert [(p.code, p.ref.col, p.message) for p in problems] == [
        ("E212", 14, "list item is text, but the value tested is a number")]


def test_named_set_of_the_wrong_kind_is_e212():
    _, problems = _check("quantity in EU")
    assert [p.code for p in problems] == ["E212"]
