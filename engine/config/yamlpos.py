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
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|)$"), ["~", "n", ""])


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
    start: int = 0  # index of the scalar's first character in the document text
    end: int = 0


@dataclass
class Positions:
    """Where each value (and each mapping key) of one YAML document stands."""

    file: str
    text: str = ""
    values: dict[Path_, ScalarInfo] = field(default_factory=dict)
    keys: dict[Path_, SourceRef] = field(default_factory=dict)
    scalars: dict[Path_, str] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)  # found while loading

    def ref(self, path: Path_) -> SourceRef:
        """The value at `path`, or the nearest enclosing value that has a place."""
        path = tuple(path)
        while path not in self.values and path:
            path = path[:-1]
        info = self.values.get(path)
        return info.ref if info else SourceRef(self.file, 1, 1)

    def key_ref(self, path: Path_) -> SourceRef:
        return self.keys.get(tuple(path)) or self.ref(path)

    def text_ref(self, path: Path_, line: int, col: int, length: int = 1) -> SourceRef:
        """The file place of 1-based line/col inside the string value at `path`.

        The value's characters are aligned with the source text of the scalar, so the
        place is right for every style: quoted with escapes, block, folded, plain
        over several lines.
        """
        info = self.values.get(tuple(path))
        if info is None:
            return self.ref(path)
        value = _value_at(self, path)
        lines = value.split("\n")
        offset = sum(len(lines[i]) + 1 for i in range(min(line - 1, len(lines)))) + col - 1
        index = _align(value, self.text, info.start, info.end, offset)
        return self._place(index, length)

    def _place(self, index: int, length: int) -> SourceRef:
        line = self.text.count("\n", 0, index) + 1
        col = index - (self.text.rfind("\n", 0, index) + 1) + 1
        return SourceRef(self.file, line, col, length)


def _value_at(pos: Positions, path: Path_) -> str:
    return pos.scalars.get(tuple(path), "")


def _align(value: str, text: str, start: int, end: int, offset: int) -> int:
    """The index in `text` of character `offset` of `value`, a scalar written at start..end.

    Walks both in step: equal characters match; a space of the value may stand for a
    folded line break; anything else in the source (quotes, escapes, indentation,
    block indicators) is skipped.
    """
    j = start
    for i, ch in enumerate(value):
        while j < end and not (text[j] == ch or (ch == " " and text[j] in "\r\n")):
            j += 1
        if i == offset:
            return min(j, max(start, end - 1))
        folded = ch == " " and j < end and text[j] in "\r\n"
        j += 1
        while folded and j < end and text[j] == " ":  # the next line's indentation
            j += 1
    return min(j, max(start, end - 1))


MAX_VALUES = 100_000  # far beyond any rule file; an alias bomb stops here


def _construct(node: yaml.Node, path: Path_, pos: Positions) -> Any:
    if len(pos.values) >= MAX_VALUES:
        raise RuleError([Diagnostic(
            "E105", f"the file holds more than {MAX_VALUES:,} values once its aliases are "
                    "expanded", SourceRef(pos.file, node.start_mark.line + 1,
                                          node.start_mark.column + 1),
            "write the values out instead of nesting aliases (*name)")])
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
            if key in out:  # reported, and the later value stands, so checking goes on
                pos.problems.append(Diagnostic("E101", f"duplicate key {key!r}", key_ref,
                                               "each key may appear once in a mapping"))
            pos.keys[path + (key,)] = key_ref
            out[key] = _construct(value_node, path + (key,), pos)
        return out
    if isinstance(node, yaml.SequenceNode):
        pos.values[path] = ScalarInfo(ref, None)
        return [_construct(item, path + (i,), pos) for i, item in enumerate(node.value)]
    pos.values[path] = ScalarInfo(ref, node.style, mark.index, node.end_mark.index)
    value = _scalar(node)
    if isinstance(value, str):
        pos.scalars[path] = value
    return value


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "a mapping key must be a plain value", node.start_mark)
    value, tag = node.value, node.tag.rsplit(":", 1)[-1]
    if tag == "bool":
        return value == "true"
    if tag == "null":
        return None
    if tag in ("int", "float"):  # an explicit !!int or !!float may hold any text
        try:
            number = int(value.replace("_", "")) if tag == "int" else Decimal(
                value.replace("_", ""))
        except (ValueError, ArithmeticError):
            number = None
        if number is None or not Decimal(number).is_finite():
            raise yaml.constructor.ConstructorError(
                None, None, f"{value!r} is not {'an integer' if tag == 'int' else 'a number'}",
                node.start_mark)
        return number
    return value


# What YAML allows, less the line separators (U+0085, U+2028, U+2029) that YAML counts
# as line breaks and editors do not: lines and columns are counted at \n alone.
_NOT_ALLOWED = re.compile("[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd"
                      "\U00010000-\U0010ffff]")


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document; raise RuleError at the place of a syntax error."""
    _refuse_characters(text, file)
    pos = Positions(file, text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (None if node is None else _construct(node, (), pos)), pos
    except yaml.MarkedYAMLError as exc:
        raise RuleError([_syntax_diagnostic(exc, file)]) from None
    except RecursionError:
        raise RuleError([Diagnostic(
            "E104", "the YAML nests too deep, or an alias (*name) contains itself",
            SourceRef(file, 1, 1), "rule files need a few levels of nesting, not hundreds")]
        ) from None
    finally:
        loader.dispose()


def _refuse_characters(text: str, file: str) -> None:
    bad = _NOT_ALLOWED.search(text)
    if bad is None:
        return
    at = bad.start()
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    raise RuleError([Diagnostic(
        "E103", f"character U+{ord(bad.group()):04X} is not allowed in a rule file",
        SourceRef(file, line, col), "control characters and line separators other than "
                                    "a newline are invisible in editors; delete it")])


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    ref = SourceRef(file, mark.line + 1, mark.column + 1) if mark else SourceRef(file, 1, 1)
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    hint = "check the indentation and that ':' inside a value is quoted"
    if "found character '\\t'" in problem:
        hint = "YAML does not allow tabs for indentation; use spaces"
    return Diagnostic("E100", f"YAML syntax error: {problem}{context}", ref, hint)
