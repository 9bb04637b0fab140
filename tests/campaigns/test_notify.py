"""Outcome webhooks: queued with the outcome, signed, retried with backoff, sent once, erased."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func
from sqlmodel import col, select

from agent.campaigns.attempts import finish_attempt
from agent.campaigns.jobs import claim_due
from agent.campaigns.notify import Backoff, OutcomeSender
from agent.campaigns.placement import CallRequest, CallResult
from agent.campaigns.scheduler import Scheduler
from agent.campaigns.settings import SchedulerSettings
from agent.privacy.retention import run_purge
from agent.privacy.settings import RetentionSettings
from agent.store.db import Database
from agent.store.tables import AttemptStatus, CallAttempt, OutboundEvent
from agent.web.settings import OutcomeWebhookSettings
from tests.campaigns.helpers import Clock, Store, checkout, open_store, settings_with
from tests.campaigns.test_scheduler import FakePlacer

SECRET = "whsec-test-1"
CAMPAIGN = "checkout-recovery"


@dataclass
class Receiver:
    """A CRM on a real socket: answers with ``statuses`` in turn, then 200; keeps every post."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts.append((dict(request.headers), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def webhook(self, *campaigns: str, secret: str = SECRET) -> OutcomeWebhookSettings:
        return OutcomeWebhookSettings.model_validate(
            {"url": self.url, "secret": secret, "campaigns": campaigns}
        )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        hook.url = str(server.make_url("/hook"))
        yield hook


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(delay_min=0), Clock()) as st:
        yield st


def _dial(store: Store, n: int = 1) -> list[CallRequest]:
    for i in range(n):
        rec = checkout(f"c{i}", phone=f"+1212555{i:04d}")
        store.db.call(lambda s, rec=rec: store.intake.ingest(s, rec))  # type: ignore[misc]
    campaigns = {c.name: c for c in store.settings.campaigns}
    now = store.clock()
    requests, _ = store.db.call(
        lambda s: claim_due(s, now, limit=n, server_id="t", campaigns=campaigns)
    )
    assert len(requests) == n
    return requests


ANSWERED = CallResult(
    AttemptStatus.ANSWERED,
    answered_at=dt.datetime(2026, 6, 2, 15, 0, 5, tzinfo=dt.UTC),
    outcome="purchased",
    note={"reason": "price"},
    turns=[{"speaker": "customer", "text": "this is Dana, my number is 212 555 0000"}],
)


def _finish(
    store: Store,
    request: CallRequest,
    webhooks: list[OutcomeWebhookSettings],
    result: CallResult = ANSWERED,
) -> None:
    campaigns = {c.name: c for c in store.settings.campaigns}
    now = store.clock()
    store.db.call(
        lambda s: finish_attempt(s, request.attempt_id, result, now, campaigns, webhooks=webhooks)
    )


def _events(db: Database) -> list[OutboundEvent]:
    return db.call(
        lambda s: list(s.exec(select(OutboundEvent).order_by(col(OutboundEvent.id))).all())
    )


