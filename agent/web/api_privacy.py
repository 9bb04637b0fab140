"""``/api/v1/exports``, ``/api/v1/erasures`` and ``/api/v1/privacy-requests``: a customer's
data on request, exported to an archive or erased, each request kept with its state.

A request keeps who asked and which contacts it concerned, never the phone number or
email it was asked for. An export's archive is written under ``state_dir/exports`` and
downloaded from its request; an erasure removes the archives of earlier exports of the
same people too, since they hold the very data being erased.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlmodel import Session, col, select

from agent.campaigns.phones import normalize_phone
from agent.errors import CartlineError
from agent.privacy import audit
from agent.privacy.crypto import EXPORT_CONTEXT, SEALED_SUFFIX
from agent.privacy.erasure import (
    Subject,
    SubjectNotFound,
    erase,
    export_document,
    find_subject,
    recording_paths,
    write_archive,
)
from agent.privacy.retention import remove_files
from agent.store.tables import PrivacyRequest
from agent.web.access import Scope, principal, requires
from agent.web.api_common import (
    API,
    body_text,
    choice_param,
    fail,
    int_param,
    json_body,
    limit_param,
    not_found,
    page,
    path_id,
    reply,
)
from agent.web.app import SERVED


def request_json(row: PrivacyRequest) -> dict[str, Any]:
    has_archive = row.kind == "export" and row.archive_path is not None
    return {
        "id": row.id,
        "kind": row.kind,
        "state": row.state,
        "requested_by": row.requested_by,
        "purpose": row.purpose,
        "contacts": row.contacts,
        "created_at": row.created_at,
        "done_at": row.done_at,
        "error": row.error,
        "archive_url": f"{API}/privacy-requests/{row.id}/archive" if has_archive else None,
    }


def _subjects(contacts: list[int]) -> str:
    return " ".join(f"contact:{c}" for c in sorted(set(contacts)))[:2000]


def _contact_ids(subjects: str) -> set[int]:
    return {int(p.removeprefix("contact:")) for p in subjects.split() if p[8:].isdigit()}


async def _who_to_find(request: web.Request) -> tuple[str | None, str | None, dict[str, Any]]:
    data = await json_body(request)
    phone = body_text(data, "phone", max_length=64) or None
    email = body_text(data, "email", max_length=320) or None
    if phone is None and email is None:
        fail(422, "invalid_body", "Give the customer's phone or email.")
    region = request.app[SERVED].settings.intake.default_region
    if phone is not None and not normalize_phone(phone, region).ok:
        fail(422, "invalid_phone", "Not a valid phone number.")
    return phone, email, data


def _find(s: Session, phone: str | None, email: str | None, region: str) -> Subject:
    try:
        return find_subject(s, phone=phone, email=email, default_region=region)
    except SubjectNotFound:
        fail(404, "subject_not_found", "No customer with that phone number or email.")


@requires(Scope.COMPLIANCE_WRITE)
async def create_export(request: web.Request) -> web.Response:
    """POST /api/v1/exports: everything held on one customer, as a zip archive to download."""
    phone, email, data = await _who_to_find(request)
    purpose = body_text(data, "reason", max_length=500) or "customer request"
    served = request.app[SERVED]
    keys, region = served.keys, served.settings.intake.default_region
    folder = served.settings.state_dir / "exports"
    actor = principal(request).actor
    target: list[Path] = []

    def export(s: Session) -> PrivacyRequest:
        subject = _find(s, phone, email, region)
        contacts = subject.ids.get("contacts", [])
        now = dt.datetime.now(dt.UTC)
        row = PrivacyRequest(
            kind="export",
            state="pending",
            requested_by=actor[:200],
            purpose=purpose,
            contacts=len(contacts),
            subjects=_subjects(contacts),
            created_at=now,
        )
        s.add(row)
        s.flush()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.append(folder / f"export-{row.id}-{secrets.token_hex(8)}.zip")
        audit.record(s, actor=actor, action="export", contacts=contacts, purpose=purpose)
        write_archive(
            target[0], export_document(s, subject, keys), recording_paths(s, subject), keys
        )
        if keys is not None:
            # The archive holds everything on the person: it is sealed at rest like the
            # recordings, and opened only as it is downloaded.
            target[0] = keys.seal_file(target[0], EXPORT_CONTEXT)
        row.state, row.archive_path, row.done_at = "done", str(target[0]), dt.datetime.now(dt.UTC)
        s.add(row)
        return row

    try:
        row = await served.db.run(export)
    except CartlineError as exc:
        error = str(exc)
        await asyncio.to_thread(remove_files, target)
        await served.db.run(lambda s: _failed(s, "export", actor, purpose, error))
        fail(503, "keys_unavailable", "The export needs the data keys, which are not loaded.")
    return reply(request_json(row), status=201)


def _failed(s: Session, kind: str, actor: str, purpose: str, error: str) -> None:
    now = dt.datetime.now(dt.UTC)
    s.add(
        PrivacyRequest(
            kind=kind,
            state="failed",
            requested_by=actor[:200],
            purpose=purpose,
            error=error[:200],
            created_at=now,
            done_at=now,
        )
    )


def _earlier_archives(s: Session, contacts: list[int]) -> list[Path]:
    """Forgets the archives of earlier exports of these people; returns their files."""
    wanted = set(contacts)
    files: list[Path] = []
    rows = s.exec(
        select(PrivacyRequest).where(
            PrivacyRequest.kind == "export", col(PrivacyRequest.archive_path).is_not(None)
        )
    ).all()
    for row in rows:
        if row.archive_path and _contact_ids(row.subjects) & wanted:
            files.append(Path(row.archive_path))
            row.archive_path = None
            s.add(row)
    return files


@requires(Scope.COMPLIANCE_WRITE)
async def create_erasure(request: web.Request) -> web.Response:
    """POST /api/v1/erasures: every row and file about one customer removed; an opt-out
    keeps its do-not-call entry, so that they are never called again."""
    phone, email, data = await _who_to_find(request)
    reason = body_text(data, "reason", max_length=500, required=True)
    served = request.app[SERVED]
    region = served.settings.intake.default_region
    actor = principal(request).actor

    def run(s: Session) -> tuple[PrivacyRequest, list[Path], dict[str, int]]:
        subject = _find(s, phone, email, region)
        contacts = subject.ids.get("contacts", [])
        files = recording_paths(s, subject)
        counts = erase(s, subject)
        audit.record(
            s,
            actor=actor,
            action="erase",
            contacts=contacts,
            purpose=reason,
            detail=", ".join(f"{n} {name}" for name, n in counts.items() if n),
        )
        files += _earlier_archives(s, contacts)
        now = dt.datetime.now(dt.UTC)
        row = PrivacyRequest(
            kind="erase",
            state="done",
            requested_by=actor[:200],
            purpose=reason,
            contacts=len(contacts),
            subjects=_subjects(contacts),
            created_at=now,
            done_at=now,
        )
        s.add(row)
        s.flush()
        return row, files, counts

    row, files, counts = await served.db.run(run)
    removed = await asyncio.to_thread(remove_files, files)
    return reply({**request_json(row), "erased": counts, "files_removed": removed}, status=201)


@requires(Scope.COMPLIANCE_READ)
async def list_requests(request: web.Request) -> web.Response:
    """GET /api/v1/privacy-requests: newest first."""
    kind = choice_param(request, "kind", ("export", "erase"))
    state = choice_param(request, "state", ("pending", "done", "failed"))
    before = int_param(request, "before")
    limit = limit_param(request)

    def read(s: Session) -> list[dict[str, Any]]:
        query = select(PrivacyRequest).order_by(col(PrivacyRequest.id).desc()).limit(limit + 1)
        if kind is not None:
            query = query.where(PrivacyRequest.kind == kind)
        if state is not None:
            query = query.where(PrivacyRequest.state == state)
        if before is not None:
            query = query.where(col(PrivacyRequest.id) < before)
        return [request_json(r) for r in s.exec(query).all()]

    rows = await request.app[SERVED].db.run(read)
    return reply(page(rows, limit, "id"))


@requires(Scope.COMPLIANCE_WRITE)
async def download_archive(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/privacy-requests/{id}/archive: an export's zip archive."""
    request_id = path_id(request)
    actor = principal(request).actor

    def find(s: Session) -> str | None:
        row = s.get(PrivacyRequest, request_id)
        if row is None or row.kind != "export" or row.archive_path is None:
            return None
        if not Path(row.archive_path).is_file():
            return None
        audit.record(
            s,
            actor=actor,
            action="access",
            contacts=_contact_ids(row.subjects),
            purpose="api: export archive",
        )
        return row.archive_path

    path = await request.app[SERVED].db.run(find)
    if path is None:
        not_found("archive")
    headers = {
        "Content-Type": "application/zip",
        "Content-Disposition": f'attachment; filename="export-{request_id}.zip"',
        "Cache-Control": "private, no-store",
    }
    if not path.endswith(SEALED_SUFFIX):
        return web.FileResponse(path, headers=headers)
    keys = request.app[SERVED].keys
    if keys is None:
        raise web.HTTPServiceUnavailable(text="the data keys are not loaded")
    data = await asyncio.to_thread(keys.open_file, Path(path), EXPORT_CONTEXT)
    return web.Response(body=data, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{API}/exports", create_export)
    app.router.add_post(f"{API}/erasures", create_erasure)
    app.router.add_get(f"{API}/privacy-requests", list_requests)
    app.router.add_get(f"{API}/privacy-requests/{{id}}/archive", download_archive)
