"""Queries and writes the rest of Cartline shares; each takes the caller's session."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Table, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from agent.campaigns.records import CheckoutRecord, Customer
from agent.store.tables import (
    CallAttempt,
    CallJob,
    CampaignState,
    Checkout,
    Contact,
    Decision,
    DoNotCall,
    JobState,
    table,
)


def find_contact(s: Session, phone_e164: str | None, email: str | None) -> Contact | None:
    """The contact with this number, else (only for a contact without a number) this email."""
    if phone_e164:
        return s.exec(select(Contact).where(Contact.phone_e164 == phone_e164)).first()
    if email:
        return s.exec(
            select(Contact).where(Contact.email == email.lower(), col(Contact.phone_e164).is_(None))
        ).first()
    return None


def insert_ignoring(s: Session, target: Table) -> Any:
    """INSERT that skips rows a unique constraint already holds (SQLite and PostgreSQL)."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(target).on_conflict_do_nothing()


_CONTACT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "country",
    "region",
    "postal_code",
    "city",
    "phone_error",
)


def upsert_contact(
    s: Session,
    customer: Customer,
    phone_e164: str | None,
    phone_error: str | None,
    now: dt.datetime,
    known_id: int | None = None,
) -> int:
    """Finds or creates the contact, fills in what the source told us; returns its id.

    ``known_id`` is the contact the record had before (a checkout delivered again):
    it is used when the record carries neither a valid number nor an email.
    """
    conn = s.connection()
    t = table(Contact)
    email = customer.email.lower() if customer.email else None
    address = customer.address
    known: dict[str, Any] = {
        name: value
        for name, value in (
            ("email", email),
            ("first_name", customer.first_name),
            ("last_name", customer.last_name),
            ("country", address.country if address else None),
            ("region", address.region if address else None),
            ("postal_code", address.postal_code if address else None),
            ("city", address.city if address else None),
        )
        if value
    }
    known["phone_error"] = None if phone_e164 else phone_error
    known["updated_at"] = now
    if phone_e164:
        found = conn.execute(sa_select(t.c.id).where(t.c.phone_e164 == phone_e164)).scalar()
    elif email:
        found = conn.execute(
            sa_select(t.c.id).where(t.c.email == email, t.c.phone_e164.is_(None)).limit(1)
        ).scalar()
    else:
        found = known_id
    if found is None:
        new = conn.execute(
            insert_ignoring(s, t).returning(t.c.id),
            {
                "phone_e164": phone_e164,
                "created_at": now,
                **dict.fromkeys(_CONTACT_FIELDS),
                **known,
            },
        ).scalar()
        if new is not None:
            return int(new)
        # Another server added this number a moment ago.
        found = conn.execute(sa_select(t.c.id).where(t.c.phone_e164 == phone_e164)).scalar_one()
    conn.execute(update(t).where(t.c.id == found).values(**known))
    return int(found)


class CheckoutRow(NamedTuple):
    id: int
    campaign: str | None
    total: Decimal
    abandoned_at: dt.datetime
    completed_at: dt.datetime | None


@functools.cache
def _checkout_upsert(dialect: str) -> Any:
    # Built once per dialect: building it costs more than running it.
    t = table(Checkout)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(t)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[t.c.source, t.c.external_id],
        set_={
            "contact_id": new.contact_id,
            "campaign": func.coalesce(new.campaign, t.c.campaign),
            "items": new["items"],
            "total": new.total,
            "currency": new.currency,
            "checkout_url": new.checkout_url,
            "abandoned_at": new.abandoned_at,
            "completed_at": func.coalesce(t.c.completed_at, new.completed_at),
            "updated_at": new.updated_at,
        },
    ).returning(t.c.id, t.c.campaign, t.c.total, t.c.abandoned_at, t.c.completed_at)


def upsert_checkout(
    s: Session,
    rec: CheckoutRecord,
    contact_id: int,
    items: list[dict[str, Any]],
    now: dt.datetime,
) -> CheckoutRow:
    """Creates or updates the checkout in one statement; a completion is never undone."""
    row = (
        s.connection()
        .execute(
            _checkout_upsert(s.get_bind().dialect.name),
            {
                "source": rec.source,
                "external_id": rec.external_id,
                "contact_id": contact_id,
                "campaign": rec.campaign,
                "items": items,
                "total": rec.total,
                "currency": rec.currency,
                "checkout_url": rec.checkout_url,
                "abandoned_at": rec.abandoned_at,
                "completed_at": rec.abandoned_at if rec.completed else None,
                "created_at": now,
                "updated_at": now,
            },
        )
        .one()
    )
    return CheckoutRow(*row)


def on_do_not_call(s: Session, phone_e164: str) -> bool:
    return (
        s.exec(select(DoNotCall.id).where(DoNotCall.phone_e164 == phone_e164)).first() is not None
    )


def add_do_not_call(
    s: Session, phone_e164: str, reason: str, source: str, now: dt.datetime
) -> bool:
    """Adds the number to the do-not-call list and closes its open jobs; False if already on it."""
    if on_do_not_call(s, phone_e164):
        return False
    s.add(DoNotCall(phone_e164=phone_e164, reason=reason, source=source, created_at=now))
    contact = s.exec(select(Contact).where(Contact.phone_e164 == phone_e164)).first()
    if contact is not None and contact.id is not None:
        jobs = s.exec(
            select(CallJob).where(
                CallJob.contact_id == contact.id, CallJob.state == JobState.PENDING
            )
        ).all()
        for job in jobs:
            close_job(s, job, "do_not_call", now)
    s.flush()
    return True


def close_job(s: Session, job: CallJob, reason: str, now: dt.datetime, detail: str = "") -> None:
    """Ends a job for good, with the reason written to the why log."""
    job.state = JobState.DONE
    job.result = reason
    job.last_reason = reason
    job.updated_at = now
    s.add(job)
    s.add(
        Decision(
            checkout_id=job.checkout_id,
            campaign=job.campaign,
            action="close",
            reason=reason,
            detail=detail,
            at=now,
        )
    )


def campaign_state(s: Session, name: str, now: dt.datetime) -> CampaignState:
    """The campaign's row, made if missing, locked for update (on PostgreSQL) until commit."""
    # Calls ending at once on several threads or servers may all find it missing.
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(
        insert(CampaignState)
        .values(name=name, paused=False, consecutive_failures=0, updated_at=now)
        .on_conflict_do_nothing()
    )
    return s.exec(select(CampaignState).where(CampaignState.name == name).with_for_update()).one()


def set_paused(s: Session, name: str, paused: bool, reason: str | None, now: dt.datetime) -> None:
    state = campaign_state(s, name, now)
    state.paused = paused
    state.paused_reason = reason if paused else None
    if not paused:
        state.consecutive_failures = 0
    state.updated_at = now
    s.add(state)


def paused_campaigns(s: Session) -> set[str]:
    return set(s.exec(select(CampaignState.name).where(CampaignState.paused)).all())


def checkout_by_external(s: Session, source: str, external_id: str) -> Checkout | None:
    return s.exec(
        select(Checkout).where(Checkout.source == source, Checkout.external_id == external_id)
    ).first()


def open_attempts(s: Session, contact_id: int) -> int:
    """Calls to this contact that have started and not ended (any campaign, any server)."""
    rows = s.exec(
        select(CallAttempt.id).where(
            CallAttempt.contact_id == contact_id, col(CallAttempt.ended_at).is_(None)
        )
    ).all()
    return len(rows)
