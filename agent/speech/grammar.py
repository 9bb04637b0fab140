"""Fewer tokens for a constrained answer: what the schema already decides, the model skips.

On a small CPU each generated token costs a forward pass and a grammar check
over the whole vocabulary, forced or not. For a schema of alternatives told
apart by a constant first property (``{"action": "send_checkout_link"}`` and
its kin), the opening ``{"action": "`` is the same in every answer: it is
written into the prompt instead (:func:`continuation`), and the model writes
only the rest under a grammar for the rest. Once what is written leaves one way
to finish, the answer is complete without the model (:func:`settled_json`); a
free string at the end is written without the grammar (:func:`open_string`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# A JSON string's character, as llama.cpp's schema converter writes it.
_CHAR = (
    r'char ::= [^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
)


@dataclass(frozen=True)
class Continuation:
    """The fixed opening of every answer, and a GBNF grammar for what follows it."""

    opening: str
    grammar: str


def continuation(schema: dict[str, Any]) -> Continuation | None:
    """The opening and the rest's grammar, for schemas of that shape; None for any other."""
    alternatives = schema.get("oneOf")
    if not alternatives or schema.keys() != {"oneOf"}:
        return None
    key: str | None = None
    rules = []
    for alt in alternatives:
        properties: dict[str, Any] = alt.get("properties", {})
        names = list(properties)
        if not names or set(alt.get("required", [])) != set(names):
            return None
        key = key or names[0]
        tag = properties[names[0]].get("const")
        if (
            names[0] != key
            or not isinstance(tag, str)
            or alt.get("additionalProperties") is not False
        ):
            return None
        parts = [_literal(json.dumps(tag)[1:])]  # the opening already holds its quote
        for name in names[1:]:
            value = _value(properties[name])
            if value is None:
                return None
            parts += [_literal(f", {json.dumps(name)}: "), value]
        parts.append(_literal("}"))
        rules.append(" ".join(parts))
    assert key is not None
    grammar = "root ::= " + " | ".join(f"({r})" for r in rules) + "\n" + _CHAR + "\n"
    return Continuation(f'{{{json.dumps(key)}: "', grammar)


def _value(schema: dict[str, Any]) -> str | None:
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return "(" + " | ".join(_literal(json.dumps(v)) for v in schema["enum"]) + ")"
    if schema.keys() <= {"type", "maxLength"} and schema.get("type") == "string":
        # maxLength is left to the caller's validation: nested optional rules
        # for 160 characters would slow every grammar check inside the string.
        return _FREE
    return None


_FREE = r'"\"" char* "\""'


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_OPENING = re.compile(r'\s*\{\s*"(\w+)"\s*:\s*"(\w*)')


def settled_json(text: str, schema: dict[str, Any]) -> str | None:
    """The whole object, once its start ``text`` leaves only one way to finish it.

    Under a ``oneOf`` schema whose alternatives are told apart by a constant
    first property, ``{"action": "send`` can only end as
    ``{"action": "send_checkout_link"}`` when that alternative has no other
    property, or only properties with a single possible value.
    """
    match = _OPENING.match(text)
    if match is None:
        return None
    key, start = match[1], match[2]
    fits = [
        alt
        for alt in schema.get("oneOf", [])
        if str(alt.get("properties", {}).get(key, {}).get("const", "")).startswith(start)
    ]
    if len(fits) != 1:
        return None
    whole = {}
    for name, value in fits[0]["properties"].items():
        choices = [value["const"]] if "const" in value else value.get("enum", [])
        if len(choices) != 1:
            return None
        whole[name] = choices[0]
    return json.dumps(whole)


def open_string(text: str, schema: dict[str, Any]) -> str | None:
    """What closes the object, once ``text`` just opened its last property, a free string.

    Checking the grammar costs most inside a free string, where almost every
    token of the vocabulary fits and each must be matched in full; the caller
    writes the string without the grammar, up to its closing quote, and then
    this closing. ``text`` must be written as :func:`continuation` writes it.
    """
    match = _OPENING.match(text)
    if match is None:
        return None
    key = match[1]
    for alt in schema.get("oneOf", []):
        properties: dict[str, Any] = alt.get("properties", {})
        names = list(properties)
        tag = properties.get(key, {}).get("const")
        if len(names) != 2 or names[0] != key or _value(properties[names[1]]) != _FREE:
            continue
        if text.endswith(f'{json.dumps(tag)}, {json.dumps(names[1])}: "'):
            return '"}'
    return None


__all__ = ["Continuation", "continuation", "open_string", "settled_json"]
