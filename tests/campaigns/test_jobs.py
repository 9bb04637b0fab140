"""The job queue's decisions: who is called, who waits, who is never called, and retries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from functools import partial

import pytest
from sqlmodel import col, select

from agent.campaigns.attempts import finish_attempt, recover
from agent.campaigns.jobs import claim_due
from agent.campaigns.placement import CallResult
from agent.store.tables import (
    AttemptStatus,
    CallAttempt,
    CallJob,
    CampaignState,
    Decision,
    DoNotCall,
    JobState,
    Outcome,
    Transcript,
)
from tests.campaigns.helpers import T0, Clock, Store, checkout, consent, open_store, settings_with


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(max_attempts=3), Clock()) as st:
        yield st


def _campaigns(store: Store) -> dict:  # type: ignore[type-arg]
    return {c.name: c for c in store.settings.campaigns}


def _claim(store: Store, limit: int = 5):  # type: ignore[no-untyped-def]
    now = store.clock()
    return store.db.call(
        lambda s: claim_due(s, now, limit=limit, server_id="srv-1", campaigns=_campaigns(store))
    )


def _finish(store: Store, attempt_id: int, result: CallResult) -> None:
    now = store.clock()
    store.db.call(lambda s: finish_attempt(s, attempt_id, result, now, _campaigns(store)))


def _job(store: Store) -> CallJob:
    return store.db.call(lambda s: s.exec(select(CallJob)).one())


def _reasons(store: Store) -> list[tuple[str, str]]:
    rows = store.db.call(lambda s: list(s.exec(select(Decision).order_by(col(Decision.id))).all()))
    return [(d.action, d.reason) for d in rows]


def test_nothing_is_called_before_the_delay(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    assert _claim(store) == ([], 0)
    store.clock.advance(minutes=30)
    ready, decided = _claim(store)
    assert decided == 1
    [req] = ready
    assert req.phone_e164 == "+12125550123" and req.currency == "USD"
    assert _job(store).state == JobState.DIALING
    attempt = store.db.call(lambda s: s.exec(select(CallAttempt)).one())
    assert attempt.ended_at is None and attempt.server_id == "srv-1"


def test_busy_is_retried_after_its_spacing_then_max_attempts_closes(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    for n in range(3):
        store.clock.advance(minutes=30 if n == 0 else 60)
        [req], _ = _claim(store)
        _finish(store, req.attempt_id, CallResult(AttemptStatus.BUSY))
        assert _claim(store) == ([], 0)  # not again at once
    job = _job(store)
    assert (job.state, job.result) == (JobState.DONE, "max_attempts")
    assert [r for r in _reasons(store) if r[0] == "retry"] == [("retry", "busy")] * 2


def test_no_consent_closes_the_job_for_good(database_url: str) -> None:
    with open_store(database_url, settings_with(delay_min=0), Clock()) as st:
        st.db.call(lambda s: st.intake.ingest(s, checkout(consents=())))
        assert _claim(st) == ([], 1)
        job = _job(st)
        assert (job.state, job.result) == (JobState.DONE, "no_consent")


def test_withdrawn_consent_wins_over_an_earlier_grant(database_url: str) -> None:
    with open_store(database_url, settings_with(delay_min=0), Clock()) as st:
        later = T0 - dt.timedelta(minutes=10)
        rec = checkout(consents=(consent(), consent(at=later, granted=False)))
        st.db.call(lambda s: st.intake.ingest(s, rec))
        assert _claim(st) == ([], 1)
        assert _job(st).result == "no_consent"


def test_outside_the_window_waits_until_it_opens(database_url: str) -> None:
    clock = Clock(dt.datetime(2026, 6, 2, 2, 0, tzinfo=dt.UTC))  # 22:00 in New York
    with open_store(database_url, settings_with(delay_min=0), clock) as st:
        rec = checkout(
            abandoned_at=clock.now, consents=(consent(clock.now - dt.timedelta(days=1)),)
        )
        st.db.call(lambda s: st.intake.ingest(s, rec))
        assert _claim(st) == ([], 1)
        job = _job(st)
        assert job.state == JobState.PENDING
        assert job.due_at == dt.datetime(2026, 6, 2, 12, 0, tzinfo=dt.UTC)  # 8:00 in New York
        assert ("wait", "outside_window") in _reasons(st)
        clock.now = job.due_at
        [req], _ = _claim(st)
        assert req.attempt_id


def test_opt_out_writes_do_not_call_and_closes_every_job(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    store.clock.advance(minutes=30)
    [req], _ = _claim(store)
    _finish(
        store,
        req.attempt_id,
        CallResult(
            AttemptStatus.ANSWERED,
            outcome="opted_out",
            turns=[{"speaker": "customer", "text": "stop calling me"}],
        ),
    )
    assert store.db.call(lambda s: s.exec(select(DoNotCall)).one()).reason == "opt_out"
    assert _job(store).result == "opted_out"
    assert store.db.call(lambda s: s.exec(select(Outcome)).one()).code == "opted_out"
    assert store.db.call(lambda s: len(s.exec(select(Transcript)).all())) == 1
    # A new checkout from the same number is never called.
    store.db.call(lambda s: store.intake.ingest(s, checkout("c2")))
    store.clock.advance(minutes=30)
    assert _claim(store)[0] == []


def test_one_call_at_a_time_per_contact(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout("c1")))
    store.db.call(lambda s: store.intake.ingest(s, checkout("c2")))
    store.clock.advance(minutes=30)
    ready, _ = _claim(store)
    assert len(ready) == 1
    assert ("wait", "in_call") in _reasons(store)


def test_failures_in_a_row_pause_the_campaign(database_url: str) -> None:
    clock = Clock()
    with open_store(database_url, settings_with(delay_min=0, breaker_failures=2), clock) as st:
        for i in range(3):
            rec = checkout(f"c{i}", phone=f"+1212555012{i}")
            st.db.call(partial(st.intake.ingest, record=rec))
        first, second, *_ = _claim(st)[0]
        _finish(st, first.attempt_id, CallResult(AttemptStatus.FAILED))
        _finish(st, second.attempt_id, CallResult(AttemptStatus.FAILED))
        state = st.db.call(lambda s: s.get(CampaignState, "checkout-recovery"))
        assert state is not None and state.paused and state.paused_reason == "breaker"


def test_recover_counts_open_calls_as_interrupted_and_retries_later(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    store.clock.advance(minutes=30)
    _claim(store)
    store.clock.advance(minutes=1)
    now = store.clock()
    n = store.db.call(lambda s: recover(s, "srv-1", now, _campaigns(store), dt.timedelta(hours=1)))
    assert n == 1
    attempt = store.db.call(lambda s: s.exec(select(CallAttempt)).one())
    assert attempt.status == AttemptStatus.INTERRUPTED
    job = _job(store)
    assert job.state == JobState.PENDING and job.attempts == 1
    assert job.due_at == now + dt.timedelta(minutes=240)
    assert _claim(store) == ([], 0)


def test_recover_leaves_other_servers_live_calls_alone(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    store.clock.advance(minutes=30)
    _claim(store)
    now = store.clock()
    n = store.db.call(lambda s: recover(s, "srv-2", now, _campaigns(store), dt.timedelta(hours=1)))
    assert n == 0
    assert _job(store).state == JobState.DIALING


@pytest.mark.parametrize(
    ("fields", "seen"),
    [
        (None, {"first_name": "Dana", "items": 1, "total": True, "checkout_url": True}),
        (("items",), {"first_name": None, "items": 1, "total": False, "checkout_url": False}),
        ((), {"first_name": None, "items": 0, "total": False, "checkout_url": False}),
    ],
)
def test_the_call_carries_only_the_fields_the_campaign_allows(
    database_url: str, fields: tuple[str, ...] | None, seen: dict[str, object]
) -> None:
    extra = {} if fields is None else {"customer_fields": fields}
    with open_store(database_url, settings_with(delay_min=0, **extra), Clock()) as st:
        st.db.call(lambda s: st.intake.ingest(s, checkout()))
        [req], _ = _claim(st)
    got = {
        "first_name": req.first_name,
        "items": len(req.items),
        "total": req.total is not None,
        "checkout_url": req.checkout_url is not None,
    }
    assert got == seen
    if req.total is not None:
        assert Decimal(req.total) == Decimal("120")
    assert req.last_name is None and req.city is None  # never allowed by these settings
