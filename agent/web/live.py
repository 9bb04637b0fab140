"""The calls in progress, as they happen: a hub the campaign calls report to, and its stream.

:class:`LiveCalls` is a :class:`~agent.campaigns.jobs.CallObserver`: it keeps the calls
under way (in memory only; nothing here is stored) and fans each change out to the
dashboards watching. Each watcher has a small queue; one that falls behind is dropped
(its browser reconnects and starts again from a fresh snapshot), so a slow reader can
never hold up a call or grow the server's memory.

``GET /live/events`` is the Server-Sent Events stream the live page reads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent.campaigns.placement import CallRequest, CallResult
from agent.conversation.events import BargeIn, Said, TurnTimings
from agent.web.access import Scope, principal, requires

log = logging.getLogger(__name__)

LINES_KEPT = 50  # transcript lines kept per call, for a page opened mid-call
QUEUE_EVENTS = 256  # events a watcher may fall behind by before it is dropped
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies from closing the stream


@dataclass
class LiveCall:
    """One call under way."""

    attempt_id: int
    campaign: str
    call_id: str
    started_at: dt.datetime
    state: str = "dialing"  # dialing, answered
    lines: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=LINES_KEPT)
    )

    def as_json(self) -> dict[str, Any]:
        return {
            "attempt_id": self.attempt_id,
            "campaign": self.campaign,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "lines": list(self.lines),
        }


class Watcher:
    """One subscriber: the events for the campaigns it may see, until it is closed."""

    def __init__(self, campaigns: frozenset[str] | None, size: int) -> None:
        self.campaigns = campaigns
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(size)
        self.dropped = False

    def sees(self, campaign: str) -> bool:
        return self.campaigns is None or campaign in self.campaigns

    async def next(self) -> dict[str, Any] | None:
        """The next event; None once the watcher was dropped or closed."""
        return await self.queue.get()

    def close(self) -> None:
        # Make room for the end marker: what was queued is lost anyway.
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class LiveCalls:
    """The calls in progress and the watchers following them (see the module's docstring)."""

    def __init__(self, queue_events: int = QUEUE_EVENTS) -> None:
        self.calls: dict[int, LiveCall] = {}
        self._watchers: set[Watcher] = set()
        self._queue_events = queue_events
        self.dropped = 0  # watchers dropped for falling behind, since start

    # -- CallObserver ------------------------------------------------------------------

    def call_started(self, request: CallRequest, call_id: str) -> None:
        call = LiveCall(request.attempt_id, request.campaign, call_id, dt.datetime.now(dt.UTC))
        self.calls[request.attempt_id] = call
        self._publish(request.campaign, {"type": "started", "call": call.as_json()})

    def call_event(self, request: CallRequest, event: object) -> None:
        call = self.calls.get(request.attempt_id)
        if call is None:
            return
        if isinstance(event, Said):
            line = {"who": event.who, "text": event.text}
            call.lines.append(line)
            self._answered(call)
            self._publish(call.campaign, {"type": "said", "attempt_id": call.attempt_id, **line})
        elif isinstance(event, TurnTimings):
            self._publish(
                call.campaign,
                {
                    "type": "timing",
                    "attempt_id": call.attempt_id,
                    "turn": event.turn,
                    "response_ms": round(event.response_s * 1000),
                },
            )
        elif isinstance(event, BargeIn):
            self._publish(
                call.campaign,
                {"type": "barge_in", "attempt_id": call.attempt_id, "dropped_ms": event.dropped_ms},
            )

    def call_ended(self, request: CallRequest, result: CallResult) -> None:
        call = self.calls.pop(request.attempt_id, None)
        if call is None:
            return
        self._publish(
            call.campaign,
            {
                "type": "ended",
                "attempt_id": call.attempt_id,
                "status": result.status.value,
                "outcome": result.outcome,
            },
        )

    # -- watchers -----------------------------------------------------------------------

    def watch(self, campaigns: frozenset[str] | None) -> Watcher:
        """A new watcher for ``campaigns`` (None: all); :meth:`unwatch` it when done."""
        watcher = Watcher(campaigns, self._queue_events)
        self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def snapshot(self, campaigns: frozenset[str] | None) -> list[dict[str, Any]]:
        return [
            c.as_json()
            for c in sorted(self.calls.values(), key=lambda c: c.started_at)
            if campaigns is None or c.campaign in campaigns
        ]

    def close(self) -> None:
        """Ends every stream (the server is stopping)."""
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()

    def _answered(self, call: LiveCall) -> None:
        if call.state == "dialing":
            call.state = "answered"
            self._publish(call.campaign, {"type": "answered", "attempt_id": call.attempt_id})

    def _publish(self, campaign: str, event: dict[str, Any]) -> None:
        for watcher in list(self._watchers):
            if not watcher.sees(campaign):
                continue
            try:
                watcher.queue.put_nowait(event)
            except asyncio.QueueFull:
                watcher.dropped = True
                watcher.close()
                self._watchers.discard(watcher)
                self.dropped += 1
                log.warning("a live view fell behind and was dropped")


LIVE = web.AppKey("live", LiveCalls)


def sse(event: dict[str, Any]) -> bytes:
    """One Server-Sent Events message: its type as the event name, the data as JSON."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


@requires(Scope.CALLS_READ)
async def live_events(request: web.Request) -> web.StreamResponse:
    """GET /live/events: a snapshot of the calls under way, then each change as it happens."""
    hub = request.app[LIVE]
    campaigns = principal(request).campaigns
    watcher = hub.watch(campaigns)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass events on at once
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        await response.write(sse({"type": "snapshot", "calls": hub.snapshot(campaigns)}))
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    event = await watcher.next()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            await response.write(sse(event))
    except ConnectionError:
        pass  # the browser went away
    finally:
        hub.unwatch(watcher)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def add_routes(app: web.Application, hub: LiveCalls) -> None:
    app[LIVE] = hub
    app.router.add_get("/live/events", live_events)

    async def close_streams(_: web.Application) -> None:
        hub.close()

    app.on_shutdown.append(close_streams)
