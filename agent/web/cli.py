"""``cartline users`` and ``cartline tokens``: the dashboard's people and the API's tokens."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel import Session

from agent.config import load_settings
from agent.errors import CartlineError
from agent.privacy import audit
from agent.store.db import Database
from agent.web import accounts, auth
from agent.web.access import Role

T = TypeVar("T")
PASSWORD_ENV = "CARTLINE_PASSWORD"


def add_commands(sub: Any) -> None:
    u = sub.add_parser("users", help="people who sign in to the dashboard")
    u.add_argument("action", choices=["add", "list", "reset-mfa", "password", "disable", "enable"])
    u.add_argument("email", nargs="?", help="the person's email address")
    u.add_argument("--role", choices=[r.value for r in Role], help="add: what they may do")
    u.add_argument("--name", default="", help="add: the name shown on the dashboard")
    u.add_argument(
        "--campaign",
        action="append",
        default=[],
        help="add, role agent: a campaign whose calls they may see (repeat for several)",
    )
    u.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from standard input (else ${PASSWORD_ENV}, else a prompt)",
    )
    u.set_defaults(func=cmd_users)

    t = sub.add_parser("tokens", help="API tokens for integrations")
    t.add_argument("action", choices=["add", "list", "revoke"])
    t.add_argument("name", nargs="?", help="the token's name (for example the CRM's)")
    t.add_argument(
        "--scope",
        action="append",
        default=[],
        help="add: a scope such as calls:read (repeat for several)",
    )
    t.set_defaults(func=cmd_tokens)


def _with_db(args: argparse.Namespace, fn: Callable[[Session], T]) -> T:
    settings = load_settings(args.config)
    db = Database(settings.database_url)
    try:
        db.migrate()
        return db.call(fn)
    finally:
        db.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise CartlineError(f"no password given: use --password-stdin or ${PASSWORD_ENV}")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CartlineError("the two passwords differ")
    return first


def _user(s: Session, email: str | None) -> Any:
    if not email:
        raise CartlineError("name the user by email")
    user = accounts.find_user(s, email)
    if user is None:
        raise CartlineError("no user with this email")
    return user


def cmd_users(args: argparse.Namespace) -> int:
    actor = audit.cli_actor()
    if args.action == "list":
        users = _with_db(args, accounts.list_users)
        for u in users:
            state = "disabled" if u.disabled else ("mfa" if u.mfa_enabled else "no-mfa")
            campaigns = ",".join(u.campaigns) if u.campaigns else "-"
            print(f"{u.email}\t{u.role}\t{state}\t{campaigns}")
        return 0
    if args.action == "add":
        if not args.email or not args.role:
            raise CartlineError("users add needs an email and --role")
        role = Role(args.role)
        if args.campaign and role is not Role.AGENT:
            raise CartlineError("--campaign is for the agent role only")
        password = _password(args)

        def add(s: Session) -> None:
            try:
                accounts.add_user(
                    s, args.email, password, role, name=args.name, campaigns=args.campaign
                )
            except accounts.AccountError as exc:
                raise CartlineError(str(exc)) from None
            audit.record(s, actor=actor, action="user_added", detail=f"role={role.value}")

        _with_db(args, add)
        print(f"added {args.email.strip().lower()} as {role.value}")
        if role in (Role.OWNER, Role.ADMIN):
            print("they set up their second factor (an authenticator app) at first sign-in")
        return 0
    if args.action == "password":
        password = _password(args)

        def change(s: Session) -> None:
            user = _user(s, args.email)
            try:
                accounts.set_password(s, user, password)
            except accounts.AccountError as exc:
                raise CartlineError(str(exc)) from None
            auth.end_sessions_of(s, user.id)

        _with_db(args, change)
        print("password changed; their sessions have ended")
        return 0

    def update(s: Session) -> None:
        user = _user(s, args.email)
        if args.action == "reset-mfa":
            accounts.reset_mfa(user)
            s.add(user)
        else:
            accounts.set_disabled(s, user, args.action == "disable")
        auth.end_sessions_of(s, user.id)
        audit.record(s, actor=actor, action=f"user_{args.action.replace('-', '_')}")

    _with_db(args, update)
    done = {
        "reset-mfa": "second factor removed; they set it up again at next sign-in",
        "disable": "disabled; their sessions have ended",
        "enable": "enabled",
    }
    print(done[args.action])
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    actor = audit.cli_actor()
    if args.action == "list":
        for tok in _with_db(args, accounts.list_tokens):
            state = "revoked" if tok.revoked_at else "active"
            used = tok.last_used_at.isoformat(timespec="seconds") if tok.last_used_at else "never"
            print(f"{tok.name}\t{state}\t{' '.join(tok.scopes)}\tlast used {used}")
        return 0
    if not args.name:
        raise CartlineError(f"tokens {args.action} needs the token's name")
    if args.action == "revoke":

        def revoke(s: Session) -> None:
            try:
                accounts.revoke_token(s, args.name)
            except accounts.AccountError as exc:
                raise CartlineError(str(exc)) from None
            audit.record(s, actor=actor, action="token_revoked", detail=args.name)

        _with_db(args, revoke)
        print(f"token {args.name} revoked")
        return 0

    def add(s: Session) -> accounts.IssuedToken:
        try:
            scopes = accounts.parse_scopes(args.scope)
            issued = accounts.add_token(s, args.name, scopes, created_by=actor)
        except accounts.AccountError as exc:
            raise CartlineError(str(exc)) from None
        audit.record(s, actor=actor, action="token_added", detail=args.name)
        return issued

    issued = _with_db(args, add)
    print(issued.token)
    print(
        f"token {issued.name} ({' '.join(issued.scopes)}): send it as "
        "'Authorization: Bearer <token>'; it is shown only now",
        file=sys.stderr,
    )
    return 0
