"""The dashboard's pages with customer data: calls, a call, contacts, a contact.

Every page that shows a customer's data writes one processing-log entry naming the
contacts shown, in the same transaction as the read: the log cannot miss a view,
and a view cannot happen without its entry. The reads are ``agent.store.views``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlmodel import Session

from agent.privacy import audit
from agent.store import views
from agent.store.tables import AttemptStatus
from agent.web.access import Principal, Scope, principal, requires
from agent.web.dashboard import campaign_names, int_param, served
from agent.web.pages import render

PAGE = 50


def _logged(s: Session, who: Principal, contacts: list[int], purpose: str, detail: str) -> None:
    if contacts:
        audit.record(
            s,
            actor=who.actor,
            action="access",
            contacts=contacts,
            purpose=f"dashboard: {purpose}",
            detail=detail,
        )


def _date(request: web.Request, name: str) -> dt.date | None:
    value = request.query.get(name, "")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(text="dates are written YYYY-MM-DD") from None


@dataclass(frozen=True)
class _CallQuery:
    """The calls page's filters as the query string gave them."""

    campaign: str = ""
    status: str = ""
    outcome: str = ""
    start: dt.date | None = None
    end: dt.date | None = None

    def filter(self, campaigns: frozenset[str] | None) -> views.CallFilter:
        return views.CallFilter(
            campaigns=campaigns,
            campaign=self.campaign or None,
            status=self.status or None,
            outcome=self.outcome or None,
            since=dt.datetime.combine(self.start, dt.time(), dt.UTC) if self.start else None,
            until=(
                dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), dt.UTC)
                if self.end
                else None
            ),
        )

    def query(self, **more: Any) -> str:
        values = {
            "campaign": self.campaign,
            "status": self.status,
            "outcome": self.outcome,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            **more,
        }
        return urlencode({k: v for k, v in values.items() if v})


@requires(Scope.CALLS_READ)
async def calls_page(request: web.Request) -> web.Response:
    """GET /calls: the calls, newest first, filtered, a page at a time (``before``: an id)."""
    who = principal(request)
    q = _CallQuery(
        campaign=request.query.get("campaign", "")[:63],
        status=request.query.get("status", "")[:16],
        outcome=request.query.get("outcome", "")[:40],
        start=_date(request, "from"),
        end=_date(request, "to"),
    )
    before = int_param(request, "before")
    f = q.filter(who.campaigns)

    def read(s: Session) -> tuple[list[views.CallRow], int]:
        rows = views.list_calls(s, f, before_id=before, limit=PAGE)
        total = views.count_calls(s, f)
        _logged(s, who, [r.contact_id for r in rows], "call list", f"{len(rows)} calls listed")
        return rows, total

    rows, total = await served(request).db.run(read)
    more = len(rows) == PAGE
    return render(
        request,
        "calls.html",
        rows=rows,
        total=total,
        q=q,
        campaigns=campaign_names(request),
        statuses=[s.value for s in AttemptStatus],
        next_url=f"/calls?{q.query(before=rows[-1].attempt_id)}" if more else None,
        first_url=f"/calls?{q.query()}" if before else None,
    )


@requires(Scope.CALLS_READ)
async def call_page(request: web.Request) -> web.Response:
    """GET /calls/{id}: what was said, the recording, the outcome and why the call was made."""
    who = principal(request)
    attempt_id = _path_id(request)
    keys = served(request).keys

    def read(s: Session) -> views.CallDetail | None:
        detail = views.get_call(s, attempt_id, keys)
        if detail is None or not who.sees_campaign(detail.row.campaign):
            return None
        _logged(s, who, [detail.row.contact_id], "call", f"call {attempt_id}")
        return detail

    detail = await served(request).db.run(read)
    if detail is None:
        raise web.HTTPNotFound(text="no such call")
    return render(
        request,
        "call.html",
        call=detail,
        row=detail.row,
        turns=[_timed(t) for t in detail.turns],
    )


def _timed(turn: dict[str, Any]) -> dict[str, Any]:
    timings = {k: v for k, v in turn.items() if k not in ("speaker", "text")}
    return {
        "speaker": turn.get("speaker") or "",
        "text": turn.get("text") or "",
        "timings": timings,
    }


def _path_id(request: web.Request) -> int:
    value = request.match_info["id"]
    if not value.isdigit():
        raise web.HTTPNotFound()
    return int(value)


@requires(Scope.CUSTOMERS_READ)
async def contacts_page(request: web.Request) -> web.Response:
    """GET /contacts: contacts newest first; ``q`` matches the start of a number, email or name."""
    who = principal(request)
    text = request.query.get("q", "").strip()[:100]
    before = int_param(request, "before")

    def read(s: Session) -> list[views.ContactRow]:
        rows = views.list_contacts(s, query=text or None, before_id=before, limit=PAGE)
        _logged(
            s,
            who,
            [r.contact_id for r in rows],
            "contact list",
            f"{len(rows)} contacts listed" + (" (search)" if text else ""),
        )
        return rows

    rows = await served(request).db.run(read)
    more = len(rows) == PAGE
    params = {"q": text} if text else {}
    return render(
        request,
        "contacts.html",
        rows=rows,
        q=text,
        next_url=(
            f"/contacts?{urlencode({**params, 'before': rows[-1].contact_id})}" if more else None
        ),
        first_url=f"/contacts?{urlencode(params)}" if before else None,
    )


@requires(Scope.CUSTOMERS_READ)
async def contact_page(request: web.Request) -> web.Response:
    """GET /contacts/{id}: consents, do-not-call, checkouts and calls of one contact."""
    who = principal(request)
    contact_id = _path_id(request)

    def read(s: Session) -> views.ContactDetail | None:
        detail = views.get_contact(s, contact_id)
        if detail is not None:
            _logged(s, who, [contact_id], "contact", f"contact {contact_id}")
        return detail

    detail = await served(request).db.run(read)
    if detail is None:
        raise web.HTTPNotFound(text="no such contact")
    latest: dict[str, dict[str, Any]] = {}
    for consent in detail.consents:
        latest[str(consent["channel"])] = consent
    return render(request, "contact.html", contact=detail, row=detail.row, latest=latest)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/calls", calls_page)
    app.router.add_get(r"/calls/{id}", call_page)
    app.router.add_get("/contacts", contacts_page)
    app.router.add_get(r"/contacts/{id}", contact_page)
