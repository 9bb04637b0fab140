"""The intake inbox: a verified delivery is stored before it is acknowledged, applied after.

Stores call webhooks in bursts and want an answer in seconds; applying a
checkout (contact, consents, job, decision log) takes milliseconds. So the web
handler only puts the verified delivery in the inbox, where concurrent
deliveries share one commit (group commit), and answers once it is on disk; a
background task applies the inbox in batches. A repeated delivery is found by
its id and changes nothing; a delivery that cannot be applied keeps its row and
an error code, and is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from functools import partial

from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.campaigns.intake import Intake, IntakeResult, utc_now
from agent.campaigns.records import Delivery, records_from_json, records_to_json
from agent.errors import CartlineError
from agent.store import repository as repo
from agent.store.db import Database
from agent.store.tables import WebhookDelivery, table

log = logging.getLogger(__name__)


class Inbox:
    """Durable, deduplicated acceptance of deliveries, and their application in batches."""

    def __init__(
        self,
        db: Database,
        intake: Intake,
        *,
        writer_db: Database | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        write_batch: int = 500,
        apply_batch: int = 20,
        poll_s: float = 1.0,
        linger_s: float = 0.003,
        on_applied: Callable[[IntakeResult], None] | None = None,
    ) -> None:
        self.db = db
        # Accepting gets a connection and thread of its own, so a delivery is never
        # stuck behind a batch being applied (SQLite has one writer at a time; the
        # small apply batches keep its lock short).
        self.writer_db = writer_db or db
        self.intake = intake
        self.clock = clock
        self.write_batch = write_batch
        self.apply_batch = apply_batch
        self.poll_s = poll_s
        self.linger_s = linger_s
        self.on_applied = on_applied
        self._pending: list[tuple[Delivery, asyncio.Future[bool]]] = []
        self._has_pending = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._stored = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- accepting -------------------------------------------------------------

    async def put(self, delivery: Delivery) -> bool:
        """Stores the delivery durably; False when it had been delivered before."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery, future))
        self._has_pending.set()
        self._drained.clear()
        if not self._tasks:
            await self._write_pending()
        return await future

    async def _write_loop(self) -> None:
        while True:
            await self._has_pending.wait()
            # Linger a moment so that deliveries arriving together share a commit.
            await asyncio.sleep(self.linger_s)
            self._has_pending.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self.write_batch]
            del self._pending[: self.write_batch]
            now = self.clock()
            try:
                fresh = await self.writer_db.run(
                    partial(self._store, deliveries=[d for d, _ in batch], now=now)
                )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), new in zip(batch, fresh, strict=True):
                if not future.done():
                    future.set_result(new)
            self._stored.set()
        self._drained.set()

    def _store(self, s: Session, deliveries: list[Delivery], now: dt.datetime) -> list[bool]:
        inbox = table(WebhookDelivery)
        conn = s.connection()
        seen = {
            (source, delivery_id)
            for source, delivery_id in conn.execute(
                sa_select(inbox.c.source, inbox.c.delivery_id).where(
                    inbox.c.source.in_({d.source for d in deliveries}),
                    inbox.c.delivery_id.in_({d.delivery_id for d in deliveries}),
                )
            )
        }
        fresh: list[bool] = []
        rows = []
        for d in deliveries:
            key = (d.source, d.delivery_id)
            fresh.append(key not in seen)
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "source": d.source,
                    "delivery_id": d.delivery_id,
                    "topic": d.topic,
                    "records": records_to_json(d.records),
                    "received_at": now,
                    "processed_at": None,
                    "error": None,
                }
            )
        if rows:
            # "Do nothing" on a repeat stored by another server at the same moment.
            conn.execute(repo.insert_ignoring(s, inbox), rows)
        return fresh

    # -- applying --------------------------------------------------------------

    async def apply_pending(self) -> IntakeResult:
        """Applies every stored delivery not yet applied; returns what they changed."""
        total = IntakeResult()
        while True:
            # Accepting comes first: a sender waits on it, nobody waits on applying.
            if self._tasks:
                await self._drained.wait()
            now = self.clock()
            result, count = await self.db.run(partial(self._apply, now=now))
            total.add(result)
            changed = result.jobs_scheduled or result.jobs_closed or result.orders
            if changed and self.on_applied is not None:
                self.on_applied(result)
            if count < self.apply_batch:
                return total

    def _apply(self, s: Session, now: dt.datetime) -> tuple[IntakeResult, int]:
        rows = s.exec(
            select(WebhookDelivery)
            .where(col(WebhookDelivery.processed_at).is_(None))
            .order_by(col(WebhookDelivery.id))
            .limit(self.apply_batch)
            .with_for_update(skip_locked=True)
        ).all()
        total = IntakeResult()
        for row in rows:
            row_id = row.id
            try:
                with s.begin_nested():
                    total.add(self.intake.ingest_all(s, records_from_json(row.records)))
            except (KeyError, ValueError, TypeError, CartlineError, IntegrityError) as exc:
                # The delivery stays in the inbox with its error, for a person to look at.
                # (Other errors, such as the database going away, roll the batch back
                # and it is tried again.)
                row.error = type(exc).__name__
                log.error("delivery %s could not be applied: %s", row_id, type(exc).__name__)
            row.processed_at = now
            s.add(row)
        return total, len(rows)

    async def _apply_loop(self) -> None:
        while True:
            try:
                await self.apply_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("applying the intake inbox failed; trying again shortly")
            self._stored.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._stored.wait()

    # -- lifecycle -------------------------------------------------------------

    def start(self, *, apply: bool = True) -> None:
        """Starts the writer and (unless ``apply`` is False) the background applier."""
        self._tasks = [asyncio.create_task(self._write_loop(), name="inbox-writer")]
        if apply:
            self._tasks.append(asyncio.create_task(self._apply_loop(), name="inbox-applier"))

    async def stop(self) -> None:
        """Writes what is waiting, then stops; anything not applied yet is applied next start."""
        await self._write_pending()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
