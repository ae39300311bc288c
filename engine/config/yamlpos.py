"""YAML loading that keeps where every value came from.

`load_yaml` returns plain Python data plus a `Positions` map from a JSON path
(a tuple of keys and indexes) to the `SourceRef` of that value and of its key,
so that schema errors and DSL errors point at the exact line and column.

The resolver is stricter than YAML 1.1: only `true`/`false` are booleans (so the
country code NO stays a string), dates stay text (the schemas check them), and
decimals are `Decimal`, never binary float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from engine.errors import Diagnostic, RuleError, SourceRef

Path_ = tuple[str | int, ...]


class _Resolver(yaml.resolver.BaseResolver):
    pass


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789"))
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|)$"), ["~", "n", ""])


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
              yaml.composer.Composer, _Resolver):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


@dataclass(frozen=True)
class ScalarInfo:
    """How a scalar was written: needed to map offsets inside it to the file."""

    ref: SourceRef
    style: str | None  # None plain, '"' or "'" quoted, '|' or '>' block


@dataclass
class Positions:
    """Where each value (and each mapping key) of one YAML document stands."""

    file: str
    lines: list[str] = field(default_factory=list)
    values: dict[Path_, ScalarInfo] = field(default_factory=dict)
    keys: dict[Path_, SourceRef] = field(default_factory=dict)

    def ref(self, path: Path_) -> SourceRef:
        """The value at `path`, or the nearest enclosing value that has a place."""
        path = tuple(path)
        while path not in self.values and path:
            path = path[:-1]
        info = self.values.get(path)
        return info.ref if info else SourceRef(self.file, 1, 1)

    def key_ref(self, path: Path_) -> SourceRef:
        return self.keys.get(tuple(path)) or self.ref(path)

    def _block_indent(self, line: int) -> int:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return len(text) - len(text.lstrip(" "))

    def text_ref(self, path: Path_, line: int, col: int, length: int = 1) -> SourceRef:
        """The file place of 1-based line/col inside the string value at `path`."""
        info = self.values.get(tuple(path))
        if info is None:
            return self.ref(path)
        if info.style in ("|", ">"):
            # Block scalar: text starts on the next line, at the block's indentation.
            indent = self._block_indent(info.ref.line + 1)
            return SourceRef(info.ref.file, info.ref.line + line, indent + col, length)
        quote = 1 if info.style in ('"', "'") else 0
        if line == 1:
            return SourceRef(info.ref.file, info.ref.line, info.ref.col + quote + col - 1, length)
        return SourceRef(info.ref.file, info.ref.line + line - 1, col, length)


def _construct(node: yaml.Node, path: Path_, pos: Positions) -> Any:
    mark = node.start_mark
    length = max(1, node.end_mark.index - mark.index) if node.end_mark.line == mark.line else 1
    ref = SourceRef(pos.file, mark.line + 1, mark.column + 1, length)
    if isinstance(node, yaml.MappingNode):
        pos.values[path] = ScalarInfo(ref, None)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            key = str(key) if not isinstance(key, str) else key
            kmark = key_node.start_mark
            key_ref = SourceRef(pos.file, kmark.line + 1, kmark.column + 1, max(1, len(key)))
            if key in out:
                raise RuleError([Diagnostic("E101", f"duplicate key {key!r}", key_ref,
                                            "each key may appear once in a mapping")])
            pos.keys[path + (key,)] = key_ref
            out[key] = _construct(value_node, path + (key,), pos)
        return out
    if isinstance(node, yaml.SequenceNode):
        pos.values[path] = ScalarInfo(ref, None)
        return [_construct(item, path + (i,), pos) for i, item in enumerate(node.value)]
    pos.values[path] = ScalarInfo(ref, node.style)
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "a mapping key must be a plain value", node.start_mark)
    value = node.value
    if node.tag == "tag:yaml.org,2002:bool":
        return value == "true"
    if node.tag == "tag:yaml.org,2002:int":
        return int(value.replace("_", ""))
    if node.tag == "tag:yaml.org,2002:float":
        return Decimal(value.replace("_", ""))
    if node.tag == "tag:yaml.org,2002:null":
        return None
    return value


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document; raise RuleError at the place of a syntax error."""
    pos = Positions(file, text.splitlines())
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise RuleError([_syntax_diagnostic(exc, file)]) from None
    finally:
        loader.dispose()
    if node is None:
        return None, pos
    return _construct(node, (), pos), pos


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    ref = SourceRef(file, mark.line + 1, mark.column + 1) if mark else SourceRef(file, 1, 1)
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    hint = "check the indentation and that ':' inside a value is quoted"
    if "found character '\\t'" in problem:
        hint = "YAML does not allow tabs for indentation; use spaces"
    return Diagnostic("E100", f"YAML syntax error: {problem}{context}", ref, hint)
