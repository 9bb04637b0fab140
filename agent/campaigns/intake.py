"""Intake: records from any source into the store, idempotently, with calls scheduled.

A checkout that is still abandoned gets a call job per campaign, due after the
campaign's delay; an order closes its checkout's jobs and, when an answered call
preceded it within the campaign's window, is credited to that call.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from agent.campaigns.phones import normalize_phone
from agent.campaigns.records import (
    CheckoutRecord,
    IntakeRecord,
    LineItem,
    OrderRecord,
)
from agent.campaigns.records import Consent as ConsentRecord
from agent.campaigns.settings import CampaignSettings
from agent.config import Settings
from agent.store import repository as repo
from agent.store.db import Database
from agent.store.tables import (
    AttemptStatus,
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Consent,
    Decision,
    JobState,
    Order,
    table,
)

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class IntakeResult:
    """What one delivery or import changed; ``duplicate`` when it had been seen before."""

    duplicate: bool = False
    checkouts: int = 0
    orders: int = 0
    jobs_scheduled: int = 0
    jobs_closed: int = 0
    attributed: int = 0
    invalid_phones: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, other: IntakeResult) -> None:
        for name in (
            "checkouts",
            "orders",
            "jobs_scheduled",
            "jobs_closed",
            "attributed",
            "invalid_phones",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for k, v in other.skipped.items():
            self.skipped[k] = self.skipped.get(k, 0) + v

    def as_dict(self) -> dict[str, object]:
        return {
            "duplicate": self.duplicate,
            "checkouts": self.checkouts,
            "orders": self.orders,
            "jobs_scheduled": self.jobs_scheduled,
            "jobs_closed": self.jobs_closed,
            "attributed": self.attributed,
            "invalid_phones": self.invalid_phones,
            "skipped": dict(self.skipped),
        }


def _items(items: Iterable[LineItem]) -> list[dict[str, object]]:
    return [
        {"title": i.title, "quantity": i.quantity, "unit_price": str(i.unit_price), "sku": i.sku}
        for i in items
    ]


class Intake:
    """Writes intake records to the database; safe to call again with the same records."""

    def __init__(self, db: Database, settings: Settings, clock: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    def default_campaign(self) -> CampaignSettings | None:
        for c in self.settings.campaigns:
            if c.kind == "abandoned_checkout":
                return c
        return None

    def ingest_all(self, s: Session, records: Iterable[IntakeRecord]) -> IntakeResult:
        total = IntakeResult()
        for record in records:
            total.add(self.ingest(s, record))
        return total

    def ingest(self, s: Session, record: IntakeRecord) -> IntakeResult:
        if isinstance(record, CheckoutRecord):
            return self._checkout(s, record)
        # Orders go through the ORM; rows loaded earlier in this session may have
        # been changed since by the Core statements of the checkout path.
        s.expire_all()
        return self._order(s, record)

    # -- checkouts ---------------------------------------------------------------

    def _checkout(self, s: Session, rec: CheckoutRecord) -> IntakeResult:
        # Core statements, no ORM objects: this runs for every checkout delivery,
        # and building sqlmodel instances cost more than the SQL.
        now = self.clock()
        result = IntakeResult(checkouts=1)
        address = rec.customer.address
        region = (address.country if address else None) or self.settings.intake.default_region
        phone = normalize_phone(rec.customer.phone, region)
        before = (
            s.connection()
            .execute(
                sa_select(table(Checkout).c.contact_id).where(
                    table(Checkout).c.source == rec.source,
                    table(Checkout).c.external_id == rec.external_id,
                )
            )
            .scalar()
        )
        contact_id = repo.upsert_contact(
            s, rec.customer, phone.e164, phone.error, now, known_id=before
        )
        self._consents(s, contact_id, rec.consents, now)
        checkout = repo.upsert_checkout(s, rec, contact_id, _items(rec.items), now)
        if checkout.completed_at is not None:
            result.jobs_closed += self._close_jobs(s, checkout.id, "purchased", now)
            return result
        if phone.e164 is None:
            result.invalid_phones += 1
        self._schedule(s, checkout, contact_id, phone.error, now, result)
        return result

    def _consents(
        self, s: Session, contact_id: int, consents: Iterable[ConsentRecord], now: dt.datetime
    ) -> None:
        rows = [
            {
                "contact_id": contact_id,
                "channel": c.channel.value,
                "granted": c.granted,
                "text_version": c.text_version,
                "text": c.text,
                "source": c.source,
                "captured_at": c.captured_at,
                "recorded_at": now,
            }
            for c in consents
        ]
        if rows:
            # The same consent delivered again is the same row (a unique constraint).
            s.connection().execute(repo.insert_ignoring(s, table(Consent)), rows)

    def _campaign_for(self, name: str | None) -> CampaignSettings | None:
        if name:
            for c in self.settings.campaigns:
                if c.name == name:
                    return c
            return None
        return self.default_campaign()

    def _schedule(
        self,
        s: Session,
        checkout: repo.CheckoutRow,
        contact_id: int,
        phone_error: str | None,
        now: dt.datetime,
        result: IntakeResult,
    ) -> None:
        conn = s.connection()
        decisions, jobs = table(Decision), table(CallJob)
        campaign = self._campaign_for(checkout.campaign)

        def decide(
            action: str, reason: str, detail: str = "", retry_at: dt.datetime | None = None
        ) -> None:
            conn.execute(
                insert(decisions),
                {
                    "checkout_id": checkout.id,
                    "campaign": campaign.name if campaign else checkout.campaign,
                    "action": action,
                    "reason": reason,
                    "detail": detail,
                    "retry_at": retry_at,
                    "at": now,
                },
            )

        def skip(reason: str, detail: str = "") -> None:
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            last = conn.execute(
                sa_select(decisions.c.reason)
                .where(decisions.c.checkout_id == checkout.id)
                .order_by(decisions.c.id.desc())
                .limit(1)
            ).scalar()
            if last != reason:
                decide("skip", reason, detail)

        if campaign is None:
            return skip("no_campaign", "no abandoned-checkout campaign is configured by that name")
        if not campaign.enabled:
            return skip("campaign_disabled")
        if phone_error is not None:
            return skip("invalid_phone", phone_error)
        if checkout.total < campaign.min_total:
            return skip("below_min_total")
        due = checkout.abandoned_at + dt.timedelta(minutes=campaign.delay_min)
        job = conn.execute(
            sa_select(jobs.c.id, jobs.c.state, jobs.c.attempts, jobs.c.due_at).where(
                jobs.c.campaign == campaign.name, jobs.c.checkout_id == checkout.id
            )
        ).first()
        if job is None:
            conn.execute(
                insert(jobs),
                {
                    "campaign": campaign.name,
                    "checkout_id": checkout.id,
                    "contact_id": contact_id,
                    "state": JobState.PENDING.value,
                    "due_at": due,
                    "attempts": 0,
                    "result": None,
                    "last_reason": None,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            result.jobs_scheduled += 1
        elif job.state == JobState.PENDING and job.attempts == 0 and job.due_at != due:
            # The shopper came back to the cart: the delay counts from the latest activity.
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job.id)
                .values(due_at=due, contact_id=contact_id, updated_at=now)
            )
        else:
            return
        decide(
            "scheduled",
            "abandoned",
            f"first call due after {campaign.delay_min:g} min",
            retry_at=due,
        )

    def _close_jobs(self, s: Session, checkout_id: int, reason: str, now: dt.datetime) -> int:
        jobs = s.exec(
            select(CallJob).where(
                CallJob.checkout_id == checkout_id, CallJob.state == JobState.PENDING
            )
        ).all()
        for job in jobs:
            repo.close_job(s, job, reason, now)
        return len(jobs)

    # -- orders --------------------------------------------------------------------

    def _order(self, s: Session, rec: OrderRecord) -> IntakeResult:
        now = self.clock()
        result = IntakeResult(orders=1)
        existing = s.exec(
            select(Order).where(Order.source == rec.source, Order.external_id == rec.external_id)
        ).first()
        if existing is not None:
            return IntakeResult()
        checkout = (
            repo.checkout_by_external(s, rec.source, rec.checkout_external_id)
            if rec.checkout_external_id
            else None
        )
        contact_id = checkout.contact_id if checkout else None
        if contact_id is None:
            address = rec.customer.address
            region = (address.country if address else None) or self.settings.intake.default_region
            phone = normalize_phone(rec.customer.phone, region)
            found = repo.find_contact(
                s, phone.e164, rec.customer.email.lower() if rec.customer.email else None
            )
            contact_id = found.id if found else None
        order = Order(
            source=rec.source,
            external_id=rec.external_id,
            checkout_id=checkout.id if checkout else None,
            contact_id=contact_id,
            total=rec.total,
            currency=rec.currency,
            ordered_at=rec.created_at,
            received_at=now,
        )
        s.add(order)
        s.flush()
        if checkout is None or checkout.id is None:
            return result
        if checkout.completed_at is None:
            checkout.completed_at = rec.created_at
            checkout.updated_at = now
            s.add(checkout)
        result.jobs_closed += self._close_jobs(s, checkout.id, "purchased", now)
        if self._attribute(s, order, checkout.id, now):
            result.attributed += 1
        return result

    def _attribute(self, s: Session, order: Order, checkout_id: int, now: dt.datetime) -> bool:
        """Credits the order to the latest answered call within its campaign's window."""
        rows = s.exec(
            select(CallAttempt, CallJob.campaign)
            .join(CallJob, col(CallJob.id) == col(CallAttempt.job_id))
            .where(
                CallJob.checkout_id == checkout_id,
                col(CallAttempt.status).in_([AttemptStatus.ANSWERED, AttemptStatus.VOICEMAIL]),
                col(CallAttempt.started_at) <= order.ordered_at,
            )
            .order_by(col(CallAttempt.started_at).desc())
        ).all()
        for attempt, campaign_name in rows:
            try:
                window = self.settings.campaign(campaign_name).attribution_days
            except KeyError:
                window = 7
            if attempt.started_at < order.ordered_at - dt.timedelta(days=window):
                continue
            assert order.id is not None and attempt.id is not None
            s.add(
                Attribution(
                    order_id=order.id,
                    attempt_id=attempt.id,
                    campaign=campaign_name,
                    amount=order.total,
                    currency=order.currency,
                    created_at=now,
                )
            )
            s.add(
                Decision(
                    checkout_id=checkout_id,
                    campaign=campaign_name,
                    action="recovered",
                    reason="order_after_call",
                    detail=f"order credited to call attempt {attempt.id}",
                    at=now,
                )
            )
            return True
        return False
