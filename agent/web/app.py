"""The HTTP application: health, intake, sign-in, the API, the dashboard and the metrics.

Every route declares who may use it (``agent.web.access``); the access middleware
refuses a route that declares nothing.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from agent.campaigns.inbox import Inbox
from agent.campaigns.scheduler import Scheduler
from agent.config import Settings
from agent.privacy.crypto import DataKeys
from agent.store.db import Database
from agent.web import auth
from agent.web import intake as intake_routes
from agent.web import live as live_routes
from agent.web import metrics as metrics_routes
from agent.web.access import public
from agent.web.live import LiveCalls
from agent.web.pages import STATIC


class Served(Protocol):
    """What the web application needs of the server around it."""

    settings: Settings
    db: Database
    inbox: Inbox
    scheduler: Scheduler

    @property
    def keys(self) -> DataKeys | None: ...

    @property
    def ready(self) -> bool: ...


SERVED = web.AppKey("served", Served)


@public
async def health(request: web.Request) -> web.Response:
    """GET /healthz: the process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


@public
async def readiness(request: web.Request) -> web.Response:
    """GET /readyz: Asterisk is connected and the scheduler runs (503 otherwise)."""
    served = request.app[SERVED]
    ready = served.ready
    body = {
        "status": "ready" if ready else "not_ready",
        "active_calls": len(served.scheduler.calls),
        "free_slots": served.scheduler.free_slots,
    }
    return web.json_response(body, status=200 if ready else 503)


def make_web_app(
    served: Served, live: LiveCalls | None = None, metrics: metrics_routes.Metrics | None = None
) -> web.Application:
    """The application; ``live`` is the hub campaign calls report to (a quiet one if None).

    ``metrics`` is the server's call observer for /metrics (if None, queue figures only).
    """
    # Imported here: the dashboard's pages read SERVED from this module.
    from agent.web import dashboard, dashboard_compliance, dashboard_people, dashboard_users

    settings = served.settings.web
    app = web.Application(
        client_max_size=settings.max_body_kb * 1024,
        middlewares=[auth.security_headers, auth.access_middleware],
    )
    app[SERVED] = served
    intake_routes.add_routes(app, served.inbox)
    auth.add_routes(app, auth.AuthContext(served.db, settings, lambda: served.keys))
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", readiness)
    if metrics is None:
        metrics = metrics_routes.Metrics(served.db, (c.name for c in served.settings.campaigns))
    metrics_routes.add_routes(app, metrics, settings.metrics)
    live_routes.add_routes(app, live or LiveCalls())
    dashboard.add_routes(app)
    dashboard_people.add_routes(app)
    dashboard_compliance.add_routes(app)
    dashboard_users.add_routes(app)
    from agent.web import api  # imported here for the same reason as the dashboard

    api.add_routes(app)
    app.router.add_static("/static", STATIC, append_version=False)
    return app
