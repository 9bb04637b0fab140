"""Prometheus metrics: calls as they happen, the queue as the database holds it, and /metrics.

:class:`Metrics` follows campaign calls (it is a ``CallObserver``) and reads the
queue at scrape time through one cheap query, cached for ``cache_s`` so a storm of
scrapes costs the database one query per period. It has its own registry, never
the process-wide one. Labels are campaign names, status and outcome codes and stage
names: never a customer's data.

Turn latency stages, from an agent turn's ``TurnTimings`` (seconds):

- ``stt``: end of the caller's speech to the transcript;
- ``first_token``: transcript to the language model's first token;
- ``first_audio``: first token to the first synthesized audio sent;
- ``answer``: end of the caller's speech to the answer's first audio sent;
- ``voice_to_voice``: end of the caller's speech to the agent's first sound, an
  acknowledgement ("Okay.") said while the answer was decided if there was one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.campaigns.jobs import FINAL_OUTCOMES
from agent.campaigns.placement import CallRequest, CallResult
from agent.conversation.events import BargeIn, TurnTimings
from agent.store.db import Database
from agent.store.tables import (
    AttemptStatus,
    CallJob,
    CampaignState,
    JobState,
    WebhookDelivery,
    table,
)
from agent.web.access import Scope, public, requires

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]

# Outcome codes come from the conversation; any other code is counted as "other" so
# that a label can never carry free text.
KNOWN_OUTCOMES = FINAL_OUTCOMES | {s.value for s in AttemptStatus} | {"callback"}
TURN_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class QueueSnapshot:
    """What the database says at one moment: due jobs, jobs by state, inbox, pauses."""

    due: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    inbox_backlog: int = 0
    paused: frozenset[str] = frozenset()


def read_queue(s: Session, now: dt.datetime) -> QueueSnapshot:
    """The queue figures, in four aggregate queries on indexed columns."""
    conn = s.connection()
    job = table(CallJob).c
    due = conn.execute(
        sa_select(job.campaign, func.count())
        .where(job.state == JobState.PENDING.value, job.due_at <= now)
        .group_by(job.campaign)
    ).all()
    states = conn.execute(sa_select(job.state, func.count()).group_by(job.state)).all()
    inbox = table(WebhookDelivery).c
    backlog = conn.execute(
        sa_select(func.count())
        .select_from(table(WebhookDelivery))
        .where(inbox.processed_at.is_(None))
    ).scalar_one()
    camp = table(CampaignState).c
    paused = conn.execute(sa_select(camp.name).where(camp.paused.is_(True))).scalars().all()
    return QueueSnapshot(
        due={str(c): int(n) for c, n in due},
        jobs={str(st): int(n) for st, n in states},
        inbox_backlog=int(backlog),
        paused=frozenset(str(p) for p in paused),
    )


class _QueueCollector(Collector):
    """Turns the last snapshot into gauges at scrape time (no I/O here: it runs in a scrape)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self.metrics.snapshot
        campaigns = sorted(set(self.metrics.campaigns) | set(snap.due) | snap.paused)
        due = GaugeMetricFamily(
            "cartline_queue_depth", "Pending call jobs due now.", labels=["campaign"]
        )
        paused = GaugeMetricFamily(
            "cartline_campaign_paused", "1 while a campaign is paused.", labels=["campaign"]
        )
        for name in campaigns:
            due.add_metric([name], snap.due.get(name, 0))
            paused.add_metric([name], 1 if name in snap.paused else 0)
        jobs = GaugeMetricFamily("cartline_jobs", "Call jobs by state.", labels=["state"])
        for state in sorted({s.value for s in JobState} | set(snap.jobs)):
            jobs.add_metric([state], snap.jobs.get(state, 0))
        yield due
        yield jobs
        yield GaugeMetricFamily(
            "cartline_inbox_backlog",
            "Webhook deliveries stored and not yet applied.",
            value=snap.inbox_backlog,
        )
        yield paused


