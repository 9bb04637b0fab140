"""/metrics: the call counters, the queue read at scrape time (cached), and who may scrape."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from agent.campaigns.placement import CallRequest, CallResult
from agent.conversation.events import BargeIn, Said, TurnTimings
from agent.privacy.crypto import DataKeys
from agent.store import repository as repo
from agent.store.db import Database
from agent.store.tables import AttemptStatus, WebhookDelivery
from agent.web.access import Scope
from agent.web.app import make_web_app
from agent.web.metrics import METRICS, Metrics, is_loopback, metrics_loopback
from tests.campaigns.helpers import T0, Clock, checkout, open_store, settings_with
from tests.web.conftest import Web, WebServed, web_settings

T = TypeVar("T")
CAMPAIGN = "checkout-recovery"
PHONE = "+12125550123"


def _request(attempt_id: int = 1, campaign: str = CAMPAIGN) -> CallRequest:
    return CallRequest(
        attempt_id=attempt_id,
        job_id=1,
        campaign=campaign,
        phone_e164=PHONE,
        checkout_id=1,
        first_name="Dana",
        items=[],
        total="120.00",
        currency="USD",
        checkout_url=None,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with open_store(f"sqlite:///{tmp_path / 'm.db'}", settings_with(delay_min=0), Clock()) as store:
        for i in range(3):
            rec = checkout(f"c{i}", phone=f"+1212555{i:04d}")
            store.db.call(partial(store.intake.ingest, record=rec))
        yield store.db


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_call_counters_follow_the_calls(db: Database) -> None:
    m = Metrics(db, [CAMPAIGN, "winback"])
    assert _value(m, "cartline_calls_started_total", campaign="winback") == 0
    first, second = _request(1), _request(2)
    m.call_started(first, "cl-1")
    m.call_started(second, "cl-2")
    assert _value(m, "cartline_active_calls") == 2
    assert _value(m, "cartline_calls_started_total", campaign=CAMPAIGN) == 2
    m.call_event(first, Said("caller", "hello", 1.0))
    m.call_event(first, TurnTimings(1, end_of_speech=10.0, stt_done=10.25, first_token=10.75,
                                    first_audio=11.0))  # fmt: skip
    # An acknowledgement 0.6 s after the caller's speech, the answer after it.
    m.call_event(second, TurnTimings(1, end_of_speech=20.0, stt_done=20.25, first_token=21.0,
                                     first_audio=21.25, acknowledged=20.6,
                                     acknowledgement_s=0.4))  # fmt: skip
    m.call_event(first, BargeIn(12.0, 200, "hel"))
    m.call_ended(first, CallResult(AttemptStatus.ANSWERED, outcome="purchased"))
    m.call_ended(second, CallResult(AttemptStatus.NO_ANSWER))
    assert _value(m, "cartline_active_calls") == 0
    assert _value(m, "cartline_calls_total", campaign=CAMPAIGN, status="answered") == 1
    assert _value(m, "cartline_calls_total", campaign=CAMPAIGN, status="no_answer") == 1
    assert _value(m, "cartline_call_outcomes_total", campaign=CAMPAIGN, outcome="purchased") == 1
    assert _value(m, "cartline_barge_ins_total") == 1
    for stage, seconds in (
        ("stt", 0.5),
        ("first_token", 1.25),
        ("first_audio", 0.5),
        ("answer", 2.25),
        ("voice_to_voice", 1.6),
    ):
        total = _value(m, "cartline_turn_latency_seconds_sum", stage=stage)
        assert total == pytest.approx(seconds)
        assert _value(m, "cartline_turn_latency_seconds_count", stage=stage) == 2


async def test_labels_never_carry_customer_data(db: Database) -> None:
    m = Metrics(db, [CAMPAIGN])
    request = _request()
    m.call_started(request, "cl-1")
    m.call_event(request, Said("caller", "I am Dana", 1.0))
    m.call_ended(
        request,
        CallResult(AttemptStatus.ANSWERED, outcome=f"dana said call {PHONE}", note={"n": "Dana"}),
    )
    text = (await m.exposition()).decode()
    assert "Dana" not in text and "dana" not in text and PHONE[2:] not in text
    assert _value(m, "cartline_call_outcomes_total", campaign=CAMPAIGN, outcome="other") == 1


async def test_queue_figures_read_at_scrape_time(db: Database) -> None:
    m = Metrics(db, [CAMPAIGN, "winback"], clock=Clock(T0 + dt.timedelta(minutes=1)))
    await m.refresh()
    assert _value(m, "cartline_queue_depth", campaign=CAMPAIGN) == 3
    assert _value(m, "cartline_queue_depth", campaign="winback") == 0
    assert _value(m, "cartline_jobs", state="pending") == 3
    assert _value(m, "cartline_jobs", state="done") == 0
    assert _value(m, "cartline_inbox_backlog") == 0
    assert _value(m, "cartline_campaign_paused", campaign=CAMPAIGN) == 0

    def change(s: Session) -> None:
        repo.set_paused(s, CAMPAIGN, True, "by hand", T0)
        s.add(WebhookDelivery(source="test", delivery_id="d1", topic="t", received_at=T0))

    db.call(change)
    m.cache_s = 0
    await m.refresh()
    assert _value(m, "cartline_campaign_paused", campaign=CAMPAIGN) == 1
    assert _value(m, "cartline_inbox_backlog") == 1
    # Jobs due later are not in the queue depth.
    later = Metrics(db, [CAMPAIGN], clock=Clock(T0 - dt.timedelta(minutes=1)))
    await later.refresh()
    assert _value(later, "cartline_queue_depth", campaign=CAMPAIGN) == 0


async def test_a_scrape_storm_costs_one_query_per_period(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    run = db.run

    async def counting(fn: Callable[[Session], T]) -> T:
        nonlocal reads
        reads += 1
        return await run(fn)

    monkeypatch.setattr(db, "run", counting)
    clock = Monotonic()
    m = Metrics(db, [CAMPAIGN], cache_s=5.0, monotonic=clock)
    texts = await asyncio.gather(*(m.exposition() for _ in range(50)))
    assert reads == 1
    assert all(b"cartline_queue_depth" in t for t in texts)
    clock.now += 4.9
    await m.exposition()
    assert reads == 1
    clock.now += 0.2
    await m.exposition()
    assert reads == 2


async def test_a_failed_read_keeps_the_last_figures(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Monotonic()
    m = Metrics(db, [CAMPAIGN], cache_s=5.0, monotonic=clock, clock=Clock())
    await m.refresh()

    async def broken(fn: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(db, "run", broken)
    clock.now += 10
    text = (await m.exposition()).decode()
    assert _value(m, "cartline_queue_depth", campaign=CAMPAIGN) == 3
    assert "cartline_active_calls" in text


# -- the route ---------------------------------------------------------------------------------


@pytest.fixture
async def make_web(tmp_path: Path, data_keys: DataKeys) -> AsyncIterator[Callable[[str], Any]]:
    """Starts the web application with ``web.metrics`` set as asked."""
    opened: list[tuple[TestClient[Any, Any], Database]] = []

    async def start(mode: str) -> Web:
        db = Database(f"sqlite:///{tmp_path / f'{mode}.db'}")
        db.migrate()
        served = WebServed(db, web_settings(metrics=mode), data_keys)
        client: TestClient[Any, Any] = TestClient(TestServer(make_web_app(served)))
        await client.start_server()
        opened.append((client, db))
        return Web(client, db, served)

    yield start
    for client, db in opened:
        await client.close()
        db.close()


async def test_loopback_mode_answers_this_machine(make_web: Callable[[str], Any]) -> None:
    web: Web = await make_web("loopback")
    response = await web.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "cartline_calls",
        "cartline_calls_started",
        "cartline_active_calls",
        "cartline_queue_depth",
        "cartline_jobs",
        "cartline_inbox_backlog",
        "cartline_campaign_paused",
        "cartline_turn_latency_seconds",
        "cartline_barge_ins",
    } <= names
    # Through a proxy on this machine, the request is someone else's.
    proxied = await web.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 403


async def test_loopback_mode_refuses_other_addresses(make_web: Callable[[str], Any]) -> None:
    web: Web = await make_web("loopback")
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        ("10.1.2.3", 40000) if name == "peername" else default
    )
    request = make_mocked_request("GET", "/metrics", app=web.client.app, transport=transport)
    assert request.remote == "10.1.2.3"
    response = await metrics_loopback(request)
    assert response.status == 403
    assert web.client.app is not None and METRICS in web.client.app


def test_what_counts_as_loopback() -> None:
    for address in ("127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(address), address
    for other in ("10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "", None, "not-an-address"):
        assert not is_loopback(other), other


async def test_token_mode_wants_the_metrics_scope(make_web: Callable[[str], Any]) -> None:
    web: Web = await make_web("token")
    assert (await web.client.get("/metrics")).status == 401
    wrong = await web.token(Scope.CAMPAIGNS_READ)
    refused = await web.client.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
    assert refused.status == 403
    token = await web.token(Scope.METRICS_READ)
    response = await web.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert "cartline_queue_depth" in await response.text()


async def test_off_mode_serves_nothing(make_web: Callable[[str], Any]) -> None:
    web: Web = await make_web("off")
    assert (await web.client.get("/metrics")).status == 404
