"""``/api/v1/campaigns``: the configured campaigns with their run state; pause and resume.

A campaign's settings live in config.yaml and are shown read-only; only its paused
state is changed here. Nothing here concerns a customer, so nothing is logged to the
processing log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from sqlmodel import Session, select

from agent.store import repository as repo
from agent.store.tables import CampaignState
from agent.web.access import Scope, requires
from agent.web.api_common import API, not_found, reply
from agent.web.app import SERVED


def _states(s: Session) -> dict[str, CampaignState]:
    return {row.name: row for row in s.exec(select(CampaignState)).all()}


def _campaign(settings: Any, state: CampaignState | None) -> dict[str, Any]:
    return {
        "name": settings.name,
        "kind": settings.kind,
        "enabled": settings.enabled,
        "paused": bool(state and state.paused),
        "paused_reason": state.paused_reason if state and state.paused else None,
        "settings": settings.model_dump(mode="json"),
    }


@requires(Scope.CAMPAIGNS_READ)
async def list_campaigns(request: web.Request) -> web.Response:
    """GET /api/v1/campaigns"""
    served = request.app[SERVED]
    states = await served.db.run(_states)
    items = [_campaign(c, states.get(c.name)) for c in served.settings.campaigns]
    return reply({"items": items, "next": None})


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    served = request.app[SERVED]
    name = request.match_info["name"]
    found = next((c for c in served.settings.campaigns if c.name == name), None)
    if found is None:
        not_found("campaign")

    def change(s: Session) -> CampaignState | None:
        repo.set_paused(s, name, paused, "by hand" if paused else None, dt.datetime.now(dt.UTC))
        s.flush()
        return _states(s).get(name)

    state = await served.db.run(change)
    return reply(_campaign(found, state))


@requires(Scope.CAMPAIGNS_WRITE)
async def pause(request: web.Request) -> web.Response:
    """POST /api/v1/campaigns/{name}/pause"""
    return await _set_paused(request, True)


@requires(Scope.CAMPAIGNS_WRITE)
async def resume(request: web.Request) -> web.Response:
    """POST /api/v1/campaigns/{name}/resume"""
    return await _set_paused(request, False)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/campaigns", list_campaigns)
    app.router.add_post(f"{API}/campaigns/{{name}}/pause", pause)
    app.router.add_post(f"{API}/campaigns/{{name}}/resume", resume)
