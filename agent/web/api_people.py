"""``/api/v1/contacts`` and ``/api/v1/checkouts``: the customers, what they consented to,
what they left in their carts and the calls they had. Every answer that names anyone
writes one processing-log entry."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web
from sqlmodel import Session

from agent.store import views
from agent.web.access import Scope, principal, requires
from agent.web.api_calls import call_json
from agent.web.api_common import (
    API,
    bool_param,
    int_param,
    limit_param,
    not_found,
    page,
    path_id,
    read_logged,
    reply,
    text_param,
)


@requires(Scope.CUSTOMERS_READ)
async def list_contacts(request: web.Request) -> web.Response:
    """GET /api/v1/contacts"""
    query = text_param(request, "q", 320)
    before = int_param(request, "before")
    limit = limit_param(request)
    rows = await read_logged(
        request,
        lambda s: views.list_contacts(s, query=query, before_id=before, limit=limit + 1),
        lambda rows: [r.contact_id for r in rows[:limit]],
        "contacts",
    )
    return reply(page([asdict(r) for r in rows], limit, "contact_id"))


@requires(Scope.CUSTOMERS_READ)
async def get_contact(request: web.Request) -> web.Response:
    """GET /api/v1/contacts/{id}: the contact, consents, checkouts and calls they may see."""
    contact_id = path_id(request)
    detail = await read_logged(
        request,
        lambda s: views.get_contact(s, contact_id),
        lambda d: [d.row.contact_id] if d else [],
        "contact",
    )
    if detail is None:
        not_found("contact")
    who = principal(request)
    return reply(
        {
            **asdict(detail.row),
            "consents": detail.consents,
            "checkouts": detail.checkouts,
            # The latest 200, of the campaigns this principal may see.
            "recent_calls": [call_json(c) for c in detail.calls if who.sees_campaign(c.campaign)],
        }
    )


@requires(Scope.CUSTOMERS_READ)
async def get_consents(request: web.Request) -> web.Response:
    """GET /api/v1/contacts/{id}/consents"""
    contact_id = path_id(request)

    def read(s: Session) -> list[dict[str, Any]] | None:
        if views.get_contact_row(s, contact_id) is None:
            return None
        return views.contact_consents(s, contact_id)

    consents = await read_logged(
        request, read, lambda c: [contact_id] if c is not None else [], "consents"
    )
    if consents is None:
        not_found("contact")
    return reply({"contact_id": contact_id, "items": consents})


@requires(Scope.CUSTOMERS_READ)
async def list_checkouts(request: web.Request) -> web.Response:
    """GET /api/v1/checkouts"""
    campaign = text_param(request, "campaign", 63)
    completed = bool_param(request, "completed")
    before = int_param(request, "before")
    limit = limit_param(request)
    rows = await read_logged(
        request,
        lambda s: views.list_checkouts(
            s, campaign=campaign, completed=completed, before_id=before, limit=limit + 1
        ),
        lambda rows: [r.contact_id for r in rows[:limit]],
        "checkouts",
    )
    return reply(page([asdict(r) for r in rows], limit, "checkout_id"))


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/contacts", list_contacts)
    app.router.add_get(f"{API}/contacts/{{id}}", get_contact)
    app.router.add_get(f"{API}/contacts/{{id}}/consents", get_consents)
    app.router.add_get(f"{API}/checkouts", list_checkouts)
