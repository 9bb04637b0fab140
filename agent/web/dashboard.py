"""The dashboard: server-rendered pages for people signed in with a role.

This module holds the pages without customer data (the overview, the campaigns and
the live page's frame) and the pieces every page shares; the calls and contacts
live in ``dashboard_people``, compliance and accounts in ``dashboard_admin``. Each
route declares its scope; the agent role sees only its own campaigns.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from agent.store.tables import CallAttempt, CallJob, CampaignState, JobState, table
from agent.web import dashboard_chart, reports
from agent.web.access import Scope, principal, requires
from agent.web.api_campaigns import change_paused
from agent.web.app import SERVED, Served
from agent.web.pages import environment, render

MAX_DAYS = 366


def _money(amount: Decimal | None, currency: str = "") -> str:
    if amount is None:
        return ""
    return f"{amount:,.2f} {currency}".strip()


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


_env = environment()
_env.filters.setdefault("money", _money)
_env.filters.setdefault("percent", _percent)
_env.filters.setdefault("when", _when)


def served(request: web.Request) -> Served:
    return request.app[SERVED]


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def period_from(request: web.Request, default_days: int = 30) -> reports.Period:
    """The ``from`` and ``to`` dates of the query (both included), or the last 30 days."""
    end = today()
    start = end - dt.timedelta(days=default_days - 1)
    try:
        if request.query.get("from"):
            start = dt.date.fromisoformat(request.query["from"])
        if request.query.get("to"):
            end = dt.date.fromisoformat(request.query["to"])
    except ValueError:
        raise web.HTTPBadRequest(text="dates are written YYYY-MM-DD") from None
    if end < start:
        start, end = end, start
    start = max(start, end - dt.timedelta(days=MAX_DAYS - 1))
    return reports.Period(start, end + dt.timedelta(days=1))


def campaign_names(request: web.Request) -> list[str]:
    """The configured campaigns this principal may see."""
    who = principal(request)
    return [c.name for c in served(request).settings.campaigns if who.sees_campaign(c.name)]


def int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name, "")
    if not value:
        return None
    if not value.isdigit():
        raise web.HTTPBadRequest(text=f"{name} must be a number")
    return int(value)


# -- the overview ----------------------------------------------------------------------


@requires(Scope.METRICS_READ)
async def overview(request: web.Request) -> web.Response:
    """GET /: revenue recovered, recovery rate, outcomes, the funnel, by day and by campaign."""
    period = period_from(request)
    who = principal(request)
    names = [c.name for c in served(request).settings.campaigns]
    figures = await served(request).db.run(
        lambda s: reports.overview(s, period, names, who.campaigns)
    )
    return render(
        request,
        "overview.html",
        figures=figures,
        period=period,
        last_day=period.end - dt.timedelta(days=1),
        chart=dashboard_chart.daily_chart(figures.days),
        funnel=dashboard_chart.funnel_bars(figures.funnel.steps()),
    )


# -- campaigns ---------------------------------------------------------------------------


def _campaign_rows(s: Session, names: list[str]) -> dict[str, dict[str, Any]]:
    states = {st.name: st for st in s.exec(select(CampaignState)).all()}
    # Grouped by campaign and picked here, not filtered by campaign in SQL: the state and
    # time indexes narrow these best, and SQLite would otherwise take the campaign index.
    j = table(CallJob).c
    waiting: dict[str, int] = {
        str(c): int(n)
        for c, n in s.connection().execute(
            sa_select(j.campaign, func.count())
            .where(j.state == JobState.PENDING.value)
            .group_by(j.campaign)
        )
    }
    a = table(CallAttempt).c
    since = dt.datetime.combine(today(), dt.time(), dt.UTC)
    calls_today: dict[str, int] = {
        str(c): int(n)
        for c, n in s.connection().execute(
            sa_select(a.campaign, func.count()).where(a.started_at >= since).group_by(a.campaign)
        )
    }
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        state = states.get(name)
        rows[name] = {
            "paused": bool(state and state.paused),
            "paused_reason": state.paused_reason if state else None,
            "failures": state.consecutive_failures if state else 0,
            "updated_at": state.updated_at if state else None,
            "waiting": int(waiting.get(name, 0)),
            "calls_today": int(calls_today.get(name, 0)),
        }
    return rows


def _settings_rows(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A campaign's settings flattened to (dotted name, value) for a read-only table."""
    rows: list[tuple[str, str]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            rows += _settings_rows(item, f"{name}.")
        elif isinstance(item, list | tuple):
            rows.append((name, ", ".join(str(v) for v in item) or "–"))
        else:
            rows.append((name, "–" if item is None else str(item)))
    return rows


@requires(Scope.CAMPAIGNS_READ)
async def campaigns_page(request: web.Request) -> web.Response:
    """GET /campaigns: each campaign's state, its queue, and its settings (read-only)."""
    names = campaign_names(request)
    rows = await served(request).db.run(lambda s: _campaign_rows(s, names))
    configured = {c.name: c for c in served(request).settings.campaigns}
    campaigns = [
        {
            "name": n,
            "enabled": configured[n].enabled,
            "kind": configured[n].kind,
            "settings": _settings_rows(configured[n].model_dump(mode="json")),
            **rows[n],
        }
        for n in names
    ]
    return render(request, "campaigns.html", campaigns=campaigns, notice=request.query.get("done"))


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    name = request.match_info["name"]
    if name not in campaign_names(request):
        raise web.HTTPNotFound(text="no such campaign")
    await change_paused(served(request), name, paused, principal(request))
    raise web.HTTPSeeOther(f"/campaigns?done={'paused' if paused else 'resumed'}-{name}")


@requires(Scope.CAMPAIGNS_WRITE)
async def pause(request: web.Request) -> web.Response:
    """POST /campaigns/{name}/pause: no new calls until resumed (calls under way finish)."""
    return await _set_paused(request, True)


@requires(Scope.CAMPAIGNS_WRITE)
async def resume(request: web.Request) -> web.Response:
    """POST /campaigns/{name}/resume."""
    return await _set_paused(request, False)


# -- live --------------------------------------------------------------------------------


@requires(Scope.CALLS_READ)
async def live_page(request: web.Request) -> web.Response:
    """GET /live: the calls under way; the page's script follows ``/live/events``."""
    return render(request, "live.html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", overview)
    app.router.add_get("/campaigns", campaigns_page)
    app.router.add_post("/campaigns/{name}/pause", pause)
    app.router.add_post("/campaigns/{name}/resume", resume)
    app.router.add_get("/live", live_page)
