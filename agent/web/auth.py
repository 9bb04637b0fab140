"""Sign-in and the access check on every request.

A browser signs in with a password, then (always for owners and admins) a TOTP code;
each step issues a new session key, so a key planted before sign-in is worth nothing.
The cookie holds only a random key; the database holds its hash. Every unsafe request
made with a session cookie must come from our own origin and echo the session's CSRF
token. Integrations send ``Authorization: Bearer <token>`` instead and need no cookie.
"""

from __future__ import annotations

import collections
import datetime as dt
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from aiohttp import web
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from agent.privacy.crypto import DataKeys
from agent.store.db import Database
from agent.store.tables import ApiToken, User, WebSession, table
from agent.web import accounts
from agent.web.access import (
    PASSWORD_ONLY,
    PRINCIPAL,
    PUBLIC,
    SIGNED_IN,
    Handler,
    Principal,
    Role,
    Scope,
    needs,
    principal_for_user,
)
from agent.web.pages import render
from agent.web.settings import WebSettings

log = logging.getLogger(__name__)

SESSION_COOKIE = "cartline_session"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class AuthContext:
    """What the access check needs: the database, the settings and the data keys."""

    db: Database
    settings: WebSettings
    # The server loads the data keys as it starts, after the application is made.
    get_keys: Callable[[], DataKeys | None] = lambda: None

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.auth.attempts_per_min, 60.0)

    @property
    def keys(self) -> DataKeys | None:
        return self.get_keys()


AUTH = web.AppKey("auth", AuthContext)


class RateLimiter:
    """At most ``limit`` events per key in a sliding window (sign-in attempts per address)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._seen: dict[str, collections.deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        seen = self._seen.setdefault(key, collections.deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > 10_000:  # forget idle addresses
            for k in [k for k, v in self._seen.items() if not v]:
                del self._seen[k]
        return True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- sessions --------------------------------------------------------------------------


def new_session(s: Session, user_id: int, *, mfa_passed: bool) -> tuple[str, str]:
    """Starts a session; returns its cookie key and CSRF token."""
    key = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = _now()
    s.connection().execute(
        table(WebSession).insert(),
        {
            "key_hash": accounts.sha256(key),
            "user_id": user_id,
            "mfa_passed": mfa_passed,
            "csrf_token": csrf,
            "created_at": now,
            "seen_at": now,
        },
    )
    return key, csrf


def end_session(s: Session, key: str) -> None:
    s.connection().execute(
        delete(table(WebSession)).where(table(WebSession).c.key_hash == accounts.sha256(key))
    )


def end_sessions_of(s: Session, user_id: int) -> None:
    s.connection().execute(delete(table(WebSession)).where(table(WebSession).c.user_id == user_id))


def _load_session(s: Session, key: str, settings: WebSettings) -> tuple[WebSession, User] | None:
    now = _now()
    row = s.exec(
        select(WebSession, User)
        .join(User, col(User.id) == col(WebSession.user_id))
        .where(col(WebSession.key_hash) == accounts.sha256(key))
    ).first()
    if row is None:
        return None
    session, user = row
    idle = dt.timedelta(minutes=settings.auth.session_idle_min)
    longest = dt.timedelta(hours=settings.auth.session_max_h)
    if user.disabled or now - session.seen_at > idle or now - session.created_at > longest:
        s.delete(session)
        return None
    if now - session.seen_at > dt.timedelta(seconds=60):
        s.connection().execute(
            update(table(WebSession))
            .where(table(WebSession).c.id == session.id)
            .values(seen_at=now)
        )
    return session, user


def _load_token(s: Session, token: str) -> ApiToken | None:
    row = accounts.find_token(s, token)
    if row is not None and (
        row.last_used_at is None or _now() - row.last_used_at > dt.timedelta(seconds=60)
    ):
        s.connection().execute(
            update(table(ApiToken))
            .where(table(ApiToken).c.id == row.id)
            .values(last_used_at=_now())
        )
    return row


@dataclass(frozen=True)
class _Resolved:
    principal: Principal | None
    mfa_pending: bool = False


def _resolve(s: Session, request: web.Request, settings: WebSettings) -> _Resolved:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = _load_token(s, header[7:].strip())
        if token is None or token.id is None:
            return _Resolved(None)
        scopes = frozenset(Scope(v) for v in token.scopes if v in Scope._value2member_map_)
        return _Resolved(Principal(kind="token", id=token.id, name=token.name, scopes=scopes))
    key = request.cookies.get(SESSION_COOKIE)
    if not key:
        return _Resolved(None)
    found = _load_session(s, key, settings)
    if found is None:
        return _Resolved(None)
    session, user = found
    assert user.id is not None
    who = principal_for_user(
        user.id, user.email, Role(user.role), user.campaigns, session.csrf_token
    )
    return _Resolved(who, mfa_pending=not session.mfa_passed)


# -- the check on every request ----------------------------------------------------------


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def deny(request: web.Request, status: int, code: str, message: str) -> web.Response:
    if wants_json(request):
        return web.json_response({"error": code, "message": message}, status=status)
    return render(request, "error.html", status=status, title=message, message=code)


def same_origin(request: web.Request, settings: WebSettings) -> bool:
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        # Browsers send Origin on every cross-site POST; its absence means a same-site
        # navigation or a non-browser client (which the CSRF token still has to satisfy).
        return True
    got = urlsplit(origin)
    if settings.public_url is not None:
        want = urlsplit(str(settings.public_url))
        return (got.scheme, got.netloc) == (want.scheme, want.netloc)
    return got.netloc == request.host


async def _csrf_token_sent(request: web.Request) -> str:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get("csrf_token", "")
        sent = value if isinstance(value, str) else ""
    return sent


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404 and 405 are answered as they are
    if route.resource is not None and route.resource.canonical.startswith("/static"):
        return await handler(request)
    need = needs(route.handler)
    if need is None:
        log.error("route %s declares no access rule; refused", route.resource)
        return deny(request, 403, "forbidden", "This page is not open to anyone.")
    if need == PUBLIC:
        return await handler(request)
    ctx = request.app[AUTH]
    resolved = await ctx.db.run(lambda s: _resolve(s, request, ctx.settings))
    who = resolved.principal
    if who is None:
        if wants_json(request):
            return deny(request, 401, "unauthorized", "Sign in or send an API token.")
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
    request[PRINCIPAL] = who
    if resolved.mfa_pending and need != PASSWORD_ONLY:
        if wants_json(request):
            return deny(request, 401, "mfa_required", "Finish signing in with your second factor.")
        raise web.HTTPSeeOther(f"/login/mfa?next={quote(request.path_qs, safe='')}")
    if who.kind == "user" and request.method in _UNSAFE:
        sent = await _csrf_token_sent(request)
        if not same_origin(request, ctx.settings) or not hmac.compare_digest(
            sent.encode(), (who.csrf_token or "").encode()
        ):
            return deny(request, 403, "csrf", "The request did not come from this dashboard.")
    if isinstance(need, frozenset) and not need <= who.scopes:
        missing = ", ".join(sorted(need - who.scopes))
        return deny(request, 403, "forbidden", f"Not allowed (needs {missing}).")
    assert need in (SIGNED_IN, PASSWORD_ONLY) or isinstance(need, frozenset)
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        h.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
    return response


def add_routes(app: web.Application, ctx: AuthContext) -> None:
    """The access context, and the sign-in pages (``agent.web.signin``)."""
    from agent.web import signin  # it builds on this module's sessions and checks

    app[AUTH] = ctx
    signin.add_routes(app)
