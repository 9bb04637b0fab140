"""Fewer tokens for a constrained answer: what the schema already decides, the model skips.

On a small CPU each generated token costs a forward pass and a grammar check
over the whole vocabulary, forced or not. For a schema of alternatives told
apart by a constant first property (``{"action": "send_checkout_link"}`` and
its kin), the opening ``{"action": "`` is the same in every answer: it is
written into the prompt instead (:func:`continuation`), and the model writes
only the rest under a grammar for the rest. Once what is written leaves one way
to finish, the answer is complete without the model (:func:`settled_json`).
Once it leaves one alternative with choices still to make, what the schema
forces up to the next choice goes into the prompt too (:func:`ahead`), and a
free string at the end is written without the grammar.
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


def _fitting(text: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The key and the one alternative whose constant first property fits ``text``'s start."""
    match = _OPENING.match(text)
    if match is None:
        return None
    key, start = match[1], match[2]
    fits = [
        alt
        for alt in schema.get("oneOf", [])
        if str(alt.get("properties", {}).get(key, {}).get("const", "")).startswith(start)
    ]
    return (key, fits[0]) if len(fits) == 1 else None


def _choices(value: dict[str, Any]) -> list[Any]:
    return [value["const"]] if "const" in value else list(value.get("enum", []))


def settled_json(text: str, schema: dict[str, Any]) -> str | None:
    """The whole object, once its start ``text`` leaves only one way to finish it.

    Under a ``oneOf`` schema whose alternatives are told apart by a constant
    first property, ``{"action": "send`` can only end as
    ``{"action": "send_checkout_link"}`` when that alternative has no other
    property, or only properties with a single possible value.
    """
    fitting = _fitting(text, schema)
    if fitting is None:
        return None
    whole = {}
    for name, value in fitting[1]["properties"].items():
        choices = _choices(value)
        if len(choices) != 1:
            return None
        whole[name] = choices[0]
    return json.dumps(whole)


@dataclass(frozen=True)
class Ahead:
    """What the schema alone writes after an answer's start, and how the answer goes on.

    ``text`` is forced: the rest of the action's name, and each property's name
    up to the next choice. ``grammar`` is the GBNF for what follows ``text``
    (an offer's name, say); None when a free string was just opened, which is
    written without a grammar up to its closing quote and then ``closing``.
    """

    text: str
    grammar: str | None
    closing: str = ""


def ahead(text: str, schema: dict[str, Any]) -> Ahead | None:
    """The forced text after ``text``, once its start picks one alternative with choices left.

    Each forced token would otherwise cost a forward pass and a grammar check
    over the whole vocabulary; written into the prompt, they cost one pass
    together. None while several alternatives fit, when nothing is left to
    choose (see :func:`settled_json`), or for a shape this does not write
    (a free string before another property). ``text`` must be written as
    :func:`continuation` writes it.
    """
    fitting = _fitting(text, schema)
    if fitting is None:
        return None
    key, alt = fitting
    properties = list(alt["properties"].items())
    fixed = f"{{{json.dumps(key)}: {json.dumps(properties[0][1]['const'])}"
    for i, (name, value) in enumerate(properties[1:], start=1):
        fixed += f", {json.dumps(name)}: "
        choices = _choices(value)
        if len(choices) == 1:
            fixed += json.dumps(choices[0])
            continue
        if _value(value) == _FREE:
            fixed += '"'  # opened: the model writes the string's words
            if i != len(properties) - 1 or not fixed.startswith(text):
                return None
            return Ahead(fixed[len(text) :], None, '"}')
        if not fixed.startswith(text):
            return None
        parts = []
        for later, later_value in properties[i:]:
            if later != name:
                parts.append(_literal(f", {json.dumps(later)}: "))
            rule = _value(later_value)
            if rule is None:
                return None
            parts.append(rule)
        parts.append(_literal("}"))
        return Ahead(fixed[len(text) :], "root ::= " + " ".join(parts) + "\n" + _CHAR + "\n")
    return None


__all__ = ["Ahead", "Continuation", "ahead", "continuation", "settled_json"]
