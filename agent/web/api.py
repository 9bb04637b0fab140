"""The JSON API, ``/api/v1``: campaigns, calls, customers, do-not-call, privacy requests
and the processing log, for integrations (bearer tokens) and the dashboard (its session).

Each route declares its scope; ``/api/v1/openapi.json`` describes them all
(``agent.web.openapi``). Errors are ``{"error": code, "message": text}``.
"""

from __future__ import annotations

from aiohttp import web

from agent.web import api_calls, api_campaigns, api_compliance, api_people, api_privacy
from agent.web.access import public
from agent.web.api_common import API
from agent.web.openapi import document


@public
async def openapi_document(request: web.Request) -> web.Response:
    """GET /api/v1/openapi.json: the OpenAPI 3.1 description of this API."""
    return web.json_response(document())


def add_routes(app: web.Application) -> None:
    """Registers every /api/v1 route on ``app``."""
    app.router.add_get(f"{API}/openapi.json", openapi_document)
    api_campaigns.add_routes(app)
    api_calls.add_routes(app)
    api_people.add_routes(app)
    api_compliance.add_routes(app)
    api_privacy.add_routes(app)
