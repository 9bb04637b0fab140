"""Every route, every role: the expected answer, written down here by hand.

The table below is the access policy as a merchant would state it, independent of the
decorators on the handlers; a route missing from it fails the test, so a new route
cannot ship without someone deciding who may use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.privacy.crypto import DataKeys
from agent.store.db import Database
from agent.web.access import Role, Scope
from agent.web.app import make_web_app
from tests.store.seed import add_call, add_contact
from tests.web.conftest import Web, WebServed, web_settings

ALL = frozenset(Role)
ADMINS = frozenset({Role.OWNER, Role.ADMIN})
FIGURES = ALL  # aggregates: every role, no customer data
CALLS = frozenset({Role.OWNER, Role.ADMIN, Role.AGENT})
NOBODY_SIGNED_IN = "public"

# (method, route) -> who may use it. "public" routes are open to anyone.
POLICY: dict[tuple[str, str], frozenset[Role] | str] = {
    ("GET", "/healthz"): NOBODY_SIGNED_IN,
    ("GET", "/readyz"): NOBODY_SIGNED_IN,
    ("GET", "/metrics"): NOBODY_SIGNED_IN,  # loopback only by default: checked in its own tests
    ("POST", "/webhooks/{source}"): NOBODY_SIGNED_IN,  # signed by the store
    ("POST", "/api/v1/events"): NOBODY_SIGNED_IN,  # the intake token
    ("GET", "/api/v1/openapi.json"): NOBODY_SIGNED_IN,
    ("GET", "/login"): NOBODY_SIGNED_IN,
    ("POST", "/login"): NOBODY_SIGNED_IN,
    ("POST", "/logout"): NOBODY_SIGNED_IN,
    ("GET", "/login/mfa"): "password",
    ("POST", "/login/mfa"): "password",
    ("POST", "/login/mfa/enrol"): "password",
    # The dashboard.
    ("GET", "/"): FIGURES,
    ("GET", "/campaigns"): ALL,
    ("POST", "/campaigns/{name}/pause"): ADMINS,
    ("POST", "/campaigns/{name}/resume"): ADMINS,
    ("GET", "/live"): CALLS,
    ("GET", "/live/events"): CALLS,
    ("GET", "/calls"): CALLS,
    ("GET", "/calls/{id}"): CALLS,
    ("GET", "/contacts"): ADMINS,
    ("GET", "/contacts/{id}"): ADMINS,
    ("GET", "/compliance"): ADMINS,
    ("GET", "/users"): ADMINS,
    ("POST", "/users"): ADMINS,
    ("POST", "/users/{id}/reset-mfa"): ADMINS,
    ("POST", "/users/{id}/disable"): ADMINS,
    ("POST", "/users/{id}/enable"): ADMINS,
    ("POST", "/tokens"): ADMINS,
    ("POST", "/tokens/revoke"): ADMINS,
    # The API.
    ("GET", "/api/v1/campaigns"): ALL,
    ("POST", "/api/v1/campaigns/{name}/pause"): ADMINS,
    ("POST", "/api/v1/campaigns/{name}/resume"): ADMINS,
    ("GET", "/api/v1/calls"): CALLS,
    ("GET", "/api/v1/calls/{id}"): CALLS,
    ("GET", "/api/v1/calls/{id}/transcript"): CALLS,
    ("GET", "/api/v1/calls/{id}/recording"): CALLS,
    ("GET", "/api/v1/outcomes"): FIGURES,
    ("GET", "/api/v1/contacts"): ADMINS,
    ("GET", "/api/v1/contacts/{id}"): ADMINS,
    ("GET", "/api/v1/contacts/{id}/consents"): ADMINS,
    ("GET", "/api/v1/checkouts"): ADMINS,
    ("GET", "/api/v1/do-not-call"): ADMINS,
    ("POST", "/api/v1/do-not-call"): ADMINS,
    ("POST", "/api/v1/do-not-call/import"): ADMINS,
    ("GET", "/api/v1/processing-log"): ADMINS,
    ("POST", "/api/v1/exports"): ADMINS,
    ("POST", "/api/v1/erasures"): ADMINS,
    ("GET", "/api/v1/privacy-requests"): ADMINS,
    ("GET", "/api/v1/privacy-requests/{id}/archive"): ADMINS,
}

# Which scope a token needs for each signed-in route (tokens have no role).
TOKEN_SCOPE: dict[tuple[str, str], Scope] = {
    ("GET", "/api/v1/campaigns"): Scope.CAMPAIGNS_READ,
    ("POST", "/api/v1/campaigns/{name}/pause"): Scope.CAMPAIGNS_WRITE,
    ("GET", "/api/v1/calls/{id}"): Scope.CALLS_READ,
    ("GET", "/api/v1/calls/{id}/recording"): Scope.RECORDINGS_READ,
    ("GET", "/api/v1/outcomes"): Scope.METRICS_READ,
    ("GET", "/api/v1/contacts"): Scope.CUSTOMERS_READ,
    ("POST", "/api/v1/erasures"): Scope.COMPLIANCE_WRITE,
    ("GET", "/api/v1/processing-log"): Scope.COMPLIANCE_READ,
}


@dataclass
class Site:
    web: Web
    call_id: int
    other_call_id: int
    contact_id: int


@pytest.fixture
async def site(tmp_path: Path, data_keys: DataKeys) -> AsyncIterator[Site]:
    db = Database(f"sqlite:///{tmp_path / 'matrix.db'}")
    db.migrate()
    mine = await db.run(lambda s: add_call(s, campaign="recovery", keys=data_keys))
    other = await db.run(
        lambda s: add_call(
            s,
            contact_id=add_contact(s, "+13125550177", "kim@example.com", "Kim"),
            campaign="winback",
            keys=data_keys,
        )
    )
    served = WebServed(db, web_settings(), data_keys)
    async with TestClient(TestServer(make_web_app(served))) as client:
        yield Site(Web(client, db, served), mine.attempt_id, other.attempt_id, mine.contact_id)
    db.close()


def _routes(site: Site) -> set[tuple[str, str]]:
    found = set()
    for route in site.web.client.app.router.routes():
        resource = route.resource
        if route.method == "HEAD" or resource is None or resource.canonical == "/static":
            continue
        found.add((route.method, resource.canonical))
    return found


def _path(site: Site, template: str) -> str:
    return (
        template.replace("{source}", "shopify")
        .replace("{name}", "recovery")
        .replace("/users/{id}", "/users/999999")  # nobody: the check comes before the lookup
        .replace("{id}", str(site.call_id if "/calls/" in template else site.contact_id))
    )


async def _status(site: Site, method: str, path: str, headers: dict[str, str]) -> int:
    client = site.web.client
    if path == "/live/events":
        # An event stream never ends by itself: the answer's status is enough.
        async with client.request(method, path, headers=headers, allow_redirects=False) as response:
            return response.status
    response = await client.request(
        method, path, headers=headers, allow_redirects=False, data=b"" if method == "POST" else None
    )
    await response.read()
    return response.status


def test_every_route_is_in_the_policy(site: Site) -> None:
    routes = _routes(site)
    assert routes - POLICY.keys() == set(), "routes with no decision on who may use them"
    assert POLICY.keys() - routes == set(), "the policy names routes that do not exist"


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_gets_exactly_its_routes(site: Site, role: Role) -> None:
    csrf = await site.web.sign_in_as(role, campaigns=["recovery"] if role is Role.AGENT else None)
    headers = {"X-CSRF-Token": csrf}
    wrong: list[str] = []
    for (method, template), allowed in sorted(POLICY.items()):
        if allowed in (NOBODY_SIGNED_IN, "password") or template in ("/logout",):
            continue
        assert isinstance(allowed, frozenset)
        status = await asyncio.wait_for(
            _status(site, method, _path(site, template), headers), timeout=10
        )
        if role in allowed and status in (401, 403):
            wrong.append(f"{method} {template}: {status}, expected access")
        if role not in allowed and status != 403:
            wrong.append(f"{method} {template}: {status}, expected 403")
    assert wrong == []


async def test_signed_out_gets_the_sign_in_page_or_401(site: Site) -> None:
    wrong = []
    for (method, template), allowed in sorted(POLICY.items()):
        if allowed == NOBODY_SIGNED_IN:
            continue
        path = _path(site, template)
        status = await _status(site, method, path, {})
        expected = 401 if path.startswith("/api/") else 303
        if status != expected:
            wrong.append(f"{method} {template}: {status}, expected {expected}")
    assert wrong == []


async def test_an_agent_sees_no_call_of_another_campaign(site: Site) -> None:
    await site.web.sign_in_as(Role.AGENT, campaigns=["recovery"])
    client = site.web.client
    for path in (
        f"/calls/{site.other_call_id}",
        f"/api/v1/calls/{site.other_call_id}",
        f"/api/v1/calls/{site.other_call_id}/transcript",
        f"/api/v1/calls/{site.other_call_id}/recording",
    ):
        assert (await client.get(path)).status == 404, path
    listed = await (await client.get("/api/v1/calls")).json()
    assert [c["attempt_id"] for c in listed["items"]] == [site.call_id]


@pytest.mark.parametrize(("route", "scope"), sorted(TOKEN_SCOPE.items()))
async def test_tokens_need_the_route_scope(
    site: Site, route: tuple[str, str], scope: Scope
) -> None:
    method, template = route
    path = _path(site, template)
    right = await site.web.token(scope)
    others = [s for s in Scope if s is not scope]
    wrong = await site.web.token(*others)
    ok = await _status(site, method, path, {"Authorization": f"Bearer {right}"})
    refused = await _status(site, method, path, {"Authorization": f"Bearer {wrong}"})
    assert ok not in (401, 403)
    assert refused == 403
