"""A client's rule folder loaded, validated, type-checked and compiled: the RuleSet.

Loading is pure: files in, typed records and sqlglot trees out. Every problem
of every file is collected before anything raises, so one `ruledger check`
lists them all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from engine.config.client import ClientConfig, build_client
from engine.config.custom import CustomRule, lint, load_rules
from engine.config.schema import RULE_KINDS, DslSite, validate
from engine.config.semantic import CLIENT_CHECKS
from engine.config.yamlpos import Positions, load_yaml
from engine.dsl import ast
from engine.dsl.scope import SCOPE_TABLES, Constant, Scope, scope_for
from engine.dsl.site import compile_text
from engine.errors import Diagnostic, Diagnostics, RuleError, SourceRef, did_you_mean


@dataclass(frozen=True)
class RuleFile:
    kind: str
    path: Path
    sha256: str
    data: Any
    pos: Positions | None  # None for a *.rules file (its data is its text)
    sites: tuple[DslSite, ...] = ()


@dataclass(frozen=True)
class CompiledExpr:
    """One DSL expression of a rule file, checked and compiled."""

    ref: SourceRef
    file_kind: str
    path: tuple
    text: str
    type: str
    node: ast.Node
    sql: exp.Expression

    @property
    def where(self) -> str:
        return ".".join(str(p) for p in self.path)


@dataclass
class RuleSet:
    root: Path
    client: ClientConfig
    files: dict[str, RuleFile]
    expressions: list[CompiledExpr] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    custom: list[CustomRule] = field(default_factory=list)  # of the *.rules files, in order

    def custom_rules(self, table: str) -> list[CustomRule]:
        return [r for r in self.custom if r.table == table]

    @property
    def digest(self) -> str:
        """sha256 over every rule file's name and content, in name order."""
        h = hashlib.sha256()
        for name, digest in sorted(self.file_digests().items()):
            h.update(f"{name}\0{digest}\n".encode())
        return h.hexdigest()

    def file_digests(self) -> dict[str, str]:
        return {f.path.name: f.sha256 for f in self.files.values()}

    def expression(self, file_kind: str, path: tuple) -> CompiledExpr:
        for e in self.expressions:
            if e.file_kind == file_kind and e.path == path:
                return e
        raise KeyError((file_kind, path))


def _tax_checks(ruleset: RuleSet) -> list[Diagnostic]:
    from engine.config.tax import tax_table
    from engine.config.taxcheck import check_tax

    return check_tax(tax_table(ruleset), ruleset.client.sets,
                     ruleset.client.accounts.tax_payable)


def _matching_checks(ruleset: RuleSet) -> list[Diagnostic]:
    from engine.config.matching import check_matching

    return check_matching(ruleset)


def _credit_checks(ruleset: RuleSet) -> list[Diagnostic]:
    from engine.config.credit import check_credit

    return check_credit(ruleset)


def _dunning_checks(ruleset: RuleSet) -> list[Diagnostic]:
    from engine.config.dunning import check_dunning

    return check_dunning(ruleset)


def _custom_checks(ruleset: RuleSet) -> list[Diagnostic]:
    from engine.exceptions import ENGINE_CODES

    return lint(ruleset.custom, ENGINE_CODES, ruleset.client.sets)


# Checks that need the whole, compiled rule set; each returns diagnostics.
RULESET_CHECKS = (_tax_checks, _matching_checks, _credit_checks, _dunning_checks,
                  _custom_checks)


def rule_files(root: Path) -> list[Path]:
    """The rule files of a client folder (its tests/ are not rules)."""
    found = [*root.glob("*.yaml"), *root.glob("*.yml"), *root.glob("*.rules")]
    return sorted(p for p in found if p.is_file())


def load_ruleset(root: Path | str) -> RuleSet:
    """Load and check a client's rule folder; raise RuleError listing every problem."""
    root = Path(root)
    diags = Diagnostics()
    if not root.is_dir():
        raise RuleError([Diagnostic("E001", f"{root} is not a folder of rule files")])
    files = _read_files(root, diags)
    client = _client(root, files, diags)
    names = _names(client, files)
    expressions = _compile_sites(files, names, diags)
    if client is not None:
        expressions += _compile_computed(client, files["client"], diags)
    custom = _custom_rules(files, names, diags)
    if client is not None and not any(d.severity == "error" for d in diags.items):
        ruleset = RuleSet(root, client, files, expressions, custom=custom)
        for check in RULESET_CHECKS:
            diags.extend(check(ruleset))
    diags.raise_if_any()
    assert client is not None
    ruleset = RuleSet(root, client, files, expressions, custom=custom)
    ruleset.warnings = [d for d in diags.items if d.severity != "error"]
    return ruleset


def _read_files(root: Path, diags: Diagnostics) -> dict[str, RuleFile]:
    files: dict[str, RuleFile] = {}
    for path in rule_files(root):
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if path.suffix == ".rules":
            text = _text(path, raw, diags)
            if text is not None:
                files[f"rules:{path.name}"] = RuleFile("rules", path, digest, text, None)
            continue
        loaded = _load_one(path, raw, diags)
        if loaded is None:
            continue
        kind, data, pos = loaded
        if kind in files:
            diags.add("E122", f"a second {kind} file; the first is {files[kind].path.name}",
                      pos.ref(("kind",)), "keep one file of each kind per client")
            continue
        schema_errors, sites = validate(kind, data, pos)
        diags.extend(schema_errors)  # and the file's DSL is still checked below
        files[kind] = RuleFile(kind, path, digest, data, pos, tuple(sites))
    return files


def _text(path: Path, raw: bytes, diags: Diagnostics) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        diags.add("E102", f"not UTF-8 text (byte {exc.start})", SourceRef(str(path), 1, 1))
        return None


