"""Where things came from, what went wrong, and the few exception types.

Two kinds of trouble: malformed rules, arguments or drops raise one of the
exception types below, each carrying `Diagnostic`s with a location; business
problems (a short payment, a missing tax rule) are exception *rows*, collected
while the run goes on, and never raised.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True, order=True)
class SourceRef:
    """A place in a rule file: 1-based line and column."""

    file: str
    line: int
    col: int = 1
    length: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def rule_ref(self) -> str:
        """The short `file:line` printed in output rows (`tax.yaml:14`)."""
        return f"{os.path.basename(self.file)}:{self.line}"  # often: a row each



@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a rule file, an argument or a drop file."""

    code: str
    message: str
    ref: SourceRef | None = None
    hint: str | None = None
    severity: str = "error"

    def render(self) -> str:
        """`file:line:col: error[CODE]: message`, the source line, a caret, the hint."""
        where = f"{self.ref}: " if self.ref else ""
        lines = [f"{where}{self.severity}[{self.code}]: {self.message}"]
        text = source_line(self.ref.file, self.ref.line) if self.ref else None
        if text is not None:
            gutter = f"{self.ref.line:>4} | "
            lines.append(gutter + text)
            caret = "^" * max(1, min(self.ref.length, len(text) - self.ref.col + 1))
            lines.append(" " * (len(gutter) - 2) + "| " + " " * (self.ref.col - 1) + caret)
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        ref = self.ref
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": ref.file if ref else None,
            "line": ref.line if ref else None,
            "col": ref.col if ref else None,
            "hint": self.hint,
        }


@lru_cache(maxsize=256)
def _file_lines(path: str) -> tuple[str, ...] | None:
    try:
        return tuple(Path(path).read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        return None


def source_line(path: str, line: int) -> str | None:
    """The text of 1-based `line` of `path`, or None when it cannot be read."""
    lines = _file_lines(path)
    if lines is None or not 1 <= line <= len(lines):
        return None
    return lines[line - 1]


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest of `choices`, if one is close enough."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else None


class RuledgerError(Exception):
    """Base of the errors the CLI turns into one message and an exit code."""

    exit_code = 4

    def __init__(self, diagnostics: Sequence[Diagnostic] | str):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic("E000", diagnostics)]
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class RuleError(RuledgerError):
    """The rules (or the arguments) are wrong: exit 2, nothing was read."""

    exit_code = 2


class DropRefused(RuledgerError):
    """The drop cannot be posted: exit 3, nothing was posted."""

    exit_code = 3


class InternalError(RuledgerError):
    """A failure of ours: exit 4, nothing posted, state unchanged."""

    exit_code = 4


@dataclass
class Diagnostics:
    """A collector used by checking passes: add problems, raise them all at once."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, code: str, message: str, ref: SourceRef | None = None,
            hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, ref, hint))

    def extend(self, more: Iterable[Diagnostic]) -> None:
        self.items.extend(more)

    def raise_if_any(self, kind: type[RuledgerError] = RuleError) -> None:
        errors = [d for d in self.items if d.severity == "error"]
        if errors:
            raise kind(sorted(errors, key=_sort_key))


def _sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    ref = d.ref
    return (ref.file, ref.line, ref.col, d.code) if ref else ("", 0, 0, d.code)


def diagnostics_json(diags: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diags], indent=2)
