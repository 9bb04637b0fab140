"""Intake into the store: contacts, checkouts, consents, jobs, orders and attribution."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlmodel import Session, select

from agent.store.tables import (
    AttemptStatus,
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Consent,
    Contact,
    Decision,
    JobState,
    Order,
)
from tests.campaigns.helpers import (
    T0,
    Clock,
    Store,
    checkout,
    open_store,
    order,
    settings_with,
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(), Clock()) as st:
        yield st


def _all(store: Store, table: type) -> list:  # type: ignore[type-arg]
    return store.db.call(lambda s: list(s.exec(select(table)).all()))


def test_checkout_creates_contact_consent_and_a_job_due_after_the_delay(store: Store) -> None:
    result = store.db.call(lambda s: store.intake.ingest(s, checkout()))
    assert (result.checkouts, result.jobs_scheduled) == (1, 1)
    [contact] = _all(store, Contact)
    assert contact.phone_e164 == "+12125550123"
    assert contact.region == "NY"
    [c] = _all(store, Checkout)
    assert c.total == Decimal("120.00") and c.currency == "USD"
    assert c.abandoned_at == T0
    [job] = _all(store, CallJob)
    assert job.state == JobState.PENDING
    assert job.due_at == T0 + dt.timedelta(minutes=30)
    assert len(_all(store, Consent)) == 1
    [decision] = _all(store, Decision)
    assert (decision.action, decision.reason) == ("scheduled", "abandoned")


def test_same_checkout_twice_changes_nothing_but_a_later_cart_moves_the_due_time(
    store: Store,
) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    again = store.db.call(lambda s: store.intake.ingest(s, checkout()))
    assert again.jobs_scheduled == 0
    assert len(_all(store, CallJob)) == 1
    assert len(_all(store, Consent)) == 1
    later = T0 + dt.timedelta(minutes=20)
    store.db.call(lambda s: store.intake.ingest(s, checkout(abandoned_at=later)))
    [job] = _all(store, CallJob)
    assert job.due_at == later + dt.timedelta(minutes=30)


def test_invalid_number_is_kept_out_with_a_reason(store: Store) -> None:
    result = store.db.call(lambda s: store.intake.ingest(s, checkout(phone="12")))
    assert result.invalid_phones == 1 and result.jobs_scheduled == 0
    assert result.skipped == {"invalid_phone": 1}
    [c] = _all(store, Checkout)  # the checkout itself is kept
    assert c.external_id == "c1"
    [contact] = _all(store, Contact)
    assert contact.phone_e164 is None and contact.phone_error
    [decision] = _all(store, Decision)
    assert (decision.action, decision.reason) == ("skip", "invalid_phone")
    assert "12" not in decision.detail


def test_below_minimum_total_is_not_scheduled(database_url: str) -> None:
    with open_store(database_url, settings_with(min_total="50"), Clock()) as st:
        result = st.db.call(lambda s: st.intake.ingest(s, checkout(total="20.00")))
        assert result.skipped == {"below_min_total": 1}
        assert _all(st, CallJob) == []


def test_completed_checkout_closes_its_job(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    result = store.db.call(lambda s: store.intake.ingest(s, checkout(completed=True)))
    assert result.jobs_closed == 1
    [job] = _all(store, CallJob)
    assert (job.state, job.result) == (JobState.DONE, "purchased")


def _answered_call(store: Store, at: dt.datetime, checkout_id: str = "c1") -> None:
    def write(s: Session) -> None:
        c = s.exec(select(Checkout).where(Checkout.external_id == checkout_id)).one()
        job = s.exec(select(CallJob).where(CallJob.checkout_id == c.id)).one()
        s.add(
            CallAttempt(
                job_id=job.id,
                contact_id=job.contact_id,
                campaign=job.campaign,
                server_id="t",
                status=AttemptStatus.ANSWERED,
                started_at=at,
                answered_at=at,
                ended_at=at + dt.timedelta(minutes=2),
            )
        )

    store.db.call(write)


def test_order_after_an_answered_call_is_recovered_revenue(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    _answered_call(store, T0 + dt.timedelta(hours=1))
    result = store.db.call(
        lambda s: store.intake.ingest(s, order(at=T0 + dt.timedelta(days=2), total="99.50"))
    )
    assert result.attributed == 1
    [credit] = _all(store, Attribution)
    assert (credit.amount, credit.currency, credit.campaign) == (
        Decimal("99.50"),
        "USD",
        "checkout-recovery",
    )
    [c] = _all(store, Checkout)
    assert c.completed_at == T0 + dt.timedelta(days=2)
    again = store.db.call(lambda s: store.intake.ingest(s, order(at=T0 + dt.timedelta(days=2))))
    assert again.orders == 0
    assert len(_all(store, Order)) == 1


def test_order_outside_the_window_or_without_a_call_is_not_credited(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    no_call = store.db.call(lambda s: store.intake.ingest(s, order("o1", at=T0)))
    assert no_call.attributed == 0
    store.db.call(lambda s: store.intake.ingest(s, checkout("c2")))

    _answered_call(store, T0, "c2")
    late = store.db.call(
        lambda s: store.intake.ingest(s, order("o2", "c2", at=T0 + dt.timedelta(days=8)))
    )
    assert late.attributed == 0
    assert _all(store, Attribution) == []


def test_a_checkout_without_number_or_email_keeps_its_contact_when_delivered_again(
    store: Store,
) -> None:
    for _ in range(2):
        store.db.call(lambda s: store.intake.ingest(s, checkout(phone=None, email=None)))
    assert len(_all(store, Contact)) == 1
