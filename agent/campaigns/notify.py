"""Webhooks out: each call's outcome, posted signed to the systems the merchant configured.

An outbox. :func:`enqueue_outcome` writes one ``outbound_events`` row per matching
webhook in the transaction that records the call's end, so an outcome is queued
exactly when it is recorded: a rollback queues nothing, a commit can never lose it.
:class:`OutcomeSender` posts the queued rows and retries them with exponential backoff.
Delivery is at least once (a server that dies mid-POST sends that row again later);
receivers drop repeats by the ``X-Cartline-Delivery`` header, the event's id.

Payloads carry ids and facts only: no phone number, name or transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.campaigns.placement import CallResult
from agent.store.db import Database
from agent.store.tables import (
    AttemptStatus,
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    OutboundEvent,
    table,
)
from agent.web.settings import OutcomeWebhookSettings

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]

OUTCOME_EVENT = "call.outcome"
EVENT_HEADER = "X-Cartline-Event"
DELIVERY_HEADER = "X-Cartline-Delivery"
SIGNATURE_HEADER = "X-Cartline-Signature"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def wants(webhook: OutcomeWebhookSettings, campaign: str) -> bool:
    """Whether ``webhook`` is told of this campaign's calls (no campaigns listed: all)."""
    return not webhook.campaigns or campaign in webhook.campaigns


def outcome_payload(
    s: Session, attempt: CallAttempt, result: CallResult, now: dt.datetime
) -> dict[str, Any]:
    """The ``call.outcome`` body for an attempt whose end is being recorded."""
    assert attempt.id is not None
    job = s.get(CallJob, attempt.job_id) if attempt.job_id is not None else None
    checkout = s.get(Checkout, job.checkout_id) if job is not None else None
    answered = result.status in (AttemptStatus.ANSWERED, AttemptStatus.VOICEMAIL)
    at = table(Attribution).c
    recovered = [
        {"amount": str(amount), "currency": currency}
        for amount, currency in s.connection().execute(
            sa_select(at.amount, at.currency).where(at.attempt_id == attempt.id)
        )
    ]
    return {
        "event": OUTCOME_EVENT,
        "id": f"evt_{uuid.uuid4().hex}",
        "occurred_at": _iso(now),
        "attempt_id": attempt.id,
        "campaign": attempt.campaign,
        "checkout": (
            {"id": checkout.id, "source": checkout.source, "external_id": checkout.external_id}
            if checkout is not None
            else None
        ),
        "contact_id": attempt.contact_id,
        "status": result.status.value,
        "outcome": (result.outcome or result.status.value) if answered else None,
        # Facts only: the customer's own words stay in Cartline, with the transcript.
        "note": {k: v for k, v in result.note.items() if k != "customer_said"} if answered else {},
        "started_at": _iso(attempt.started_at),
        "answered_at": _iso(attempt.answered_at),
        "ended_at": _iso(attempt.ended_at),
        "recovered": recovered,
    }


def enqueue_outcome(
    s: Session,
    attempt: CallAttempt,
    result: CallResult,
    now: dt.datetime,
    webhooks: Sequence[OutcomeWebhookSettings],
) -> int:
    """Queues the outcome for each webhook that wants the attempt's campaign; returns how many.

    Call it inside the transaction that records the call's end, after the attempt's
    fields are set: the rows commit or roll back with that end.
    """
    targets = [w for w in webhooks if wants(w, attempt.campaign)]
    if not targets:
        return 0
    assert attempt.id is not None
    payload = outcome_payload(s, attempt, result, now)
    s.connection().execute(
        insert(table(OutboundEvent)),
        [
            {
                "target": str(w.url),
                "kind": OUTCOME_EVENT,
                "attempt_id": attempt.id,
                "payload": payload,
                "tries": 0,
                "next_at": now,
                "created_at": now,
            }
            for w in targets
        ],
    )
    return len(targets)


# -- signing -----------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Cartline-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


# -- sending -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Waits between tries: ``first_s`` doubling up to ``max_s``; no try after ``give_up_s``."""

    first_s: float = 30.0
    max_s: float = 6 * 3600.0
    give_up_s: float = 24 * 3600.0

    def delay_s(self, tries: int) -> float:
        """The wait after the ``tries``-th failed try."""
        return min(self.first_s * 2.0 ** max(tries - 1, 0), self.max_s)

    @property
    def max_tries(self) -> int:
        """Tries whose start falls within ``give_up_s`` of the first (13 by default)."""
        tries, waited = 1, 0.0
        while waited + self.delay_s(tries) <= self.give_up_s:
            waited += self.delay_s(tries)
            tries += 1
        return tries


class Sent(NamedTuple):
    """One pass: rows claimed and, of those, delivered."""

    claimed: int
    delivered: int


