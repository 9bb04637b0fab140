"""What every JSON API route shares: errors with stable codes, query parameters checked
before they reach the database, pages with a cursor, and JSON for dates and money.

An error is ``{"error": code, "message": text}``; the codes are part of the contract
(the OpenAPI document lists them). A bad query parameter is a 422
``invalid_parameter``, never a 500.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, is_dataclass
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from aiohttp import web
from sqlmodel import Session

from agent.privacy import audit
from agent.web.access import principal
from agent.web.app import SERVED

T = TypeVar("T")

API = "/api/v1"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_ID = 2**63 - 1  # the largest id a database column holds; above it nothing can match
_CENT = Decimal("0.01")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_ERRORS: dict[int, type[web.HTTPError]] = {
    404: web.HTTPNotFound,
    415: web.HTTPUnsupportedMediaType,
    416: web.HTTPRequestRangeNotSatisfiable,
    422: web.HTTPUnprocessableEntity,
    503: web.HTTPServiceUnavailable,
}


def fail(status: int, code: str, message: str, **headers: str) -> NoReturn:
    """Ends the request with a JSON error (aiohttp answers a raised HTTP error as it is)."""
    body = json.dumps({"error": code, "message": message})
    raise _ERRORS[status](text=body, content_type="application/json", headers=headers or None)


def not_found(what: str) -> NoReturn:
    fail(404, "not_found", f"No such {what}.")


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Two decimals as prices are written, more only where the amount has them.
        cents = value.quantize(_CENT)
        return str(cents if cents == value else value.normalize())
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(data: Any) -> str:
    return json.dumps(data, default=_plain)


def reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def page(items: Sequence[dict[str, Any]], limit: int, key: str) -> dict[str, Any]:
    """A page of ``items`` and the cursor of the next one (None on the last page)."""
    more = len(items) > limit
    shown = list(items[:limit])
    return {"items": shown, "next": shown[-1][key] if more and shown else None}


# -- query parameters ---------------------------------------------------------------------


def _bad(name: str, why: str) -> NoReturn:
    fail(422, "invalid_parameter", f"{name}: {why}")


def text_param(request: web.Request, name: str, max_length: int = 200) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    if len(value) > max_length:
        _bad(name, f"at most {max_length} characters")
    if _CONTROL.search(value):
        _bad(name, "control characters are not allowed")
    return value


def choice_param(request: web.Request, name: str, choices: Iterable[str]) -> str | None:
    value = request.query.get(name)
    allowed = list(choices)
    if value is not None and value not in allowed:
        _bad(name, f"one of {', '.join(allowed)}")
    return value


def int_param(
    request: web.Request, name: str, *, low: int = 1, high: int = MAX_ID, default: int | None = None
) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,19}", raw):
        _bad(name, "a whole number")
    value = int(raw)
    if not low <= value <= high:
        _bad(name, f"between {low} and {high}")
    return value


def limit_param(request: web.Request) -> int:
    value = int_param(request, "limit", high=MAX_LIMIT, default=DEFAULT_LIMIT)
    assert value is not None
    return value


def bool_param(request: web.Request, name: str) -> bool | None:
    value = choice_param(request, name, ("true", "false"))
    return None if value is None else value == "true"


def time_param(request: web.Request, name: str) -> dt.datetime | None:
    """An ISO 8601 date-time; one without an offset is read as UTC."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        _bad(name, "an ISO 8601 date-time, e.g. 2026-06-02T15:00:00Z")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # within a day of year 1 or 9999: as far as any record goes
        return (dt.datetime.min if value.year == 1 else dt.datetime.max).replace(tzinfo=dt.UTC)


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric id from the path; one that cannot exist is simply not found."""
    raw = request.match_info[name]
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not 1 <= int(raw) <= MAX_ID:
        fail(404, "not_found", f"No such {name}.")
    return int(raw)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (415 if it is not JSON, 422 if it is not an object)."""
    if request.content_type != "application/json":
        fail(415, "unsupported_media_type", "Send application/json.")
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        fail(422, "invalid_body", "The body is not valid JSON.")
    if not isinstance(data, dict):
        fail(422, "invalid_body", "The body must be a JSON object.")
    return data


def body_text(data: dict[str, Any], name: str, *, max_length: int, required: bool = False) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        fail(422, "invalid_body", f"{name}: a non-empty string")
    if len(value) > max_length or _CONTROL.search(value):
        fail(422, "invalid_body", f"{name}: at most {max_length} characters, no control ones")
    return value


# -- reading with the processing log ------------------------------------------------------


async def read_logged(
    request: web.Request,
    read: Callable[[Session], T],
    contacts: Callable[[T], Iterable[int]],
    purpose: str,
) -> T:
    """Runs ``read`` and, when what it found names anyone, writes one processing-log entry
    for them in the same transaction: the read and its record stand or fall together."""
    actor = principal(request).actor

    def run(s: Session) -> T:
        found = read(s)
        shown = sorted(set(contacts(found)))
        if shown:
            audit.record(s, actor=actor, action="access", contacts=shown, purpose=f"api: {purpose}")
        return found

    return await request.app[SERVED].db.run(run)
