"""JSON Schema validation of rule files, reported at the line of the offending value.

The schemas under `schemas/rules/` mark DSL fields with `"x-dsl": {"type", "scope"}`
and printed text with `"x-template": {"scope"}`. Validation collects those
places too, so one pass over a document yields both its errors and the list of
expressions to type-check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from engine.config.yamlpos import Path_, Positions
from engine.errors import Diagnostic, did_you_mean

# engine/schemas links to the repository's schemas/, so a wheel carries them too.
SCHEMA_DIR = Path(__file__).parents[1] / "schemas"
RULE_KINDS = ("client", "tax", "credit", "dunning", "matching")


@dataclass(frozen=True)
class DslSite:
    """A value of a rule file that is a DSL expression or a `{field}` template."""

    path: Path_
    text: str
    kind: str  # "dsl" or "template"
    type: str | None
    scope: str


class _SiteFound(ValidationError):
    """Not an error: how the x-dsl keyword reports where it stands."""


def _x_dsl(validator: Any, spec: dict[str, str], instance: Any, schema: dict) -> Iterator:
    if isinstance(instance, str):
        yield _SiteFound("dsl", validator_value=spec, instance=instance)


def _x_template(validator: Any, spec: dict[str, str], instance: Any, schema: dict) -> Iterator:
    if isinstance(instance, str):
        yield _SiteFound("template", validator_value=spec, instance=instance)


_Validator = jsonschema.validators.extend(
    Draft202012Validator, {"x-dsl": _x_dsl, "x-template": _x_template})


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for path in sorted((SCHEMA_DIR / "rules").glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@cache
def rule_schema(kind: str) -> dict:
    path = SCHEMA_DIR / "rules" / f"{kind}.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


def validate(kind: str, data: Any, pos: Positions) -> tuple[list[Diagnostic], list[DslSite]]:
    """Schema errors (each at its line) and the DSL sites of one rule document."""
    validator = _Validator(rule_schema(kind), registry=_registry(),
                           format_checker=Draft202012Validator.FORMAT_CHECKER)
    diagnostics: list[Diagnostic] = []
    sites: list[DslSite] = []
    for error in validator.iter_errors(data):
        if isinstance(error, _SiteFound):
            spec = error.validator_value
            sites.append(DslSite(tuple(error.absolute_path), error.instance, error.message,
                                 spec.get("type"), spec["scope"]))
            continue
        diagnostics.extend(_diagnose(_deepest(error), pos))
    return _dedupe(diagnostics), sites


def _deepest(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf failures, the branch error that got furthest into the value."""
    if not error.context:
        return error
    real = [e for e in error.context if not isinstance(e, _SiteFound)]
    if not real:
        return error
    best = max(real, key=lambda e: (len(e.absolute_path), -len(list(e.schema_path))))
    if len(best.absolute_path) > len(error.absolute_path):
        return _deepest(best)
    return error


def _diagnose(error: ValidationError, pos: Positions) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    where = _describe(path)
    if "propertyNames" in error.schema_path and isinstance(error.instance, str):
        allowed = [str(v) for v in error.validator_value] if error.validator == "enum" else []
        return [Diagnostic("E114", f"{error.instance!r} is not allowed as a key in {where}",
                           pos.key_ref(path + (error.instance,)),
                           did_you_mean(error.instance, allowed) or _allowed_hint(allowed))]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        return [Diagnostic("E110", f"unknown key {key!r} in {where}", pos.key_ref(path + (key,)),
                           did_you_mean(key, allowed) or _allowed_hint(allowed))
                for key in extra]
    if error.validator == "unevaluatedProperties" and isinstance(error.instance, dict):
        allowed = _evaluable_keys(error.schema)
        extra = [k for k in error.instance if k not in allowed]
        return [Diagnostic("E110", f"unknown key {key!r} in {where}", pos.key_ref(path + (key,)),
                           did_you_mean(key, allowed) or _allowed_hint(allowed))
                for key in extra] or [_generic(error, pos, where)]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [Diagnostic("E111", f"{where} is missing the required key {missing!r}",
                           pos.key_ref(path) if path else pos.ref(path))]
    if error.validator == "enum":
        choices = ", ".join(map(str, error.validator_value))
        hint = did_you_mean(str(error.instance), map(str, error.validator_value))
        return [Diagnostic("E112", f"{where}: {error.instance!r} is not one of {choices}",
                           pos.ref(path), hint)]
    return [_generic(error, pos, where)]


def _generic(error: ValidationError, pos: Positions, where: str) -> Diagnostic:
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    message = error.message
    if error.validator == "pattern":
        message = f"{error.instance!r} does not have the expected form"
    elif error.validator == "const":
        message = f"{error.instance!r} should be {error.validator_value!r}"
    elif error.validator in ("anyOf", "oneOf"):
        message = f"{error.instance!r} is not valid here"
    return Diagnostic("E113", f"{where}: {message}", pos.ref(tuple(error.absolute_path)),
                      description)


def _evaluable_keys(schema: dict) -> list[str]:
    keys = list(schema.get("properties", {}))
    for sub in schema.get("allOf", []) + [schema.get("then", {}), schema.get("else", {})]:
        if isinstance(sub, dict):
            keys += list(sub.get("properties", {}))
    return keys


def _allowed_hint(allowed: list[str]) -> str | None:
    return f"allowed keys: {', '.join(allowed)}" if allowed else None


def _describe(path: Path_) -> str:
    if not path:
        return "the file"
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".")


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple] = set()
    out = []
    for d in diags:
        key = (d.code, d.message, d.ref)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
