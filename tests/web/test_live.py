"""The live hub: observer events become stream lines, per campaign; a slow watcher is dropped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse

from agent.campaigns.placement import CallRequest, CallResult
from agent.conversation.events import BargeIn, CallEnded, Said, TurnTimings
from agent.store.tables import AttemptStatus
from agent.web.access import Role
from agent.web.live import LIVE, LiveCalls
from tests.web.conftest import Web


def _request(attempt_id: int, campaign: str = "recovery") -> CallRequest:
    return CallRequest(
        attempt_id=attempt_id,
        job_id=attempt_id,
        campaign=campaign,
        phone_e164="+12125550123",
        checkout_id=1,
        first_name="Dana",
        items=[],
        total="120.00",
        currency="USD",
        checkout_url=None,
    )


async def _event(r: ClientResponse) -> dict[str, Any]:
    """The next event of a Server-Sent Events stream (comments skipped)."""
    name = ""
    async with asyncio.timeout(5):
        while True:
            line = (await r.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data: dict[str, Any] = json.loads(line[6:])
                assert data["type"] == name
                return data


def test_the_hub_keeps_the_calls_under_way() -> None:
    hub = LiveCalls()
    req = _request(7)
    hub.call_started(req, "cl-7")
    assert [c["state"] for c in hub.snapshot(None)] == ["dialing"]
    hub.call_event(req, Said("agent", "Hi Dana", 1.0))
    hub.call_event(req, Said("caller", "Hello", 2.0))
    hub.call_event(req, TurnTimings(1, 2.0, 2.2, 2.4, 2.7))
    hub.call_event(req, CallEnded(3.0))
    (call,) = hub.snapshot(None)
    assert call["state"] == "answered"
    assert call["lines"] == [
        {"who": "agent", "text": "Hi Dana"},
        {"who": "caller", "text": "Hello"},
    ]
    assert hub.snapshot(frozenset({"winback"})) == []
    hub.call_ended(req, CallResult(AttemptStatus.ANSWERED))
    assert hub.snapshot(None) == []
    hub.call_event(req, Said("agent", "late", 4.0))  # after the end: ignored
    assert hub.calls == {}


async def test_a_slow_watcher_is_dropped_and_the_others_go_on() -> None:
    hub = LiveCalls(queue_events=3)
    slow = hub.watch(None)
    quick = hub.watch(None)
    req = _request(1)
    hub.call_started(req, "cl-1")
    seen: list[str] = []
    for i in range(5):
        hub.call_event(req, Said("agent", f"line {i}", float(i)))
        while not quick.queue.empty():  # the quick one keeps up
            got = await quick.next()
            assert got is not None
            seen.append(got["type"])
    assert seen == ["started", "answered"] + ["said"] * 5
    assert slow.dropped and hub.dropped == 1 and hub.watchers == 1
    assert await slow.next() is None  # its stream ends; the browser reconnects
    assert not quick.dropped
    hub.call_ended(req, CallResult(AttemptStatus.ANSWERED))
    assert (await quick.next()) == {
        "type": "ended",
        "attempt_id": 1,
        "status": "answered",
        "outcome": None,
    }


async def test_the_stream_sends_a_snapshot_then_each_change(web: Web) -> None:
    hub = web.client.app[LIVE]
    under_way = _request(1)
    hub.call_started(under_way, "cl-1")
    hub.call_event(under_way, Said("agent", "Hi Dana", 1.0))
    await web.sign_in_as(Role.AGENT, campaigns=["recovery"])
    async with web.client.get("/live/events") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        snapshot = await _event(r)
        assert [c["attempt_id"] for c in snapshot["calls"]] == [1]
        assert snapshot["calls"][0]["lines"] == [{"who": "agent", "text": "Hi Dana"}]

        other = _request(2, campaign="winback")  # not theirs: never sent
        hub.call_started(other, "cl-2")
        hub.call_event(other, Said("caller", "secret", 1.0))
        second = _request(3)
        hub.call_started(second, "cl-3")
        started = await _event(r)
        assert started["type"] == "started" and started["call"]["attempt_id"] == 3
        hub.call_event(second, Said("caller", "Hello?", 1.0))
        assert (await _event(r))["type"] == "answered"
        assert await _event(r) == {
            "type": "said",
            "attempt_id": 3,
            "who": "caller",
            "text": "Hello?",
        }
        hub.call_event(second, TurnTimings(1, 1.0, 1.2, 1.4, 1.75))
        assert (await _event(r))["response_ms"] == 750
        hub.call_event(second, BargeIn(2.0, 120, "Hel"))
        assert (await _event(r))["dropped_ms"] == 120
        hub.call_ended(second, CallResult(AttemptStatus.ANSWERED, outcome="purchased"))
        ended = await _event(r)
        assert ended["type"] == "ended" and ended["outcome"] == "purchased"
        assert hub.watchers == 1
    for _ in range(50):  # the server notices the closed stream at its next write
        if hub.watchers == 0:
            break
        hub.call_event(under_way, Said("agent", "tick", 2.0))
        await asyncio.sleep(0.02)
    assert hub.watchers == 0


async def test_the_stream_needs_calls_read(web: Web) -> None:
    await web.sign_in_as(Role.ANALYST)
    r = await web.client.get("/live/events")
    assert r.status == 403
    web.sign_out()
    r = await web.client.get("/live/events", allow_redirects=False)
    assert r.status == 303
