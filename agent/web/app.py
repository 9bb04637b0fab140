"""The HTTP application: health and readiness, intake (webhooks and API)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from agent.campaigns.inbox import Inbox
from agent.campaigns.scheduler import Scheduler
from agent.web import intake as intake_routes


class Served(Protocol):
    """What the web application needs of the server around it."""

    inbox: Inbox
    scheduler: Scheduler

    @property
    def ready(self) -> bool: ...


SERVED = web.AppKey("served", Served)


async def health(request: web.Request) -> web.Response:
    """GET /healthz: the process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


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


def make_web_app(served: Served, *, max_body_kb: int = 1024) -> web.Application:
    app = web.Application(client_max_size=max_body_kb * 1024)
    app[SERVED] = served
    intake_routes.add_routes(app, served.inbox)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", readiness)
    return app
