"""The configuration reference, generated from the settings models themselves.

Each option's type and default come from its pydantic field; its explanation from
the comment written above it (or beside it) in the model's source, so the reference
cannot drift from the code: ``docs/config-reference.md`` is this module's output, and
a test fails when the two differ.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import re
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agent.config import Settings

_FIELD = re.compile(r"^    (\w+)\s*:\s*[^=]+?(?:=.*?)?(?:\s+#\s*(?P<beside>.+))?$")
_COMMENT = re.compile(r"^    #\s?(.*)$")
HEADER = """# Configuration reference

Every option of `config.yaml`, generated from the settings models by
`cartline config-reference` (do not edit by hand). The annotated example is
[config.yaml](../config.yaml); `cartline check-config` names each problem by its
path. Any string may name an environment variable: `${NAME}` or `${NAME:-default}`.
"""


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment lines written above (or beside) each field in the model's class body."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines:
            comment = _COMMENT.match(line)
            if comment:
                pending.append(comment[1].strip())
                continue
            field = _FIELD.match(line)
            if field and field[1] in model.model_fields:
                text = " ".join(pending)
                if field["beside"]:
                    text = f"{text} {field['beside'].strip()}".strip()
                if text:
                    out[field[1]] = text
            pending = []
    return out


_YAML_KEY = re.compile(
    r"^(?P<indent>\s*)(?P<item>- )?(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$"
)


def yaml_comments(text: str) -> dict[str, str]:
    """Comments of an annotated config.yaml, by option path (``web.auth.max_failures``,
    ``campaigns[].delay_min``): the lines just above an option and the one beside it."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            # Commented-out examples ("# kind: openai") are not explanations.
            if body and not _YAML_KEY.match(body) and not body.startswith("- "):
                pending.append(body)
            continue
        match = _YAML_KEY.match(line)
        if not match:
            pending = []
            continue
        indent = len(match["indent"]) + (2 if match["item"] else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match["key"]
        if match["item"] and stack:
            stack[-1] = (stack[-1][0], stack[-1][1].removesuffix("[]") + "[]")
        path = ".".join([p for _, p in stack] + [key])
        rest = match["rest"]
        beside = rest.split(" #", 1)[1].strip() if " #" in rest else ""
        text_ = " ".join([*pending, beside]).strip()
        if text_:
            out[path] = text_
        pending = []
        stack.append((indent, key))
    return out


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(f'"{a}"' for a in args)
    if origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {_type_name(inner[0])}" if inner else "list"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if annotation is type(None):
        return "null"
    names = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        Decimal: "decimal",
        Path: "path",
        SecretStr: "secret",
        dt.time: "time (HH:MM)",
        dt.date: "date",
    }
    if annotation in names:
        return names[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " or ".join(f'"{m.value}"' for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, SecretStr):
        return "(a development secret)" if value.get_secret_value() else '""'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    if isinstance(value, tuple | list):
        if value and all(isinstance(v, BaseModel) for v in value):
            return "see below"
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    if isinstance(value, dt.time):
        return f"`{value.strftime('%H:%M')}`"
    return f"`{value}`"


def _models_in(annotation: Any) -> Iterator[tuple[type[BaseModel], bool]]:
    """The settings models an annotation holds (and whether as a list)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, False
    elif origin in (tuple, list):
        for a in args:
            for model, _ in _models_in(a):
                yield model, True
    elif origin in (typing.Union, types.UnionType, typing.Annotated):
        for a in args:
            yield from _models_in(a)


def _kind(model: type[BaseModel]) -> str:
    kind = model.model_fields.get("kind")
    if kind is None:
        return model.__name__
    args = typing.get_args(kind.annotation)
    return str(args[0]) if args else str(kind.default)


def _section(path: str, model: type[BaseModel], out: list[str], notes: dict[str, str]) -> None:
    base = path.split(" (", 1)[0]
    doc = inspect.getdoc(model) or notes.get(base, "")
    out.append(f"## `{path}`\n")
    if doc:
        out.append(doc.split("\n\n")[0].replace("\n", " ") + "\n")
    comments = field_comments(model)
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        found = list(_models_in(field.annotation))
        for sub, many in found:
            label = f"{path}.{name}{'[]' if many else ''}"
            if len(found) > 1:  # one of several kinds (a discriminated union)
                label += f" (kind: {_kind(sub)})"
            nested.append((label, sub))
        kind = _type_name(field.annotation)
        if found and all(not many for _, many in found):
            kind = "section"
        text = (comments.get(name) or notes.get(f"{base}.{name}", "")).replace("|", "\\|")
        rows.append(f"| `{name}` | {kind} | {_default(field)} | {text} |")
    if rows:
        out.append("| option | type | default | meaning |\n|---|---|---|---|")
        out.extend(rows)
        out.append("")
    seen: set[str] = set()
    for sub_path, sub in nested:
        if sub_path not in seen:
            seen.add(sub_path)
            _section(sub_path, sub, out, notes)


EXAMPLE = Path(__file__).resolve().parent.parent / "config.yaml"


def reference(example: Path = EXAMPLE) -> str:
    """The whole reference, as Markdown; explanations also come from the annotated
    example ``config.yaml`` where the code has none."""
    notes = yaml_comments(example.read_text()) if example.is_file() else {}
    out = [HEADER]
    comments = field_comments(Settings)
    top = [
        f"| `{n}` | {_type_name(f.annotation)} | {_default(f)} | {comments.get(n, '')} |"
        for n, f in Settings.model_fields.items()
        if not list(_models_in(f.annotation))
    ]
    if top:
        out.append("## Top level\n\n| option | type | default | meaning |\n|---|---|---|---|")
        out.extend(top)
        out.append("")
    for name, field in Settings.model_fields.items():
        for model, many in _models_in(field.annotation):
            _section(f"{name}{'[]' if many else ''}", model, out, notes)
    return "\n".join(out).rstrip() + "\n"
