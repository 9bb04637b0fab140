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
from agent.web.access import public
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


def make_web_app(served: Served) -> web.Application:
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
    app.router.add_static("/static", STATIC, append_version=False)
    return app
