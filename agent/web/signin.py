"""The sign-in pages: password, then the TOTP second factor (or its enrolment), sign-out.

Each step issues a new session key (``agent.web.auth``), so a key planted before
sign-in is worth nothing after it.
"""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

import segno
from aiohttp import web
from sqlmodel import Session

from agent.privacy import audit
from agent.privacy.crypto import DataKeys
from agent.store.tables import User
from agent.web import accounts
from agent.web.access import PRINCIPAL, password_only, public
from agent.web.auth import AUTH, SESSION_COOKIE, deny, end_session, new_session, same_origin
from agent.web.pages import render

log = logging.getLogger(__name__)


def _safe_next(value: object) -> str:
    """Only a path on this site (never another host) may follow sign-in."""
    text = value if isinstance(value, str) else ""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


def _set_cookie(request: web.Request, response: web.StreamResponse, key: str) -> None:
    ctx = request.app[AUTH]
    response.set_cookie(
        SESSION_COOKIE,
        key,
        httponly=True,
        secure=ctx.settings.auth.secure_cookies,
        samesite="Lax",
        path="/",
        max_age=ctx.settings.auth.session_max_h * 3600,
    )


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


@public
async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_safe_next(request.query.get("next")), error=None)


@public
async def login(request: web.Request) -> web.Response:
    ctx = request.app[AUTH]
    form = await request.post()
    next_path = _safe_next(form.get("next"))
    if not same_origin(request, ctx.settings):
        return deny(request, 403, "csrf", "The request did not come from this dashboard.")
    if not ctx.limiter.allow(_client(request)):
        return render(
            request,
            "login.html",
            status=429,
            next=next_path,
            error="Too many attempts from this address. Wait a minute and try again.",
        )
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))

    def check(s: Session) -> tuple[str, str | None]:
        user = accounts.find_user(s, email)
        ok = accounts.verify_password(user, password)
        if user is None or user.disabled:
            return "bad", None
        if accounts.is_locked(user):
            return "locked", None
        if not ok:
            accounts.note_failure(user, ctx.settings.auth)
            s.add(user)
            return "bad", None
        assert user.id is not None
        needs_mfa = user.mfa_enabled or user.role in ctx.settings.auth.mfa_roles
        if not needs_mfa:
            accounts.note_success(user)
            s.add(user)
        key, _ = new_session(s, user.id, mfa_passed=not needs_mfa)
        return ("mfa" if needs_mfa else "ok"), key

    result, key = await ctx.db.run(check)
    if result == "locked":
        log.warning("sign-in refused: account locked")
        return render(
            request,
            "login.html",
            status=403,
            next=next_path,
            error="This account is locked after too many failed attempts. Try again later.",
        )
    if result == "bad" or key is None:
        return render(
            request,
            "login.html",
            status=401,
            next=next_path,
            error="Wrong email or password.",
        )
    target = next_path if result == "ok" else f"/login/mfa?next={quote(next_path, safe='')}"
    response = web.HTTPSeeOther(target)
    _set_cookie(request, response, key)
    raise response


async def _current_user(request: web.Request) -> User:
    who = request[PRINCIPAL]
    ctx = request.app[AUTH]
    user: User | None = await ctx.db.run(lambda s: s.get(User, who.id))
    if user is None:
        raise web.HTTPSeeOther("/login")
    return user


def _keys(request: web.Request) -> DataKeys:
    keys = request.app[AUTH].keys
    if keys is None:
        raise web.HTTPServiceUnavailable(text="the data keys are not loaded")
    return keys


def _qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return out.getvalue().decode()


@password_only
async def mfa_page(request: web.Request) -> web.Response:
    user = await _current_user(request)
    next_path = _safe_next(request.query.get("next"))
    if user.mfa_enabled:
        return render(request, "mfa.html", next=next_path, error=None)
    secret = accounts.new_totp_secret()
    return _enrol_page(request, user, secret, next_path, None)


def _enrol_page(
    request: web.Request, user: User, secret: str, next_path: str, error: str | None
) -> web.Response:
    issuer = request.app[AUTH].settings.auth.totp_issuer
    uri = accounts.totp_uri(secret, user.email, issuer)
    return render(
        request,
        "mfa_enrol.html",
        status=400 if error else 200,
        secret=secret,
        qr_svg=_qr_svg(uri),
        next=next_path,
        error=error,
    )


async def _promote(request: web.Request, user_id: int) -> str:
    """Ends the password-only session and starts a full one (a fresh key)."""
    ctx = request.app[AUTH]
    old = request.cookies.get(SESSION_COOKIE, "")

    def swap(s: Session) -> str:
        end_session(s, old)
        key, _ = new_session(s, user_id, mfa_passed=True)
        return key

    return await ctx.db.run(swap)


@password_only
async def mfa_submit(request: web.Request) -> web.Response:
    ctx = request.app[AUTH]
    form = await request.post()
    next_path = _safe_next(form.get("next"))
    code = str(form.get("code", ""))
    keys = _keys(request)
    who = request[PRINCIPAL]

    def check(s: Session) -> str:
        user = s.get(User, who.id)
        if user is None or not user.mfa_enabled:
            return "bad"
        if accounts.is_locked(user):
            return "locked"
        secret = accounts.totp_secret(keys, user)
        if (secret and accounts.verify_totp(secret, code)) or accounts.use_recovery_code(
            user, code
        ):
            accounts.note_success(user)
            s.add(user)
            return "ok"
        accounts.note_failure(user, ctx.settings.auth)
        s.add(user)
        return "bad"

    result = await ctx.db.run(check)
    if result != "ok":
        error = (
            "This account is locked after too many failed attempts. Try again later."
            if result == "locked"
            else "That code is not right."
        )
        return render(request, "mfa.html", status=401, next=next_path, error=error)
    key = await _promote(request, who.id)
    response = web.HTTPSeeOther(next_path)
    _set_cookie(request, response, key)
    raise response


@password_only
async def mfa_enrol(request: web.Request) -> web.Response:
    form = await request.post()
    next_path = _safe_next(form.get("next"))
    secret = str(form.get("secret", ""))
    code = str(form.get("code", ""))
    keys = _keys(request)
    user = await _current_user(request)
    if user.mfa_enabled:
        raise web.HTTPSeeOther("/login/mfa")
    if len(secret) != 32 or not accounts.verify_totp(secret, code):
        return _enrol_page(
            request,
            user,
            secret if len(secret) == 32 else accounts.new_totp_secret(),
            next_path,
            "That code is not right; check the clock of your phone.",
        )

    def enable(s: Session) -> list[str]:
        row = s.get(User, user.id)
        assert row is not None
        codes = accounts.enable_mfa(row, keys, secret)
        accounts.note_success(row)
        s.add(row)
        audit.record(s, actor=f"user:{row.email}", action="mfa_enrolled")
        return codes

    ctx = request.app[AUTH]
    codes = await ctx.db.run(enable)
    assert user.id is not None
    key = await _promote(request, user.id)
    response = render(request, "recovery_codes.html", codes=codes, next=next_path)
    _set_cookie(request, response, key)
    return response


@public
async def logout(request: web.Request) -> web.Response:
    ctx = request.app[AUTH]
    key = request.cookies.get(SESSION_COOKIE)
    if key:
        # Signing out is only ever good for the user, so it needs no CSRF token; a forged
        # sign-out can do no more than end a session.
        await ctx.db.run(lambda s: end_session(s, key))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_get("/login/mfa", mfa_page)
    app.router.add_post("/login/mfa", mfa_submit)
    app.router.add_post("/login/mfa/enrol", mfa_enrol)
    app.router.add_post("/logout", logout)
