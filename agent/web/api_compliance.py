"""``/api/v1/do-not-call`` and ``/api/v1/processing-log``: the numbers never to call, added
one by one or from a CSV file, and the record of who processed whose data.

Numbers are stored in E.164, read in the store's region when written without a country
code. The log names people by contact id only, so reading it is not itself logged.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.campaigns.phones import normalize_phone
from agent.privacy import audit
from agent.store import repository as repo
from agent.store.tables import Contact, DoNotCall, ProcessingLog, table
from agent.web.access import Scope, principal, requires
from agent.web.api_common import (
    API,
    body_text,
    choice_param,
    dumps,
    fail,
    int_param,
    json_body,
    limit_param,
    page,
    reply,
    time_param,
)
from agent.web.app import SERVED

MAX_IMPORT_ROWS = 100_000
_PHONE_COLUMNS = ("phone", "phone_e164", "number", "phone_number")
_DNC_FIELDS = ("id", "phone_e164", "reason", "source", "created_at")


def _contacts_with(s: Session, phones: Iterable[str]) -> list[int]:
    wanted = sorted(set(phones))
    if not wanted:
        return []
    c = table(Contact).c
    found: list[int] = []
    for start in range(0, len(wanted), 500):  # keeps each IN list within the drivers' limits
        rows = s.connection().execute(
            sa_select(c.id).where(c.phone_e164.in_(wanted[start : start + 500]))
        )
        found.extend(int(i) for (i,) in rows)
    return found


def _dnc_rows(s: Session, before: int | None, limit: int | None) -> list[dict[str, Any]]:
    t = table(DoNotCall)
    query = sa_select(*(t.c[f] for f in _DNC_FIELDS)).order_by(t.c.id.desc())
    if before is not None:
        query = query.where(t.c.id < before)
    if limit is not None:
        query = query.limit(limit)
    return [dict(r._mapping) for r in s.connection().execute(query)]


def _wants_csv(request: web.Request) -> bool:
    fmt = choice_param(request, "format", ("json", "csv"))
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("Accept", "")
    return "text/csv" in accept and "application/json" not in accept


@requires(Scope.COMPLIANCE_READ)
async def list_do_not_call(request: web.Request) -> web.Response:
    """GET /api/v1/do-not-call: a page as JSON, or the whole list as CSV."""
    as_csv = _wants_csv(request)
    before = int_param(request, "before")
    limit = limit_param(request)
    actor = principal(request).actor

    def read(s: Session) -> list[dict[str, Any]]:
        rows = _dnc_rows(s, None if as_csv else before, None if as_csv else limit + 1)
        # The numbers alone name no one: the entry names the contacts they belong to.
        _log_numbers(s, actor, rows if as_csv else rows[:limit], "api: do-not-call")
        return rows

    rows = await request.app[SERVED].db.run(read)
    if not as_csv:
        return reply(page(rows, limit, "id"))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone", "reason", "source", "created_at"])
    for r in rows:
        writer.writerow([r["phone_e164"], r["reason"], r["source"], r["created_at"].isoformat()])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="do-not-call.csv"'},
    )


def _log_numbers(s: Session, actor: str, rows: list[dict[str, Any]], purpose: str) -> None:
    contacts = _contacts_with(s, (r["phone_e164"] for r in rows))
    if contacts:
        audit.record(s, actor=actor, action="access", contacts=contacts, purpose=purpose)


@requires(Scope.COMPLIANCE_WRITE)
async def add_do_not_call(request: web.Request) -> web.Response:
    """POST /api/v1/do-not-call ``{"phone": ..., "reason": ...}``"""
    data = await json_body(request)
    phone = body_text(data, "phone", max_length=64, required=True)
    reason = body_text(data, "reason", max_length=40) or "manual"
    served = request.app[SERVED]
    result = normalize_phone(phone, served.settings.intake.default_region)
    if result.e164 is None:
        fail(422, "invalid_phone", f"Not a callable phone number ({result.error}).")
    e164 = result.e164
    actor = principal(request).actor

    def add(s: Session) -> bool:
        added = repo.add_do_not_call(s, e164, reason, actor[:100], dt.datetime.now(dt.UTC))
        contacts = _contacts_with(s, [e164])
        if contacts:
            audit.record(
                s, actor=actor, action="do_not_call", contacts=contacts, purpose="api: do-not-call"
            )
        return added

    added = await served.db.run(add)
    return reply({"phone_e164": e164, "added": added}, status=201 if added else 200)


def _read_phones(text: str) -> list[tuple[int, str]]:
    """(row number, number as written) for each data row; the header is row 1."""
    try:
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader, [])]
        column = next((header.index(c) for c in _PHONE_COLUMNS if c in header), None)
        if column is None:
            fail(422, "invalid_csv", "The CSV needs a 'phone' column in its first row.")
        rows = []
        for number, row in enumerate(reader, 2):
            if not any(cell.strip() for cell in row):
                continue
            rows.append((number, row[column] if column < len(row) else ""))
            if len(rows) > MAX_IMPORT_ROWS:
                fail(422, "invalid_csv", f"At most {MAX_IMPORT_ROWS} rows per import.")
    except csv.Error:
        fail(422, "invalid_csv", "The body is not readable as CSV.")
    return rows


@requires(Scope.COMPLIANCE_WRITE)
async def import_do_not_call(request: web.Request) -> web.Response:
    """POST /api/v1/do-not-call/import: a CSV file with a phone column."""
    if request.content_type != "text/csv":
        fail(415, "unsupported_media_type", "Send the list as text/csv.")
    raw = await request.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        fail(422, "invalid_csv", "The CSV must be UTF-8.")
    if "\x00" in text:
        fail(422, "invalid_csv", "The body is not readable as CSV.")
    rows = _read_phones(text)
    served = request.app[SERVED]
    region = served.settings.intake.default_region
    actor = principal(request).actor
    invalid: list[dict[str, Any]] = []
    numbers: list[str] = []
    for number, phone in rows:
        result = normalize_phone(phone, region)
        if result.e164 is None:
            invalid.append({"row": number, "error": result.error})
        else:
            numbers.append(result.e164)

    def add_all(s: Session) -> int:
        now = dt.datetime.now(dt.UTC)
        added = sum(repo.add_do_not_call(s, n, "imported", actor[:100], now) for n in numbers)
        contacts = _contacts_with(s, numbers)
        if contacts:
            audit.record(
                s,
                actor=actor,
                action="do_not_call",
                contacts=contacts,
                purpose="api: do-not-call import",
            )
        return added

    added = await served.db.run(add_all)
    return reply(
        {
            "rows": len(rows),
            "added": added,
            "duplicates": len(numbers) - added,
            "invalid": invalid,
        }
    )


@requires(Scope.COMPLIANCE_READ)
async def processing_log(request: web.Request) -> web.Response:
    """GET /api/v1/processing-log: newest first; ``since`` keeps entries from then on."""
    since = time_param(request, "since")
    before = int_param(request, "before")
    limit = limit_param(request)
    t = table(ProcessingLog)

    def read(s: Session) -> list[dict[str, Any]]:
        query = sa_select(t).order_by(t.c.id.desc()).limit(limit + 1)
        if since is not None:
            query = query.where(t.c.at >= since)
        if before is not None:
            query = query.where(t.c.id < before)
        return [dict(r._mapping) for r in s.connection().execute(query)]

    rows = await request.app[SERVED].db.run(read)
    return web.json_response(page(rows, limit, "id"), dumps=dumps)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/do-not-call", list_do_not_call)
    app.router.add_post(f"{API}/do-not-call", add_do_not_call)
    app.router.add_post(f"{API}/do-not-call/import", import_do_not_call)
    app.router.add_get(f"{API}/processing-log", processing_log)