async def test_a_signed_post_with_ids_and_facts_only(store: Store, receiver: Receiver) -> None:
    (request,) = _dial(store)
    _finish(store, request, [receiver.webhook()])
    sender = OutcomeSender(store.db, [receiver.webhook()], clock=store.clock)
    sent = await sender.send_due()
    assert sent.delivered == 1

    (headers, body) = receiver.posts[0]
    t, v1 = (part.split("=", 1)[1] for part in headers["X-Cartline-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(v1, expected)
    assert int(t) == int(store.clock().timestamp())
    payload = json.loads(body)
    assert headers["X-Cartline-Event"] == "call.outcome"
    assert headers["X-Cartline-Delivery"] == payload["id"]
    assert headers["Content-Type"] == "application/json"
    assert payload["attempt_id"] == request.attempt_id
    assert payload["campaign"] == CAMPAIGN
    assert payload["checkout"]["external_id"] == "c0" and payload["checkout"]["source"] == "test"
    assert (payload["status"], payload["outcome"]) == ("answered", "purchased")
    assert payload["note"] == {"reason": "price"}
    assert payload["answered_at"] == "2026-06-02T15:00:05+00:00"
    assert payload["ended_at"] is not None and payload["recovered"] == []
    for personal in (request.phone_e164, request.phone_e164[2:], "Dana", "shopper@example.com"):
        assert personal not in body.decode()
    (row,) = _events(store.db)
    assert row.delivered_at == store.clock() and row.tries == 1

    # Delivered: nothing is posted again, however long we wait.
    store.clock.advance(days=2)
    assert (await sender.send_due()).claimed == 0
    assert len(receiver.posts) == 1


async def test_a_failing_receiver_gets_it_once_delivered_after_backoff(
    store: Store, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    (request,) = _dial(store)
    _finish(store, request, [receiver.webhook()])
    sender = OutcomeSender(store.db, [receiver.webhook()], clock=store.clock)

    assert await sender.send_due() == (1, 0)
    row = _events(store.db)[0]
    assert row.tries == 1 and row.last_error == "HTTP 500"
    assert row.next_at == store.clock() + dt.timedelta(seconds=30)
    store.clock.advance(seconds=29)
    assert await sender.send_due() == (0, 0)  # not yet due
    store.clock.advance(seconds=1)
    assert await sender.send_due() == (1, 0)
    assert _events(store.db)[0].next_at == store.clock() + dt.timedelta(seconds=60)
    store.clock.advance(seconds=60)
    assert await sender.send_due() == (1, 1)
    store.clock.advance(hours=30)
    assert await sender.send_due() == (0, 0)

    assert len(receiver.posts) == 3
    assert len({h["X-Cartline-Delivery"] for h, _ in receiver.posts}) == 1  # one event
    row = _events(store.db)[0]
    assert row.delivered_at == store.clock() - dt.timedelta(hours=30) and row.tries == 3


async def test_gives_up_after_its_tries_with_a_warning_and_no_payload(
    store: Store, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500] * 100
    (request,) = _dial(store)
    _finish(store, request, [receiver.webhook()])
    backoff = Backoff(first_s=30, max_s=6 * 3600, give_up_s=24 * 3600)
    assert backoff.max_tries == 13  # the last try about 20.5 hours after the first
    sender = OutcomeSender(store.db, [receiver.webhook()], clock=store.clock, backoff=backoff)
    with caplog.at_level(logging.WARNING, logger="agent.campaigns.notify"):
        for _ in range(40):
            await sender.send_due()
            store.clock.advance(hours=1)
    assert len(receiver.posts) == 13
    (row,) = _events(store.db)
    assert row.delivered_at is None and row.tries == 13
    assert row.last_error == "gave up after 13 tries: HTTP 500"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert "given up" in message and "127.0.0.1" in message
    assert "c0" not in message and "purchased" not in message


async def test_a_slow_receiver_times_out_and_is_retried(store: Store, receiver: Receiver) -> None:
    receiver.delay_s = 1.0
    (request,) = _dial(store)
    _finish(store, request, [receiver.webhook()])
    sender = OutcomeSender(store.db, [receiver.webhook()], clock=store.clock, timeout_s=0.2)
    assert await sender.send_due() == (1, 0)
    row = _events(store.db)[0]
    assert row.last_error == "timeout" and row.delivered_at is None


async def test_campaign_filter_and_one_row_per_webhook(store: Store, receiver: Receiver) -> None:
    hooks = [receiver.webhook(), receiver.webhook(CAMPAIGN), receiver.webhook("winback")]
    (request,) = _dial(store)
    _finish(store, request, hooks)
    rows = _events(store.db)
    assert len(rows) == 2  # the winback-only webhook is not told of this campaign
    assert rows[0].payload["id"] == rows[1].payload["id"]  # the same event for both


async def test_every_end_is_told_even_unanswered_calls(store: Store, receiver: Receiver) -> None:
    (request,) = _dial(store)
    _finish(store, request, [receiver.webhook()], CallResult(AttemptStatus.NO_ANSWER))
    (row,) = _events(store.db)
    assert (row.payload["status"], row.payload["outcome"]) == ("no_answer", None)
    assert row.payload["note"] == {} and row.payload["answered_at"] is None


def test_queued_in_the_outcome_transaction_or_not_at_all(store: Store, receiver: Receiver) -> None:
    (request,) = _dial(store)
    campaigns = {c.name: c for c in store.settings.campaigns}
    now = store.clock()
    hooks = [receiver.webhook()]
    with pytest.raises(RuntimeError), store.db.session() as s:
        finish_attempt(s, request.attempt_id, ANSWERED, now, campaigns, webhooks=hooks)
        s.flush()
        assert s.exec(select(func.count()).select_from(OutboundEvent)).one() == 1
        raise RuntimeError("the server dies before the commit")
    assert _events(store.db) == []
    attempt = store.db.call(lambda s: s.get(CallAttempt, request.attempt_id))
    assert attempt is not None and attempt.ended_at is None  # still open: recovery will tell

    _finish(store, request, hooks)
    _finish(store, request, hooks)  # an end recorded twice is told once
    assert len(_events(store.db)) == 1


async def test_rows_for_a_webhook_no_longer_configured_wait(
    store: Store, receiver: Receiver
) -> None:
    (request,) = _dial(store)
    _finish(store, request, [receiver.webhook()])
    other = OutcomeWebhookSettings.model_validate(
        {"url": "http://127.0.0.1:9/elsewhere", "secret": "x"}
    )
    assert await OutcomeSender(store.db, [other], clock=store.clock).send_due() == (0, 0)
    assert await OutcomeSender(store.db, [receiver.webhook()], clock=store.clock).send_due() == (
        1,
        1,
    )


async def test_retention_takes_the_rows_with_their_call(store: Store, receiver: Receiver) -> None:
    (request,) = _dial(store)
    _finish(store, request, [receiver.webhook()])
    await OutcomeSender(store.db, [receiver.webhook()], clock=store.clock).send_due()
    keep = RetentionSettings(analytics_days=30)
    report = await run_purge(store.db, keep, store.clock() + dt.timedelta(days=29))
    assert report.rows["outbound event(s)"] == 0 and len(_events(store.db)) == 1
    report = await run_purge(store.db, keep, store.clock() + dt.timedelta(days=31))
    assert report.rows["outbound event(s)"] == 1 and report.rows["call attempt(s)"] == 1
    assert _events(store.db) == []


async def test_two_servers_on_postgresql_never_send_the_same_row(
    postgres_url: str, receiver: Receiver
) -> None:
    receiver.delay_s = 0.05
    clock = Clock()
    dbs = [Database(postgres_url), Database(postgres_url)]
    await asyncio.to_thread(dbs[0].migrate)
    try:
        store = Store(dbs[0], settings_with(delay_min=0), clock)
        for request in _dial(store, 30):
            _finish(store, request, [receiver.webhook()])
        senders = [OutcomeSender(db, [receiver.webhook()], clock=clock, batch=7) for db in dbs]

        async def drain(sender: OutcomeSender) -> int:
            delivered = 0
            while (sent := await sender.send_due()).claimed:
                delivered += sent.delivered
            return delivered

        counts = await asyncio.gather(*(drain(s) for s in senders))
        assert sum(counts) == 30 and all(counts)  # both took part
        ids = [h["X-Cartline-Delivery"] for h, _ in receiver.posts]
        assert len(ids) == len(set(ids)) == 30
    finally:
        for db in dbs:
            await asyncio.to_thread(db.close)


async def test_the_scheduler_queues_every_end_it_records(store: Store, receiver: Receiver) -> None:
    for i in range(2):
        rec = checkout(f"c{i}", phone=f"+1212555{i:04d}")
        store.db.call(lambda s, rec=rec: store.intake.ingest(s, rec))  # type: ignore[misc]
    placer = FakePlacer(CallResult(AttemptStatus.ANSWERED, outcome="declined"))
    settings = SchedulerSettings(voice_slots=1, server_id="srv-1")
    sched = Scheduler(store.db, settings, store.settings.campaigns, placer, clock=store.clock)
    sched.outcome_webhooks = (receiver.webhook(),)
    await sched.tick()
    placer.release.set()
    await asyncio.gather(*sched.calls.values())
    # The second call is cut off by a restart: the next start records it and tells it.
    store.clock.advance(hours=2)
    await sched.tick()
    restarted = Scheduler(store.db, settings, store.settings.campaigns, placer, clock=store.clock)
    restarted.outcome_webhooks = sched.outcome_webhooks
    for task in sched.calls.values():
        task.cancel()  # before it ever runs, and without the scheduler's stop: a crash
    assert await restarted.recover() == 1
    await asyncio.gather(*sched.calls.values(), return_exceptions=True)
    rows = _events(store.db)
    assert [(r.payload["status"], r.payload["outcome"]) for r in rows] == [
        ("answered", "declined"),
        ("interrupted", None),
    ]
