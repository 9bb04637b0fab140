"""Sign-in, the second factor, sessions, CSRF, lock-out and tokens, through real HTTP."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update
from yarl import URL

from agent.errors import ConfigError
from agent.privacy.crypto import DataKeys
from agent.store.db import Database
from agent.store.tables import User, WebSession, table
from agent.web import accounts, auth
from agent.web.access import Role, Scope, principal, requires
from agent.web.app import make_web_app
from tests.web.conftest import PASSWORD, Web, WebServed, web_settings


@requires(Scope.METRICS_READ)
async def probe(request: web.Request) -> web.Response:
    return web.json_response({"who": principal(request).actor})


@requires(Scope.CAMPAIGNS_WRITE)
async def probe_write(request: web.Request) -> web.Response:
    return web.json_response({"done": True})


async def undeclared(request: web.Request) -> web.Response:
    return web.json_response({"leak": True})


@pytest.fixture
async def site(tmp_path: Path, data_keys: DataKeys) -> AsyncIterator[Web]:
    """The real application plus three probe routes, on a real database."""
    db = Database(f"sqlite:///{tmp_path / 'auth.db'}")
    db.migrate()
    settings = web_settings(auth={"max_failures": 3, "attempts_per_min": 50})
    served = WebServed(db, settings, data_keys)
    app = make_web_app(served)
    for path in ("/probe", "/api/v1/probe"):
        app.router.add_get(path, probe)
        app.router.add_post(path, probe_write)
    app.router.add_get("/undeclared", undeclared)
    async with TestClient(TestServer(app)) as client:
        yield Web(client, db, served)
    db.close()


def _cookie(w: Web) -> str | None:
    for c in w.client.session.cookie_jar:
        if c.key == auth.SESSION_COOKIE:
            return c.value
    return None


async def _login(w: Web, email: str, password: str = PASSWORD, next_: str = "/probe") -> Any:
    return await w.client.post(
        "/login",
        data={"email": email, "password": password, "next": next_},
        allow_redirects=False,
    )


async def _enrol(w: Web) -> tuple[str, list[str]]:
    page = await (await w.client.get("/login/mfa")).text()
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert secret and csrf
    r = await w.client.post(
        "/login/mfa/enrol",
        data={
            "secret": secret[1],
            "code": pyotp.TOTP(secret[1]).now(),
            "csrf_token": csrf[1],
            "next": "/probe",
        },
    )
    assert r.status == 200
    codes = re.findall(r"<code>([0-9a-f]{6}-[0-9a-f]{6})</code>", await r.text())
    return secret[1], codes


async def _csrf(w: Web, path: str = "/login/mfa") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', await (await w.client.get(path)).text())
    assert found
    return found[1]


async def test_a_route_that_declares_no_rule_is_refused(site: Web) -> None:
    await site.sign_in_as(Role.OWNER)
    r = await site.client.get("/undeclared")
    assert r.status == 403
    assert "leak" not in await r.text()


async def test_without_a_session_pages_redirect_and_the_api_answers_401(site: Web) -> None:
    r = await site.client.get("/probe?x=1", allow_redirects=False)
    assert r.status == 303
    location = URL(r.headers["Location"])
    assert (location.path, location.query["next"]) == ("/login", "/probe?x=1")
    r = await site.client.get("/api/v1/probe")
    assert r.status == 401
    assert (await r.json())["error"] == "unauthorized"


async def test_an_analyst_signs_in_with_a_password_and_gets_only_their_scopes(site: Web) -> None:
    email = "ana@shop.example"
    await site.user(Role.ANALYST, email)
    r = await _login(site, email, "wrong password here")
    assert r.status == 401
    assert _cookie(site) is None
    r = await _login(site, email)
    assert r.status == 303
    assert r.headers["Location"] == "/probe"
    cookie = r.cookies[auth.SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    r = await site.client.get("/probe")
    assert await r.json() == {"who": f"user:{email}"}
    r = await site.client.post("/api/v1/probe", headers={"X-CSRF-Token": await _csrf_of(site)})
    assert r.status == 403
    assert (await r.json())["error"] == "forbidden"


async def _csrf_of(w: Web) -> str:
    key = _cookie(w)
    assert key is not None

    def find(s: Any) -> str:
        row = s.connection().execute(
            table(WebSession).select().where(table(WebSession).c.key_hash == accounts.sha256(key))
        )
        return str(row.one().csrf_token)

    return await w.db.run(find)


async def test_an_owner_must_enrol_a_second_factor_and_each_step_renews_the_session(
    site: Web,
) -> None:
    email = "boss@shop.example"
    await site.user(Role.OWNER, email)
    planted = "planted-by-an-attacker"
    site.set_cookie(planted)
    r = await _login(site, email)
    assert URL(r.headers["Location"]).path == "/login/mfa"
    after_password = _cookie(site)
    assert after_password not in (None, planted)
    # Past the password but not the second factor: nothing else opens.
    r = await site.client.get("/probe", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login/mfa")
    r = await site.client.get("/api/v1/probe")
    assert (await r.json())["error"] == "mfa_required"

    secret, codes = await _enrol(site)
    assert len(codes) == 10
    after_mfa = _cookie(site)
    assert after_mfa not in (None, after_password)
    assert (await site.client.get("/probe")).status == 200
    # The password-only key died with the step up.
    site.set_cookie(after_password or "")
    assert (await site.client.get("/api/v1/probe")).status == 401

    user = await site.db.run(lambda s: accounts.find_user(s, email))
    assert user is not None and user.mfa_enabled and user.totp_sealed
    assert secret.encode() not in user.totp_sealed  # sealed, not stored plain
    assert all(code not in str(user.recovery_hashes) for code in codes)


async def test_sign_in_with_a_code_or_a_recovery_code_that_works_once(site: Web) -> None:
    email = "admin@shop.example"
    await site.user(Role.ADMIN, email)
    await _login(site, email)
    secret, codes = await _enrol(site)
    site.sign_out()

    await _login(site, email)
    csrf = await _csrf(site)
    r = await site.client.post(
        "/login/mfa", data={"code": "000000", "csrf_token": csrf, "next": "/probe"}
    )
    assert r.status == 401
    r = await site.client.post(
        "/login/mfa",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf, "next": "/probe"},
    )
    assert r.status == 200 and (await r.json())["who"] == f"user:{email}"
    site.sign_out()

    for expected in (200, 401):
        site.sign_out()
        await _login(site, email)
        r = await site.client.post(
            "/login/mfa", data={"code": codes[0], "csrf_token": await _csrf(site), "next": "/probe"}
        )
        assert r.status == expected


async def test_wrong_passwords_lock_the_account_even_for_the_right_one(site: Web) -> None:
    email = "ana@shop.example"
    await site.user(Role.ANALYST, email)
    for _ in range(3):
        assert (await _login(site, email, "not the password at all")).status == 401
    r = await _login(site, email)
    assert r.status == 403
    assert "locked" in await r.text()

    def unlock(s: Any) -> None:
        user = accounts.find_user(s, email)
        assert user is not None
        user.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        s.add(user)

    await site.db.run(unlock)
    assert (await _login(site, email)).status == 303


async def test_sign_in_attempts_are_limited_per_address(
    tmp_path: Path, data_keys: DataKeys
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'rl.db'}")
    db.migrate()
    served = WebServed(db, web_settings(auth={"attempts_per_min": 3}), data_keys)
    async with TestClient(TestServer(make_web_app(served))) as client:
        w = Web(client, db, served)
        statuses = [(await _login(w, "nobody@shop.example")).status for _ in range(4)]
    db.close()
    assert statuses == [401, 401, 401, 429]


async def test_unsafe_requests_need_the_csrf_token_and_our_origin(site: Web) -> None:
    csrf = await site.sign_in_as(Role.ADMIN)
    assert (await site.client.post("/probe")).status == 403
    assert (await site.client.post("/probe", headers={"X-CSRF-Token": "guess"})).status == 403
    r = await site.client.post(
        "/probe", headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    )
    assert r.status == 403
    assert (await site.client.post("/probe", headers={"X-CSRF-Token": csrf})).status == 200
    r = await site.client.post("/probe", data={"csrf_token": csrf})
    assert r.status == 200
    # Signing in from another site is refused as well.
    r = await site.client.post(
        "/login",
        data={"email": "x@shop.example", "password": "y"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status == 403


async def test_idle_and_disabled_sessions_end(site: Web) -> None:
    await site.sign_in_as(Role.ANALYST)
    assert (await site.client.get("/api/v1/probe")).status == 200
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    await site.db.run(
        lambda s: s.connection().execute(update(table(WebSession)).values(seen_at=old))
    )
    assert (await site.client.get("/api/v1/probe")).status == 401

    await site.sign_in_as(Role.ANALYST)
    assert (await site.client.get("/api/v1/probe")).status == 200
    await site.db.run(lambda s: s.connection().execute(update(table(User)).values(disabled=True)))
    assert (await site.client.get("/api/v1/probe")).status == 401


async def test_tokens_carry_their_scopes_and_need_no_csrf(site: Web) -> None:
    reader = await site.token(Scope.METRICS_READ, name="reader")
    writer = await site.token(Scope.CAMPAIGNS_WRITE, name="writer")
    r = await site.client.get("/api/v1/probe", headers={"Authorization": f"Bearer {reader}"})
    assert await r.json() == {"who": "token:reader"}
    r = await site.client.post("/api/v1/probe", headers={"Authorization": f"Bearer {reader}"})
    assert r.status == 403
    r = await site.client.post("/api/v1/probe", headers={"Authorization": f"Bearer {writer}"})
    assert r.status == 200
    r = await site.client.get("/api/v1/probe", headers={"Authorization": "Bearer cl_forged"})
    assert r.status == 401
    await site.db.run(lambda s: accounts.revoke_token(s, "reader"))
    r = await site.client.get("/api/v1/probe", headers={"Authorization": f"Bearer {reader}"})
    assert r.status == 401


async def test_sign_in_never_redirects_to_another_site(site: Web) -> None:
    email = "ana@shop.example"
    await site.user(Role.ANALYST, email)
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        site.sign_out()
        r = await _login(site, email, next_=target)
        assert r.headers["Location"] == "/"


def test_passwords_are_checked_for_strength() -> None:
    with pytest.raises(accounts.AccountError, match="at least 12"):
        accounts.check_password_strength("short", "a@b.example")
    with pytest.raises(accounts.AccountError, match="email"):
        accounts.check_password_strength("mary.jones-2026!", "mary.jones@shop.example")


def test_the_rate_limiter_forgets_old_attempts() -> None:
    limiter = auth.RateLimiter(2, 60)
    assert limiter.allow("a", 0) and limiter.allow("a", 1)
    assert not limiter.allow("a", 2)
    assert limiter.allow("b", 2)
    assert limiter.allow("a", 61)


async def test_mfa_roles_may_spare_an_owner_the_second_factor_on_a_loopback_server(
    tmp_path: Path, data_keys: DataKeys
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'demo.db'}")
    db.migrate()
    served = WebServed(db, web_settings(auth={"mfa_roles": []}), data_keys)
    async with TestClient(TestServer(make_web_app(served))) as client:
        w = Web(client, db, served)
        await w.user(Role.OWNER, "demo@shop.example")
        r = await _login(w, "demo@shop.example")
        assert r.status == 303 and r.headers["Location"] == "/probe"
        # Signed in fully: the API answers without asking for a code.
        r = await w.client.get("/api/v1/campaigns")
        assert r.status == 200
    db.close()


def test_owners_and_admins_keep_the_second_factor_off_loopback() -> None:
    with pytest.raises(ConfigError, match="mfa_roles leaves out admin, owner"):
        web_settings(host="0.0.0.0", auth={"mfa_roles": ["analyst"]})
    assert web_settings(host="0.0.0.0").web.auth.mfa_roles == ("owner", "admin")
    assert web_settings(host="::1", auth={"mfa_roles": []}).web.auth.mfa_roles == ()
