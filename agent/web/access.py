"""Who may do what: roles, scopes, the signed-in principal and the check on every route.

Every route declares what it needs with :func:`requires` (or :func:`public`); a route
that declares nothing is refused, so a new route is closed until someone opens it.
People sign in with a role; integrations use API tokens with scopes. Both come down to
the same set of :class:`Scope` values, checked the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Role(enum.StrEnum):
    OWNER = "owner"  # everything, including other owners
    ADMIN = "admin"  # everything but owners' accounts
    ANALYST = "analyst"  # figures and campaigns, never a customer's data
    AGENT = "agent"  # the calls, transcripts and recordings of their own campaigns


class Scope(enum.StrEnum):
    METRICS_READ = "metrics:read"  # aggregates: revenue, rates, counts, Prometheus
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"  # pause, resume
    CALLS_READ = "calls:read"  # calls, outcomes, notes, transcripts (customer data)
    RECORDINGS_READ = "recordings:read"
    CUSTOMERS_READ = "customers:read"  # contacts, checkouts, consents, history
    COMPLIANCE_READ = "compliance:read"  # do-not-call, requests, the processing log
    COMPLIANCE_WRITE = "compliance:write"  # do-not-call import, export and erasure
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"  # people and API tokens


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset(Scope),
    Role.ADMIN: frozenset(Scope),
    Role.ANALYST: frozenset({Scope.METRICS_READ, Scope.CAMPAIGNS_READ}),
    Role.AGENT: frozenset(
        {Scope.METRICS_READ, Scope.CAMPAIGNS_READ, Scope.CALLS_READ, Scope.RECORDINGS_READ}
    ),
}

# Scopes that touch a customer's data: every use is written to the processing log.
PERSONAL_SCOPES = frozenset(
    {Scope.CALLS_READ, Scope.RECORDINGS_READ, Scope.CUSTOMERS_READ, Scope.COMPLIANCE_WRITE}
)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in person or an API token."""

    kind: str  # "user" or "token"
    id: int
    name: str  # the user's email or the token's name
    scopes: frozenset[Scope]
    role: Role | None = None  # people only
    # The campaigns whose calls this principal may see; None means all of them.
    campaigns: frozenset[str] | None = None
    csrf_token: str | None = None  # sessions only: the token unsafe requests must echo
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def actor(self) -> str:
        """How the processing log names this principal."""
        return f"{self.kind}:{self.name}"

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    def sees_campaign(self, campaign: str | None) -> bool:
        return self.campaigns is None or (campaign is not None and campaign in self.campaigns)


def principal_for_user(
    user_id: int, email: str, role: Role, campaigns: list[str], csrf_token: str | None = None
) -> Principal:
    return Principal(
        kind="user",
        id=user_id,
        name=email,
        scopes=ROLE_SCOPES[role],
        role=role,
        campaigns=frozenset(campaigns) if role is Role.AGENT else None,
        csrf_token=csrf_token,
    )


# -- what each route needs ------------------------------------------------------------

_NEEDS = "__cartline_needs__"
PUBLIC = "public"  # anyone (health, webhooks with their own signatures, the sign-in page)
SIGNED_IN = "signed_in"  # any signed-in person or token, whatever its scopes
PASSWORD_ONLY = "password_only"  # a session past the password but not yet the second factor


def requires(*scopes: Scope) -> Callable[[Handler], Handler]:
    """Marks a handler as needing all of ``scopes`` (none: any signed-in principal)."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, _NEEDS, frozenset(scopes) if scopes else SIGNED_IN)
        return handler

    return mark


def public(handler: Handler) -> Handler:
    setattr(handler, _NEEDS, PUBLIC)
    return handler


def password_only(handler: Handler) -> Handler:
    """For the second-factor pages: reachable after the password, before the code."""
    setattr(handler, _NEEDS, PASSWORD_ONLY)
    return handler


def needs(handler: object) -> frozenset[Scope] | str | None:
    """What a handler declared (None: nothing, which the middleware refuses)."""
    value: frozenset[Scope] | str | None = getattr(handler, _NEEDS, None)
    return value


PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    """The principal the access middleware resolved for this request."""
    found = request.get(PRINCIPAL)
    if not isinstance(found, Principal):
        raise web.HTTPUnauthorized()
    return found


def visible_campaigns(request: web.Request) -> frozenset[str] | None:
    """The campaigns this request may see calls of (None: all)."""
    return principal(request).campaigns