class Metrics:
    """The call counters and the queue gauges, in a registry of their own."""

    def __init__(
        self,
        db: Database,
        campaigns: Iterable[str] = (),
        *,
        cache_s: float = 5.0,
        clock: Clock = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.campaigns = tuple(campaigns)
        self.cache_s = cache_s
        self.clock = clock
        self.monotonic = monotonic
        self.snapshot = QueueSnapshot()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "cartline_calls", "Campaign calls ended, by status.", ["campaign", "status"], registry=r
        )
        self.outcomes = Counter(
            "cartline_call_outcomes",
            "Answered calls' outcomes.",
            ["campaign", "outcome"],
            registry=r,
        )
        self.started = Counter(
            "cartline_calls_started", "Campaign calls dialled.", ["campaign"], registry=r
        )
        self.active = Gauge("cartline_active_calls", "Campaign calls under way.", registry=r)
        self.turn_latency = Histogram(
            "cartline_turn_latency_seconds",
            "Agent turn latency by stage (see docs/integrations.md).",
            ["stage"],
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.barge_ins = Counter(
            "cartline_barge_ins", "Times a caller spoke over the agent.", registry=r
        )
        for name in self.campaigns:
            self.started.labels(name)  # a series from the start, so rate() sees the first call
        r.register(_QueueCollector(self))

    # -- CallObserver ----------------------------------------------------------------------

    def call_started(self, request: CallRequest, call_id: str) -> None:
        self.started.labels(request.campaign).inc()
        self.active.inc()

    def call_event(self, request: CallRequest, event: object) -> None:
        if isinstance(event, TurnTimings):
            stages = {
                "stt": event.stt_done - event.end_of_speech,
                "first_token": event.first_token - event.stt_done,
                "first_audio": event.first_audio - event.first_token,
                "answer": event.answer_s,
                "voice_to_voice": event.response_s,
            }
            for stage, seconds in stages.items():
                if seconds >= 0:  # a stage skipped (e.g. a canned reply) has no time of its own
                    self.turn_latency.labels(stage).observe(seconds)
        elif isinstance(event, BargeIn):
            self.barge_ins.inc()

    def call_ended(self, request: CallRequest, result: CallResult) -> None:
        self.active.dec()
        self.calls.labels(request.campaign, result.status.value).inc()
        if result.status in (AttemptStatus.ANSWERED, AttemptStatus.VOICEMAIL):
            code = result.outcome or result.status.value
            self.outcomes.labels(
                request.campaign, code if code in KNOWN_OUTCOMES else "other"
            ).inc()

    # -- scrapes ---------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reads the queue from the database unless the last read is under ``cache_s`` old.

        Concurrent scrapes wait for one read; a failed read keeps the last figures.
        """
        async with self._lock:
            now = self.monotonic()
            if self._read_at is not None and now - self._read_at < self.cache_s:
                return
            try:
                at = self.clock()
                self.snapshot = await self.db.run(lambda s: read_queue(s, at))
            except Exception as exc:
                log.warning("metrics: the queue could not be read: %s", type(exc).__name__)
            # A failed read waits its period too: a database in trouble gets no storm.
            self._read_at = now

    async def exposition(self) -> bytes:
        """The text Prometheus scrapes."""
        await self.refresh()
        return generate_latest(self.registry)


# -- the route -----------------------------------------------------------------------------

METRICS = web.AppKey("metrics", Metrics)
_FORWARDED = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is this machine's own (127.0.0.0/8, ::1)."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    # A server listening on "::" sees IPv4 peers as ::ffff:a.b.c.d.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


async def _answer(request: web.Request) -> web.Response:
    body = await request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@public
async def metrics_loopback(request: web.Request) -> web.Response:
    """GET /metrics from this machine only (``web.metrics: loopback``)."""
    # A proxy on this machine connects from loopback for anyone on the internet; the
    # headers it adds give it away.
    if not is_loopback(request.remote) or any(h in request.headers for h in _FORWARDED):
        return web.json_response(
            {"error": "forbidden", "message": "Metrics are served to this machine only."},
            status=403,
        )
    return await _answer(request)


@requires(Scope.METRICS_READ)
async def metrics_token(request: web.Request) -> web.Response:
    """GET /metrics with a bearer token holding ``metrics:read`` (``web.metrics: token``)."""
    return await _answer(request)


def add_routes(app: web.Application, metrics: Metrics, mode: str) -> None:
    """Serves /metrics as ``mode`` says ("loopback", "token"); "off" serves nothing (404)."""
    app[METRICS] = metrics
    if mode == "loopback":
        app.router.add_get("/metrics", metrics_loopback)
    elif mode == "token":
        app.router.add_get("/metrics", metrics_token)
