"""Printed text with `{field}` placeholders, as a DSL tree: concat of text and fields.

`"Exempt, certificate {customer.exemption_id}"` becomes
`concat("Exempt, certificate ", customer.exemption_id)`, so a template is checked and
compiled like any expression (a null field prints as nothing).
"""

from __future__ import annotations

import re

from engine.dsl import ast
from engine.dsl.parser import Origin

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def template_node(text: str, origin: Origin) -> ast.Node:
    """The concat tree of `text`; field refs carry the placeholder's place."""
    parts: list[ast.Node] = []
    at = 0
    whole = origin(1, 1, max(1, len(text)))
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > at:
            chunk = text[at:match.start()]
            parts.append(ast.Literal(whole, chunk, "string", repr(chunk)))
        name = match.group(1).strip()
        ref = origin(1, match.start() + 1, len(match.group(0)))
        parts.append(ast.Field(ref, tuple(name.split("."))))
        at = match.end()
    if at < len(text) or not parts:
        chunk = text[at:]
        parts.append(ast.Literal(whole, chunk, "string", repr(chunk)))
    if len(parts) == 1 and isinstance(parts[0], ast.Literal):
        return parts[0]
    return ast.Call(whole, "concat", tuple(parts) if len(parts) > 1 else (
        parts[0], ast.Literal(whole, "", "string", "''")))
