"""Queries and writes the rest of Cartline shares; each takes the caller's session."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from agent.campaigns.records import Customer
from agent.store.tables import (
    CallAttempt,
    CallJob,
    CampaignState,
    Checkout,
    Contact,
    Decision,
    DoNotCall,
    JobState,
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


def upsert_contact(
    s: Session,
    customer: Customer,
    phone_e164: str | None,
    phone_error: str | None,
    now: dt.datetime,
) -> Contact:
    """Finds or creates the contact and fills in what the source told us."""
    email = customer.email.lower() if customer.email else None
    contact = find_contact(s, phone_e164, email)
    if contact is None:
        contact = Contact(phone_e164=phone_e164, created_at=now, updated_at=now)
    contact.phone_error = None if phone_e164 else phone_error
    address = customer.address
    for name, value in (
        ("email", email),
        ("first_name", customer.first_name),
        ("last_name", customer.last_name),
        ("country", address.country if address else None),
        ("region", address.region if address else None),
        ("postal_code", address.postal_code if address else None),
        ("city", address.city if address else None),
    ):
        if value:
            setattr(contact, name, value)
    contact.updated_at = now
    s.add(contact)
    s.flush()
    return contact


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