def _custom_rules(files: dict[str, RuleFile], names: _Names,
                  diags: Diagnostics) -> list[CustomRule]:
    """The rules of every *.rules file, in file name order, then as written."""
    out = []
    for rule_file in sorted((f for f in files.values() if f.kind == "rules"),
                            key=lambda f: f.path.name):
        mine = Diagnostics()
        out += load_rules(rule_file.path, rule_file.data, names, mine)
        diags.extend(d for d in mine.items if names.complete or not _needs_client(d))
    return out


def _load_one(path: Path, raw: bytes, diags: Diagnostics) -> tuple[str, Any, Positions] | None:
    text = _text(path, raw, diags)
    if text is None:
        return None
    try:
        data, pos = load_yaml(text, str(path))
    except RuleError as exc:
        diags.extend(exc.diagnostics)
        return None
    diags.extend(pos.problems)
    if not isinstance(data, dict):
        diags.add("E120", "a rule file is a mapping with `kind` and `version`",
                  SourceRef(str(path), 1, 1))
        return None
    kind = data.get("kind")
    if kind not in RULE_KINDS:
        ref = pos.ref(("kind",)) if "kind" in data else SourceRef(str(path), 1, 1)
        hint = did_you_mean(str(kind), RULE_KINDS) or f"kinds: {', '.join(RULE_KINDS)}"
        diags.add("E121", f"unknown rule file kind {kind!r}" if kind else "missing `kind`",
                  ref, hint)
        return None
    if path.stem in RULE_KINDS and path.stem != kind:
        diags.add("E124", f"{path.name} says kind: {kind}", pos.ref(("kind",)),
                  f"a file named {path.name} holds kind: {path.stem}")
        return None
    return kind, data, pos


def _client(root: Path, files: dict[str, RuleFile], diags: Diagnostics) -> ClientConfig | None:
    rule_file = files.get("client")
    if rule_file is None:
        if not (root / "client.yaml").exists():
            diags.add("E123", f"{root} has no client.yaml", SourceRef(str(root / "client.yaml"), 1),
                      "every client folder starts with a client.yaml (kind: client)")
        return None
    if any(d.ref and d.ref.file == str(rule_file.path) for d in diags.items):
        return None  # schema errors: typed records cannot be built
    client = build_client(rule_file.data, rule_file.pos)
    for check_client in CLIENT_CHECKS:
        diags.extend(check_client(client))
    return client


@dataclass(frozen=True)
class _Names:
    """What client.yaml gives every expression: client.* constants, named sets, rounding."""

    constants: dict
    sets: dict
    rounding: str
    complete: bool = True  # False: client.yaml unreadable; its names are not known


def _names(client: ClientConfig | None, files: dict[str, RuleFile]) -> _Names:
    """The client's names; from a client.yaml with errors, whatever can be read of it,
    so that the other files' expressions are still checked and their errors listed."""
    if client is not None:
        return _Names(client.constants(), client.sets, client.rounding)
    if "client" not in files:  # nothing of client.yaml could be read
        return _Names({}, {}, "half_up", complete=False)
    raw = files["client"].data
    about = raw.get("client") if isinstance(raw.get("client"), dict) else {}
    constants = {f"client.{k}": Constant("string", v) for k, v in about.items()
                 if k in ("id", "name", "base_currency", "country") and isinstance(v, str)}
    sets = raw.get("sets") if isinstance(raw.get("sets"), dict) else {}
    sets = {k: tuple(v) for k, v in sets.items() if isinstance(v, list)}
    rounding = raw.get("rounding") if raw.get("rounding") in ("half_up", "half_even") else "half_up"
    return _Names(constants, sets, rounding)


def _compile_sites(files: dict[str, RuleFile], names: _Names,
                   diags: Diagnostics) -> list[CompiledExpr]:
    out = []
    for kind, rule_file in files.items():
        for site in rule_file.sites:
            scope = scope_for(site.scope, names.constants, names.sets, row_alias="t")
            mine = Diagnostics()
            compiled = compile_site(kind, rule_file.pos, site.path, site.text, scope,
                                    site.type, names.rounding, mine,
                                    template=site.kind == "template")
            diags.extend(d for d in mine.items if names.complete or not _needs_client(d))
            if compiled:
                out.append(compiled)
    return out


def _needs_client(d: Diagnostic) -> bool:
    """An error that only says client.yaml could not be read (a set or client.* name)."""
    return d.code == "E211" or (d.code == "E210" and "client." in d.message)


def _compile_computed(client: ClientConfig, client_file: RuleFile,
                      diags: Diagnostics) -> list[CompiledExpr]:
    """Computed input columns see only their own row (no customer.* at ingest)."""
    out = []
    for mapping in client.inputs.values():
        for comp in mapping.computed:
            row = SCOPE_TABLES[mapping.table][0]
            scope = Scope(mapping.table, row, {}, client.constants(), client.sets)
            compiled = compile_site("client", client_file.pos, comp.path, comp.text, scope,
                                    row.get(comp.column), client.rounding, diags)
            if compiled:
                out.append(compiled)
    return out


def compile_site(kind: str, pos: Positions, path: tuple, text: str, scope: Scope,
                 wanted: str | None, rounding: str, diags: Diagnostics,
                 template: bool = False) -> CompiledExpr | None:
    """Parse, check and compile the expression (or `{field}` template) at `path`;
    record problems in `diags`."""
    def origin(line: int, col: int, length: int) -> SourceRef:
        return pos.text_ref(path, line, col, length)

    compiled = compile_text(text, origin, scope, wanted, rounding, diags, template)
    if compiled is None:
        return None
    node, type_, sql = compiled
    return CompiledExpr(pos.ref(path), kind, path, text, type_, node, sql)
