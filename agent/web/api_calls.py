"""``/api/v1/calls`` and ``/api/v1/outcomes``: calls with their outcomes, transcripts and
recordings, and the outcome counts per campaign.

A principal limited to some campaigns (the agent role) sees only their calls; any other
call is answered 404, as if it did not exist. Every answer that shows a customer writes
one processing-log entry. Outcome counts name no one, so ``metrics:read`` is enough for
them and they are not logged.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlmodel import Session

from agent.privacy import audit
from agent.privacy.crypto import RECORDING_CONTEXT, SEALED_SUFFIX, DataKeyError, DataKeys
from agent.store import views
from agent.store.tables import AttemptStatus
from agent.web.access import Scope, principal, requires
from agent.web.api_common import (
    API,
    choice_param,
    fail,
    int_param,
    limit_param,
    not_found,
    page,
    path_id,
    read_logged,
    reply,
    text_param,
    time_param,
)
from agent.web.app import SERVED

_CHUNK = 64 * 1024


def call_json(row: views.CallRow) -> dict[str, Any]:
    return asdict(row)


def _filter(request: web.Request) -> views.CallFilter:
    return views.CallFilter(
        campaigns=principal(request).campaigns,
        campaign=text_param(request, "campaign", 63),
        outcome=text_param(request, "outcome", 40),
        status=choice_param(request, "status", [s.value for s in AttemptStatus]),
        since=time_param(request, "since"),
        until=time_param(request, "until"),
    )


@requires(Scope.CALLS_READ)
async def list_calls(request: web.Request) -> web.Response:
    """GET /api/v1/calls"""
    f = _filter(request)
    before = int_param(request, "before")
    limit = limit_param(request)
    rows = await read_logged(
        request,
        lambda s: views.list_calls(s, f, before_id=before, limit=limit + 1),
        lambda rows: [r.contact_id for r in rows[:limit]],
        "calls",
    )
    return reply(page([call_json(r) for r in rows], limit, "attempt_id"))


async def _visible_call(
    request: web.Request, purpose: str, keys: DataKeys | None = None
) -> views.CallDetail:
    attempt_id = path_id(request)
    who = principal(request)

    def read(s: Session) -> views.CallDetail | None:
        found = views.get_call(s, attempt_id, keys)
        return found if found is not None and who.sees_campaign(found.row.campaign) else None

    detail = await read_logged(request, read, lambda d: [d.row.contact_id] if d else [], purpose)
    if detail is None:
        not_found("call")
    return detail


@requires(Scope.CALLS_READ)
async def get_call(request: web.Request) -> web.Response:
    """GET /api/v1/calls/{id}"""
    d = await _visible_call(request, "call")
    recording = (
        {
            "id": d.recording_id,
            "bytes": d.recording_bytes,
            "url": f"{API}/calls/{d.row.attempt_id}/recording",
        }
        if d.recording_id is not None
        else None
    )
    return reply(
        {
            **call_json(d.row),
            "note": d.note,
            "recording": recording,
            "items": d.items,
            "checkout_url": d.checkout_url,
            "decisions": d.decisions,
            "attributed": d.attributed,
        }
    )


@requires(Scope.CALLS_READ)
async def get_transcript(request: web.Request) -> web.Response:
    """GET /api/v1/calls/{id}/transcript"""
    d = await _visible_call(request, "call transcript", request.app[SERVED].keys)
    if not d.row.has_transcript:
        not_found("transcript")
    if d.transcript_locked:
        fail(503, "keys_unavailable", "The transcript is sealed and no data keys are loaded.")
    return reply({"attempt_id": d.row.attempt_id, "turns": d.turns})


# -- recordings ---------------------------------------------------------------------------


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, as [start, end); None for the whole file.

    A header we do not understand (several ranges, bad syntax) is ignored, as RFC 9110
    allows; a range that starts past the end raises 416.
    """
    if not header:
        return None
    m = re.fullmatch(r"bytes=([0-9]{0,19})-([0-9]{0,19})", header.strip())
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:
        suffix = int(m[2])
        if suffix == 0 or size == 0:
            _unsatisfiable(size)
        return max(size - suffix, 0), size
    start = int(m[1])
    end = int(m[2]) + 1 if m[2] else size
    if m[2] and end <= start:
        return None
    if start >= size:
        _unsatisfiable(size)
    return start, min(end, size)


def _unsatisfiable(size: int) -> None:
    fail(
        416,
        "range_not_satisfiable",
        "The range asked for is outside the recording.",
        **{"Content-Range": f"bytes */{size}"},
    )


def _read_recording(path: Path, keys: DataKeys | None) -> bytes | None:
    if not path.is_file():
        return None
    if not path.name.endswith(SEALED_SUFFIX):
        return path.read_bytes()
    if keys is None:
        raise DataKeyError("the recording is sealed and no data keys are loaded")
    return keys.open_file(path, RECORDING_CONTEXT)


@requires(Scope.RECORDINGS_READ)
async def get_recording(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/calls/{id}/recording: the WAV, opened if sealed; one byte range allowed."""
    served = request.app[SERVED]
    attempt_id = path_id(request)
    who = principal(request)

    def find(s: Session) -> tuple[int, str, str] | None:
        detail = views.get_call(s, attempt_id, None)
        if detail is None or detail.recording_id is None:
            return None
        if not who.sees_campaign(detail.row.campaign):
            return None
        return views.recording_file(s, detail.recording_id)

    found = await served.db.run(find)
    if found is None:
        not_found("recording")
    contact_id, _, stored = found
    try:
        data = await asyncio.to_thread(_read_recording, Path(stored), served.keys)
    except DataKeyError:
        fail(503, "keys_unavailable", "The recording does not open with the loaded data keys.")
    if data is None:
        not_found("recording")
    span = byte_range(request.headers.get("Range"), len(data))
    await served.db.run(
        lambda s: audit.record(
            s, actor=who.actor, action="access", contacts=[contact_id], purpose="api: recording"
        )
    )
    start, end = span or (0, len(data))
    response = web.StreamResponse(status=206 if span else 200)
    response.content_type = "audio/wav"
    response.content_length = end - start
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "private, no-store"
    if span:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
    await response.prepare(request)
    view = memoryview(data)
    for offset in range(start, end, _CHUNK):
        await response.write(view[offset : min(offset + _CHUNK, end)])
    await response.write_eof()
    return response


# -- outcomes -----------------------------------------------------------------------------


@requires(Scope.METRICS_READ)
async def list_outcomes(request: web.Request) -> web.Response:
    """GET /api/v1/outcomes: calls per outcome code and campaign (aggregates only)."""
    campaigns = principal(request).campaigns
    since, until = time_param(request, "since"), time_param(request, "until")
    counts = await request.app[SERVED].db.run(
        lambda s: views.outcome_counts(s, campaigns, since, until)
    )
    items = [{"campaign": c, "outcome": o, "calls": n} for c, o, n in counts]
    return reply({"items": items})


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/calls", list_calls)
    app.router.add_get(f"{API}/calls/{{id}}", get_call)
    app.router.add_get(f"{API}/calls/{{id}}/transcript", get_transcript)
    app.router.add_get(f"{API}/calls/{{id}}/recording", get_recording)
    app.router.add_get(f"{API}/outcomes", list_outcomes)
