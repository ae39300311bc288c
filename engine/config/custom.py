"""Custom rules: `*.rules` files of named rules, each bound to one table of a stage.

    rule credit_note_review on invoices
      when gross_amount < 0 and abs(gross_amount) > 10000
      raise warning CREDIT_NOTE_REVIEW "credit note {invoice_id} needs sign-off"

    rule strategic_no_fee on dunning_notices
      when customer.segment == "strategic"
      set fee_amount = 0

A rule starts at a line `rule <name> on <table>`; its clauses follow, each on a line
of its own starting with `when`, `raise` or `set` (a `when` or a `set` may go on over
the next lines). A rule raises or sets, not both; it may set several fields. `when`
is optional (every row). The expressions are the DSL of the YAML files, checked in
the scope of the table (its row, `customer.*` and the other related records,
`client.*`, `as_of`), and the message is a `{field}` template.

Only fields a later step can follow may be set: the dunning fee and interest (their
open items and journal entries are made from the set value), the notice's action and
template, and the credit decision. Every other field is computed from others and
would contradict them (E806).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from engine.config.constraints import terms
from engine.dsl import ast
from engine.dsl.scope import Scope, scope_for
from engine.dsl.site import compile_text
from engine.errors import Diagnostic, Diagnostics, SourceRef, did_you_mean

# The tables a rule may name, with the stage whose rows they are.
TABLES: dict[str, str] = {
    "transactions": "invoicing", "customers": "invoicing", "payments": "matching",
    "invoices": "invoicing", "invoice_lines": "invoicing",
    "cash_applications": "matching", "dunning_notices": "dunning",
    "credit_decisions": "credit", "aging": "aging",
}

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class Settable:
    type: str
    read_by: str | None  # the later step that follows the value; None: the output row only
    money: bool = False
    pattern: str | None = None  # a literal value must match it


SETTABLE: dict[str, dict[str, Settable]] = {
    "dunning_notices": {
        "fee_amount": Settable("decimal", "the fee's open item and its journal entry",
                               money=True),
        "interest_amount": Settable("decimal", "the interest's open item and its journal "
                                    "entry", money=True),
        "action": Settable("string", None),
        "template": Settable("string", None),
    },
    "credit_decisions": {
        "decision": Settable("string", "the CREDIT_HOLD exception of a hold",
                             pattern=r"[a-z][a-z0-9_]*"),
    },
}

_WHY_FIXED = {
    "rule_id": "it names the rule behind the row; a set rule writes its own name there",
    "rule_ref": "it names the rule behind the row; a set rule writes its own place there",
}


@dataclass(frozen=True)
class Clause:
    """One expression of a rule, parsed, checked and compiled."""

    text: str
    node: ast.Node
    sql: exp.Expression
    ref: SourceRef


@dataclass(frozen=True)
class Assignment:
    field: str
    value: Clause
    settable: Settable


@dataclass(frozen=True)
class Raise:
    severity: str
    code: str
    message: Clause


@dataclass(frozen=True)
class CustomRule:
    name: str
    table: str
    ref: SourceRef
    when: Clause | None
    raises: Raise | None = None
    sets: tuple[Assignment, ...] = ()

    @property
    def rule_ref(self) -> str:
        return self.ref.rule_ref

    @property
    def stage(self) -> str:
        return TABLES[self.table]


# -- reading a file ---------------------------------------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_HEAD = re.compile(rf"rule\s+(?P<name>{_NAME})\s+on\s+(?P<table>{_NAME})\s*(?:#.*)?$")
_RAISE = re.compile(r"raise\s+(?P<severity>\S+)\s+(?P<code>\S+)\s+(?P<message>.*?)\s*(?:#[^\"]*)?$")
_SET = re.compile(rf"set\s+(?P<field>{_NAME}(?:\.{_NAME})*)\s*=(?P<value>.*)$", re.S)
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
_KEYWORDS = ("rule", "when", "raise", "set")


@dataclass
class _Part:
    """A clause as written: keyword, text after it, and where that text starts."""

    keyword: str
    line: int
    col: int  # column of the keyword
    lines: list[str] = field(default_factory=list)  # the clause's text, first line from col
    text_col: int = 1  # column where the text after the keyword starts

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _parts(text: str) -> list[_Part]:
    """The file's clauses in order; a line not starting with a keyword continues one."""
    parts: list[_Part] = []
    for number, raw in enumerate(text.split("\n"), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            if parts and parts[-1].keyword in ("when", "set") and not stripped:
                continue
            continue
        indent = len(raw) - len(raw.lstrip())
        word = stripped.split(None, 1)[0]
        if word in _KEYWORDS:
            after = raw[indent + len(word):]
            lead = len(after) - len(after.lstrip())
            parts.append(_Part(word, number, indent + 1, [after.lstrip()],
                               indent + len(word) + lead + 1))
        elif parts:
            parts[-1].lines.append(raw)
        else:
            parts.append(_Part("", number, indent + 1, [stripped], indent + 1))
    return parts


def load_rules(path: Path, text: str, names: Any, diags: Diagnostics) -> list[CustomRule]:
    """The rules of one `*.rules` file; every problem goes to `diags`. `names`: what
    client.yaml gives expressions (`client.*` constants, named sets, rounding)."""
    file = str(path)
    rules: list[CustomRule] = []
    current: list[_Part] = []
    for part in _parts(text):
        if part.keyword == "rule":
            if current:
                rules += _rule(file, current, names, diags)
            current = [part]
        elif not current:
            diags.add("E800", f"expected a rule: `rule <name> on <table>`, found "
                              f"{(part.keyword or part.lines[0])[:40]!r}",
                      SourceRef(file, part.line, part.col),
                      "every clause belongs to a rule that starts with `rule`")
        else:
            current.append(part)
    if current:
        rules += _rule(file, current, names, diags)
    return rules


def _rule(file: str, parts: list[_Part], names: Any, diags: Diagnostics) -> list[CustomRule]:
    head, *clauses = parts
    ref = SourceRef(file, head.line, head.col, 4)
    match = _HEAD.match("rule " + head.text.strip()) if len(head.lines) == 1 else None
    if match is None:
        diags.add("E800", f"expected `rule <name> on <table>`, found {('rule ' + head.text)!r}",
                  ref, "a rule starts with its name and the table it runs on, e.g. "
                       "`rule strategic_no_fee on dunning_notices`")
        return []
    name, table = match["name"], match["table"]
    if table not in TABLES:
        col = head.text_col + head.lines[0].index(table, len(name))
        diags.add("E801", f"unknown table {table!r} for rule {name}",
                  SourceRef(file, head.line, col, len(table)),
                  did_you_mean(table, TABLES) or f"tables: {', '.join(TABLES)}")
        return []
    scope = scope_for(table, names.constants, names.sets, row_alias="t")
    when = raises = None
    sets: list[Assignment] = []
    ok = True
    for part in clauses:
        where = SourceRef(file, part.line, part.col, len(part.keyword))
        if part.keyword == "when":
            if when is not None:
                diags.add("E803", f"rule {name} has a second `when`", where,
                          "join the conditions with `and`")
                ok = False
                continue
            when = _clause(file, part, scope, "boolean", names.rounding, diags)
            ok = ok and when is not None
        elif part.keyword == "raise":
            raises = _raise(file, part, scope, names.rounding, diags)
            ok = ok and raises is not None
        elif part.keyword == "set":
            assignment = _set(file, part, table, scope, names.rounding, diags)
            ok = ok and assignment is not None
            if assignment is not None:
                if any(a.field == assignment.field for a in sets):
                    diags.add("E807", f"rule {name} sets {assignment.field} twice", where)
                    ok = False
                sets.append(assignment)
        else:
            diags.add("E800", f"expected `when`, `raise` or `set`, found {part.lines[0][:40]!r}",
                      SourceRef(file, part.line, part.col), "clauses start with a keyword")
            ok = False
    if not any(p.keyword in ("raise", "set") for p in clauses):
        diags.add("E802", f"rule {name} neither raises nor sets", ref,
                  'add `raise <severity> <CODE> "message"` or `set <field> = <value>`')
        return []
    if any(p.keyword == "raise" for p in clauses) and any(p.keyword == "set" for p in clauses):
        diags.add("E802", f"rule {name} both raises and sets", ref,
                  "write two rules: one that raises, one that sets")
        return []
    if not ok:
        return []
    return [CustomRule(name, table, ref, when, raises, tuple(sets))]


def _clause(file: str, part: _Part, scope: Scope, wanted: str | None, rounding: str,
            diags: Diagnostics, text: str | None = None, line: int | None = None,
            col: int | None = None, template: bool = False) -> Clause | None:
    """Parse, type-check and compile one expression written at (line, col) of the file."""
    text = part.text if text is None else text
    line = part.line if line is None else line
    col = part.text_col if col is None else col

    def origin(ln: int, cl: int, length: int) -> SourceRef:
        return SourceRef(file, line + ln - 1, (col + cl - 1) if ln == 1 else cl, length)

    if not text.strip():
        diags.add("E200", f"`{part.keyword}` needs an expression", origin(1, 1, 1),
                  "write the condition or value after the keyword")
        return None
    compiled = compile_text(text, origin, scope, wanted, rounding, diags, template)
    if compiled is None:
        return None
    node, _, sql = compiled
    return Clause(text, node, sql, origin(1, 1, 1))


def _raise(file: str, part: _Part, scope: Scope, rounding: str,
           diags: Diagnostics) -> Raise | None:
    match = _RAISE.match("raise " + part.text.strip()) if len(part.lines) == 1 else None
    if match is None:
        diags.add("E804", "expected `raise <severity> <CODE> \"message\"`",
                  SourceRef(file, part.line, part.col, 5),
                  'e.g. raise warning CREDIT_NOTE_REVIEW "credit note above 10,000"')
        return None
    line = part.lines[0]
    severity, code, message = match["severity"], match["code"], match["message"]
    if severity not in SEVERITIES:
        diags.add("E804", f"unknown severity {severity!r}",
                  SourceRef(file, part.line, part.text_col + line.index(severity), len(severity)),
                  did_you_mean(severity, SEVERITIES) or "severities: info, warning, error")
        return None
    code_col = part.text_col + line.index(code, len(severity))
    if not _CODE.fullmatch(code):
        diags.add("E804", f"exception code {code!r} is not UPPER_SNAKE_CASE",
                  SourceRef(file, part.line, code_col, len(code)),
                  f"e.g. {re.sub(r'[^A-Z0-9_]', '_', code.upper())}")
        return None
    message_col = part.text_col + line.index(message, line.index(code, len(severity)) + len(code))
    if len(message) < 2 or message[0] not in "\"'" or message[-1] != message[0]:
        diags.add("E804", "the message is a quoted string", SourceRef(
            file, part.line, message_col, max(len(message), 1)),
            'e.g. "credit note {invoice_id} needs sign-off"')
        return None
    body = message[1:-1].replace("\\" + message[0], message[0]).replace("\\\\", "\\")
    clause = _clause(file, part, scope, "string", rounding, diags, text=body, col=message_col + 1,
                     template=True)
    return Raise(severity, code, clause) if clause is not None else None


def _set(file: str, part: _Part, table: str, scope: Scope, rounding: str,
         diags: Diagnostics) -> Assignment | None:
    match = _SET.match("set " + part.text.lstrip())
    where = SourceRef(file, part.line, part.col, 3)
    if match is None:
        diags.add("E805", "expected `set <field> = <value>`", where,
                  "e.g. set fee_amount = 0")
        return None
    name = match["field"]
    field_ref = SourceRef(file, part.line, part.text_col, len(name))
    settable = SETTABLE.get(table, {})
    if name not in settable:
        known = scope.row
        if name not in known:
            diags.add("E210", f"unknown field {name} of {table}", field_ref,
                      did_you_mean(name, known) or f"fields: {', '.join(known)}")
        else:
            why = _WHY_FIXED.get(name, "it is computed from other values, which would then "
                                       "contradict it")
            can = ", ".join(settable) or "none"
            diags.add("E806", f"{table}.{name} cannot be set: {why}", field_ref,
                      f"fields a rule may set on {table}: {can}")
        return None
    value_text = match["value"]
    offset = len(part.lines[0]) - len(part.lines[0][part.lines[0].index("=") + 1:])
    first = value_text.split("\n", 1)[0]
    lead = len(first) - len(first.lstrip())
    value_text = value_text.lstrip(" \t")
    clause = _clause(file, part, scope, settable[name].type, rounding, diags, text=value_text,
                     col=part.text_col + offset + lead)
    if clause is None:
        return None
    spec = settable[name]
    if spec.pattern and isinstance(clause.node, ast.Literal) and not re.fullmatch(
            spec.pattern, str(clause.node.value)):
        diags.add("E806", f"{clause.node.value!r} is not a value of {table}.{name}", clause.ref,
                  "a lower-case word: hold, warn, ok, or one your process knows")
        return None
    return Assignment(name, clause, spec)


# -- checks across rules ----------------------------------------------------------------

def lint(rules: list[CustomRule], engine_codes: dict[str, tuple[str, ...]],
         sets: dict[str, tuple]) -> list[Diagnostic]:
    """The analyst's lint: duplicate names, rules that never match, codes of two
    severities, sets with no effect."""
    out: list[Diagnostic] = []
    seen: dict[str, CustomRule] = {}
    severities: dict[str, tuple[str, str]] = {}
    for rule in rules:
        if rule.name in seen:
            out.append(Diagnostic("E808", f"a second rule named {rule.name}", rule.ref,
                                  f"the first is at {seen[rule.name].ref}; rule names are the "
                                  "rule_id of their rows and must be unique"))
        seen.setdefault(rule.name, rule)
        if rule.when is not None and not any(t.satisfiable() for t in terms(rule.when.node,
                                                                              sets)):
            out.append(Diagnostic("W812", f"rule {rule.name} can never match: its condition "
                                          "cannot hold", rule.when.ref, severity="warning"))
        if rule.raises:
            code, severity = rule.raises.code, rule.raises.severity
            if code in engine_codes and severity not in engine_codes[code]:
                out.append(Diagnostic(
                    "W810", f"{code} is an engine code, raised as "
                            f"{' or '.join(engine_codes[code])}, and as {severity} here",
                    rule.ref, "give the rule a code of its own", severity="warning"))
                continue
            first = severities.setdefault(code, (severity, str(rule.ref)))
            if first[0] != severity:
                out.append(Diagnostic(
                    "W810", f"{code} is raised as {severity} here and as {first[0]} by "
                            f"{first[1]}", rule.ref,
                    "one code, one severity: filters and counts of the exception report "
                    "group by code", severity="warning"))
        for a in rule.sets:
            if a.settable.read_by is None:
                out.append(Diagnostic(
                    "W811", f"no later stage reads {rule.table}.{a.field}: this set changes "
                            "the output row only", a.value.ref,
                    "fine for a printed field; a value meant to change the books must be one "
                    "that a later step follows", severity="warning"))
    return out
