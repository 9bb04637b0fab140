"""``/api/v1/campaigns``: the configured campaigns with their run state; pause and resume.

A campaign's settings live in config.yaml and are shown read-only; only its paused
state is changed here. Pausing and resuming name no customer; they are still written
to the processing log, as every change an operator makes is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from sqlmodel import Session, select

from agent.privacy import audit
from agent.store import repository as repo
from agent.store.tables import CampaignState
from agent.web.access import Principal, Scope, principal, requires
from agent.web.api_common import API, not_found, reply
from agent.web.app import SERVED, Served


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


async def change_paused(
    served: Served, name: str, paused: bool, who: Principal
) -> CampaignState | None:
    """Pauses or resumes a configured campaign on behalf of ``who`` (the API and the
    dashboard both come here): written to the processing log, and a resumed campaign's
    due calls start at once rather than at the scheduler's next look."""
    now = dt.datetime.now(dt.UTC)

    def change(s: Session) -> CampaignState | None:
        repo.set_paused(s, name, paused, "by hand" if paused else None, now)
        audit.record(
            s,
            actor=who.actor,
            action="campaign_paused" if paused else "campaign_resumed",
            detail=f"campaign {name}",
            now=now,
        )
        s.flush()
        return _states(s).get(name)

    state = await served.db.run(change)
    if not paused:
        served.scheduler.wake()
    return state


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    served = request.app[SERVED]
    name = request.match_info["name"]
    found = next((c for c in served.settings.campaigns if c.name == name), None)
    if found is None:
        not_found("campaign")
    state = await change_paused(served, name, paused, principal(request))
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
