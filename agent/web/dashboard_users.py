"""The users page: people and API tokens, and the changes an owner or admin may make.

Changes follow :func:`agent.web.accounts.may_manage` (admins never touch an owner's
account nor make one), end the sessions they affect, and go to the processing log
as the command line's do. A new token is shown once, on the page that made it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from sqlmodel import Session

from agent.privacy import audit
from agent.store.tables import ApiToken, User
from agent.web import accounts, auth
from agent.web.access import Principal, Role, Scope, principal, requires
from agent.web.dashboard import served
from agent.web.pages import render

T = TypeVar("T")


def _role(who: Principal) -> Role:
    # Changes to accounts are made by people, who answer for them; tokens may only read.
    if who.role is None:
        raise web.HTTPForbidden(text="accounts are changed by a signed-in person")
    return who.role


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    issued: accounts.IssuedToken | None = None,
    password: str | None = None,
) -> web.Response:
    who = principal(request)

    def read(s: Session) -> tuple[list[User], list[ApiToken]]:
        return accounts.list_users(s), accounts.list_tokens(s)

    users, tokens = await served(request).db.run(read)
    role = who.role
    return render(
        request,
        "users.html",
        status=status,
        users=[
            {
                "user": u,
                "manageable": role is not None and accounts.may_manage(role, Role(u.role)),
                "locked": accounts.is_locked(u),
                "me": u.id == who.id and who.kind == "user",
            }
            for u in users
        ],
        tokens=tokens,
        roles=[r.value for r in Role if role is not None and accounts.may_manage(role, r)],
        scopes=[sc.value for sc in Scope if who.can(sc)],
        campaigns=[c.name for c in served(request).settings.campaigns],
        error=error,
        notice=notice,
        issued=issued,
        password=password,
    )


@requires(Scope.USERS_READ)
async def users_page(request: web.Request) -> web.Response:
    """GET /users: the people who sign in and the API tokens."""
    done = request.query.get("done", "")
    return await _page(request, notice=_DONE.get(done))


_DONE = {
    "reset_mfa": "Second factor removed; they set it up again at their next sign-in.",
    "disable": "Disabled; their sessions have ended.",
    "enable": "Enabled.",
    "revoked": "Token revoked.",
}


async def _attempt(request: web.Request, fn: Callable[[Session], T]) -> T | web.Response:
    """Runs a change; a refused one answers with the page and the reason."""
    try:
        return await served(request).db.run(fn)
    except accounts.AccountError as exc:
        return await _page(request, status=400, error=str(exc))
    except _Refused as exc:
        return await _page(request, status=403, error=str(exc))


class _Refused(Exception):
    """A change this principal may not make; the message says why."""


@requires(Scope.USERS_WRITE)
async def add_user(request: web.Request) -> web.Response:
    """POST /users: adds a person with a first password, shown once to pass on to them."""
    who = principal(request)
    actor_role = _role(who)
    form = await request.post()
    try:
        role = Role(str(form.get("role", "")))
    except ValueError:
        return await _page(request, status=400, error="choose a role")
    known = {c.name for c in served(request).settings.campaigns}
    chosen = [str(v) for v in form.getall("campaigns", []) if str(v) in known]
    email = str(form.get("email", ""))
    name = str(form.get("name", "")).strip()[:200]
    password = secrets.token_urlsafe(15)

    def add(s: Session) -> None:
        if not accounts.may_manage(actor_role, role):
            raise _Refused("your role may not add this role")
        accounts.add_user(
            s, email, password, role, name=name, campaigns=chosen if role is Role.AGENT else []
        )
        audit.record(s, actor=who.actor, action="user_added", detail=f"role={role.value}")

    outcome = await _attempt(request, add)
    if isinstance(outcome, web.Response):
        return outcome
    return await _page(
        request,
        notice=f"Added {email.strip().lower()} as {role.value}.",
        password=password,
    )


def _user_action(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        who = principal(request)
        actor_role = _role(who)
        user_id = request.match_info["id"]
        if not user_id.isdigit():
            raise web.HTTPNotFound()

        def change(s: Session) -> None:
            user = s.get(User, int(user_id))
            if user is None:
                raise web.HTTPNotFound(text="no such user")
            if not accounts.may_manage(actor_role, Role(user.role)):
                raise _Refused("your role may not change this account")
            if user.id == who.id and who.kind == "user" and action == "disable":
                raise _Refused("you cannot disable your own account")
            if action == "reset_mfa":
                accounts.reset_mfa(user)
                s.add(user)
            else:
                accounts.set_disabled(s, user, action == "disable")
            if action != "enable":
                auth.end_sessions_of(s, int(user_id))
            audit.record(s, actor=who.actor, action=f"user_{action}", detail=f"user {user_id}")

        outcome = await _attempt(request, change)
        if isinstance(outcome, web.Response):
            return outcome
        raise web.HTTPSeeOther(f"/users?done={action}")

    return handle


reset_mfa = requires(Scope.USERS_WRITE)(_user_action("reset_mfa"))
disable_user = requires(Scope.USERS_WRITE)(_user_action("disable"))
enable_user = requires(Scope.USERS_WRITE)(_user_action("enable"))


@requires(Scope.USERS_WRITE)
async def add_token(request: web.Request) -> web.Response:
    """POST /tokens: a new API token with scopes this person holds; shown once."""
    who = principal(request)
    _role(who)
    form = await request.post()
    name = str(form.get("name", ""))
    wanted = [str(v) for v in form.getall("scopes", [])]

    def add(s: Session) -> accounts.IssuedToken:
        scopes = accounts.parse_scopes(wanted)
        if any(not who.can(sc) for sc in scopes):
            raise _Refused("a token cannot have a scope you do not have")
        issued = accounts.add_token(s, name, scopes, created_by=who.actor)
        audit.record(s, actor=who.actor, action="token_added", detail=issued.name)
        return issued

    outcome = await _attempt(request, add)
    if isinstance(outcome, web.Response):
        return outcome
    return await _page(request, notice=f"Token {outcome.name} made.", issued=outcome)


@requires(Scope.USERS_WRITE)
async def revoke_token(request: web.Request) -> web.Response:
    """POST /tokens/revoke: the named token stops working at once."""
    who = principal(request)
    _role(who)
    form = await request.post()
    name = str(form.get("name", ""))

    def revoke(s: Session) -> None:
        accounts.revoke_token(s, name)
        audit.record(s, actor=who.actor, action="token_revoked", detail=name)

    outcome = await _attempt(request, revoke)
    if isinstance(outcome, web.Response):
        return outcome
    raise web.HTTPSeeOther("/users?done=revoked")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/users", users_page)
    app.router.add_post("/users", add_user)
    app.router.add_post(r"/users/{id}/reset-mfa", reset_mfa)
    app.router.add_post(r"/users/{id}/disable", disable_user)
    app.router.add_post(r"/users/{id}/enable", enable_user)
    app.router.add_post("/tokens", add_token)
    app.router.add_post("/tokens/revoke", revoke_token)
