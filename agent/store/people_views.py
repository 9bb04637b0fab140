"""Contacts and checkouts as lists and details show them, newest first, a page at a time.

``query`` finds a contact by the start of their number, email or either name; the
number of calls and the last one come from subqueries on indexed columns.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.store.call_views import CallFilter, CallRow, list_calls
from agent.store.tables import CallAttempt, Checkout, Consent, Contact, DoNotCall, table

_A = table(CallAttempt)
_C = table(Contact)
_K = table(Checkout)
_D = table(DoNotCall)


@dataclass(frozen=True)
class ContactRow:
    """One contact in a list, with whether they are on the do-not-call list and their calls."""

    contact_id: int
    first_name: str | None
    last_name: str | None
    phone_e164: str | None
    email: str | None
    country: str | None
    region: str | None
    do_not_call: bool
    calls: int
    last_call_at: dt.datetime | None


_LIKE_SPECIAL = re.compile(r"([\\%_])")
_PHONE_TEXT = re.compile(r"^\+?[\d\s().-]+$")


def _prefix(text: str) -> str:
    return _LIKE_SPECIAL.sub(r"\\\1", text) + "%"


def _contact_query() -> Select[Any]:
    calls = sa_select(func.count()).where(_A.c.contact_id == _C.c.id).scalar_subquery()
    last = sa_select(func.max(_A.c.started_at)).where(_A.c.contact_id == _C.c.id).scalar_subquery()
    on_dnc = exists().where(_D.c.phone_e164 == _C.c.phone_e164)
    return sa_select(
        _C.c.id,
        _C.c.first_name,
        _C.c.last_name,
        _C.c.phone_e164,
        _C.c.email,
        _C.c.country,
        _C.c.region,
        on_dnc.label("dnc"),
        calls.label("calls"),
        last.label("last_call_at"),
    )


def _contact_row(r: Any) -> ContactRow:
    return ContactRow(
        contact_id=int(r.id),
        first_name=r.first_name,
        last_name=r.last_name,
        phone_e164=r.phone_e164,
        email=r.email,
        country=r.country,
        region=r.region,
        do_not_call=bool(r.dnc),
        calls=int(r.calls or 0),
        last_call_at=r.last_call_at,
    )


def list_contacts(
    s: Session, *, query: str | None = None, before_id: int | None = None, limit: int = 50
) -> list[ContactRow]:
    """Contacts newest first; ``query`` matches the start of the number, email or a name."""
    stmt = _contact_query()
    text = (query or "").strip()
    if text:
        like = _prefix(text.lower())
        conds: list[ColumnElement[bool]] = [
            _C.c.email.like(like, escape="\\"),
            func.lower(_C.c.first_name).like(like, escape="\\"),
            func.lower(_C.c.last_name).like(like, escape="\\"),
        ]
        if _PHONE_TEXT.match(text):
            digits = re.sub(r"\D", "", text)
            if digits:
                conds.append(_C.c.phone_e164.like(_prefix("+" + digits), escape="\\"))
        stmt = stmt.where(or_(*conds))
    if before_id is not None:
        stmt = stmt.where(_C.c.id < before_id)
    rows = s.connection().execute(stmt.order_by(_C.c.id.desc()).limit(limit))
    return [_contact_row(r) for r in rows]


@dataclass(frozen=True)
class ContactDetail:
    """A contact with their consents (oldest first), checkouts and latest calls (newest first)."""

    row: ContactRow
    consents: list[dict[str, Any]]
    checkouts: list[dict[str, Any]]
    calls: list[CallRow] = field(default_factory=list)


def contact_consents(s: Session, contact_id: int) -> list[dict[str, Any]]:
    """The contact's consents and withdrawals, oldest first (the latest per channel decides)."""
    cs = table(Consent)
    return [
        dict(r._mapping)
        for r in s.connection().execute(
            sa_select(cs.c.channel, cs.c.granted, cs.c.text_version, cs.c.source, cs.c.captured_at)
            .where(cs.c.contact_id == contact_id)
            .order_by(cs.c.captured_at, cs.c.id)
        )
    ]


def get_contact_row(s: Session, contact_id: int) -> ContactRow | None:
    """The contact as a list shows it; None if there is none."""
    found = s.connection().execute(_contact_query().where(_C.c.id == contact_id)).first()
    return _contact_row(found) if found is not None else None


def get_contact(s: Session, contact_id: int) -> ContactDetail | None:
    """The contact with their consents, checkouts and (the latest 200) calls."""
    row = get_contact_row(s, contact_id)
    if row is None:
        return None
    checkouts = [
        dict(r._mapping)
        for r in s.connection().execute(
            sa_select(
                _K.c.id,
                _K.c.campaign,
                _K.c.total,
                _K.c.currency,
                _K.c.abandoned_at,
                _K.c.completed_at,
            )
            .where(_K.c.contact_id == contact_id)
            .order_by(_K.c.id.desc())
        )
    ]
    return ContactDetail(
        row=row,
        consents=contact_consents(s, contact_id),
        checkouts=checkouts,
        calls=list_calls(s, CallFilter(contact_id=contact_id), limit=200),
    )


# -- checkouts --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutRow:
    """One checkout in a list, with the first name of its customer."""

    checkout_id: int
    source: str
    campaign: str | None
    contact_id: int
    first_name: str | None
    total: Decimal
    currency: str
    abandoned_at: dt.datetime
    completed_at: dt.datetime | None


def list_checkouts(
    s: Session,
    *,
    campaign: str | None = None,
    completed: bool | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[CheckoutRow]:
    """Checkouts newest first, optionally of one campaign or only (not) completed ones."""
    stmt = sa_select(
        _K.c.id,
        _K.c.source,
        _K.c.campaign,
        _K.c.contact_id,
        _C.c.first_name,
        _K.c.total,
        _K.c.currency,
        _K.c.abandoned_at,
        _K.c.completed_at,
    ).select_from(_K.join(_C, _C.c.id == _K.c.contact_id))
    if campaign is not None:
        stmt = stmt.where(_K.c.campaign == campaign)
    if completed is not None:
        done = _K.c.completed_at.is_not(None)
        stmt = stmt.where(done if completed else ~done)
    if before_id is not None:
        stmt = stmt.where(_K.c.id < before_id)
    return [
        CheckoutRow(int(r[0]), *r[1:3], int(r[3]), *r[4:])
        for r in s.connection().execute(stmt.order_by(_K.c.id.desc()).limit(limit))
    ]
