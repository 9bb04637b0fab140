"""The compliance page: the do-not-call list, export and erasure requests, the processing log.

It shows no customer's data: the do-not-call list by its counts (the numbers
themselves leave through the API's export), requests and log entries by contact
id only. The forms and links lead to the API, which does the work and logs it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.store.tables import DoNotCall, PrivacyRequest, ProcessingLog, table
from agent.web.access import Scope, requires
from agent.web.dashboard import served
from agent.web.pages import render

RECENT = 50
# Where the API does the work (it checks the scopes and logs each use). The import
# takes a text/csv body: the page's script sends the chosen file as one.
DNC_IMPORT = "/api/v1/do-not-call/import"
DNC_EXPORT = "/api/v1/do-not-call?format=csv"
LOG_EXPORT = "/api/v1/processing-log?limit=200"


def _read(s: Session) -> dict[str, Any]:
    conn = s.connection()
    d = table(DoNotCall).c
    by_reason = [
        (str(reason), int(n))
        for reason, n in conn.execute(
            sa_select(d.reason, func.count()).group_by(d.reason).order_by(func.count().desc())
        )
    ]
    last_added = conn.execute(sa_select(func.max(d.created_at))).scalar()
    r = table(PrivacyRequest)
    requests = [
        dict(row._mapping)
        for row in conn.execute(sa_select(r).order_by(r.c.id.desc()).limit(RECENT))
    ]
    p = table(ProcessingLog)
    log = [
        dict(row._mapping)
        for row in conn.execute(sa_select(p).order_by(p.c.id.desc()).limit(RECENT))
    ]
    return {
        "dnc_total": sum(n for _, n in by_reason),
        "dnc_by_reason": by_reason,
        "dnc_last": last_added,
        "requests": requests,
        "log": log,
    }


@requires(Scope.COMPLIANCE_READ)
async def compliance_page(request: web.Request) -> web.Response:
    """GET /compliance: do-not-call, privacy requests and the latest processing-log entries."""
    figures = await served(request).db.run(_read)
    return render(
        request,
        "compliance.html",
        dnc_import_url=DNC_IMPORT,
        dnc_export_url=DNC_EXPORT,
        log_export_url=LOG_EXPORT,
        **figures,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/compliance", compliance_page)