@dataclass(frozen=True)
class _Claimed:
    id: int
    target: str
    kind: str
    payload: dict[str, Any]
    tries: int


class OutcomeSender:
    """Posts due outbox rows to their webhooks; one pass is :meth:`send_due`.

    A pass claims rows by moving their ``next_at`` a lease ahead, in one short
    transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two servers never
    claim the same row), then posts them outside any transaction.
    """

    def __init__(
        self,
        db: Database,
        webhooks: Sequence[OutcomeWebhookSettings],
        *,
        clock: Clock = _utc_now,
        backoff: Backoff = Backoff(),
        timeout_s: float = 10.0,
        batch: int = 20,
    ) -> None:
        self.db = db
        self.webhooks = {str(w.url): w for w in webhooks}
        self.clock = clock
        self.backoff = backoff
        self.timeout_s = timeout_s
        self.batch = batch
        # A claimed row is left alone this long: every post of a pass ends well before.
        self.lease = dt.timedelta(seconds=timeout_s * 6)

    def _claim(self, s: Session, now: dt.datetime) -> list[_Claimed]:
        ob = table(OutboundEvent).c
        rows = (
            s.connection()
            .execute(
                sa_select(ob.id, ob.target, ob.kind, ob.payload, ob.tries)
                .where(
                    ob.delivered_at.is_(None),
                    ob.next_at <= now,
                    ob.tries < self.backoff.max_tries,
                    # Rows for a webhook taken out of the configuration wait for its return.
                    ob.target.in_(list(self.webhooks)),
                )
                .order_by(ob.next_at, ob.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            .all()
        )
        claimed = [_Claimed(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows]
        if claimed:
            s.connection().execute(
                update(table(OutboundEvent))
                .where(ob.id.in_([c.id for c in claimed]))
                .values(next_at=now + self.lease)
            )
        return claimed

    async def send_due(self, http: aiohttp.ClientSession | None = None) -> Sent:
        """Posts up to ``batch`` due rows once each."""
        now = self.clock()
        claimed = await self.db.run(lambda s: self._claim(s, now))
        if not claimed:
            return Sent(0, 0)
        async with contextlib.AsyncExitStack() as stack:
            if http is None:
                http = await stack.enter_async_context(aiohttp.ClientSession())
            errors = await asyncio.gather(*(self._post(http, row) for row in claimed))
        done = self.clock()
        await self.db.run(lambda s: self._record(s, list(zip(claimed, errors, strict=True)), done))
        return Sent(len(claimed), sum(1 for e in errors if e is None))

    async def _post(self, http: aiohttp.ClientSession, row: _Claimed) -> str | None:
        """Posts one row; returns None when the webhook took it, else a short reason."""
        webhook = self.webhooks[row.target]
        body = encode(row.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Cartline-Webhooks/1",
            EVENT_HEADER: row.kind,
            DELIVERY_HEADER: str(row.payload.get("id", row.id)),
            SIGNATURE_HEADER: signature(
                webhook.secret.get_secret_value(), int(self.clock().timestamp()), body
            ),
        }
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with http.post(
                row.target, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return type(exc).__name__

    def _record(
        self, s: Session, results: list[tuple[_Claimed, str | None]], now: dt.datetime
    ) -> None:
        t = table(OutboundEvent)
        conn = s.connection()
        for row, error in results:
            tries = row.tries + 1
            if error is None:
                values: dict[str, Any] = {"tries": tries, "delivered_at": now}
            else:
                values = {
                    "tries": tries,
                    "next_at": now + dt.timedelta(seconds=self.backoff.delay_s(tries)),
                    "last_error": error[:200],
                }
                if tries >= self.backoff.max_tries:
                    values["last_error"] = f"gave up after {tries} tries: {error}"[:200]
                    log.warning(
                        "outbound event %d to %s given up after %d tries: %s",
                        row.id,
                        urlsplit(row.target).hostname,
                        tries,
                        error,
                    )
            conn.execute(update(t).where(t.c.id == row.id).values(values))

    async def run(self, poll_s: float = 5.0) -> None:
        """Sends due rows every ``poll_s`` seconds until cancelled."""
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    while (await self.send_due(http)).claimed >= self.batch:
                        pass  # a backlog: go on without waiting
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("sending webhooks failed; trying again at the next poll")
                await asyncio.sleep(poll_s)


async def keep_sending(
    db: Database,
    webhooks: Sequence[OutcomeWebhookSettings],
    *,
    clock: Clock = _utc_now,
    poll_s: float = 5.0,
) -> None:
    """The background task of ``cartline serve``: posts queued call outcomes to their webhooks."""
    await OutcomeSender(db, webhooks, clock=clock).run(poll_s)
