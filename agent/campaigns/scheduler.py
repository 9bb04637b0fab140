"""The scheduler: claims due call jobs when a voice slot is free and follows each call to its end.

Progressive dialling: a call starts only when a voice session is free to take it,
so no customer ever answers to silence. Slots are given back when the call ends,
whatever happened to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from agent.campaigns.attempts import finish_attempt, recover
from agent.campaigns.jobs import claim_due
from agent.campaigns.placement import CallRequest, CallResult
from agent.campaigns.settings import CampaignSettings, SchedulerSettings
from agent.privacy.crypto import DataKeys
from agent.store.db import Database
from agent.store.tables import AttemptStatus
from agent.web.settings import OutcomeWebhookSettings

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]


class CallPlacer(Protocol):
    """Places one call and returns when it is over."""

    async def place_call(self, request: CallRequest) -> CallResult: ...


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Scheduler:
    """Runs the job queue for this server."""

    def __init__(
        self,
        db: Database,
        settings: SchedulerSettings,
        campaigns: tuple[CampaignSettings, ...],
        placer: CallPlacer,
        *,
        max_channels: int | None = None,
        clock: Clock = _utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.campaigns = {c.name: c for c in campaigns}
        self.placer = placer
        self.clock = clock
        self.slots = min(settings.voice_slots, max_channels or settings.voice_slots)
        self.calls: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        # Set to seal transcripts (encryption at rest).
        self.keys: DataKeys | None = None
        # False: transcripts are not stored at all (the merchant's choice).
        self.keep_transcripts = True
        # Told of every call's end, through the outbox (agent.campaigns.notify).
        self.outcome_webhooks: tuple[OutcomeWebhookSettings, ...] = ()

    @property
    def free_slots(self) -> int:
        return self.slots - len(self.calls)

    async def recover(self) -> int:
        """Closes the calls this server left open when it last stopped."""
        now = self.clock()
        stale = dt.timedelta(seconds=self.settings.call_timeout_s * 2)
        n = await self.db.run(
            lambda s: recover(
                s,
                self.settings.server_id,
                now,
                self.campaigns,
                stale,
                webhooks=self.outcome_webhooks,
            )
        )
        if n:
            log.warning("%d call(s) open at the last stop were counted as interrupted", n)
        return n

    def wake(self) -> None:
        """Looks at the queue now rather than at the next poll (e.g. after intake)."""
        self._wake.set()

    async def tick(self) -> list[CallRequest]:
        """Decides due jobs and starts as many calls as there are free slots."""
        started: list[CallRequest] = []
        while not self._stopping and self.free_slots > 0:
            now = self.clock()
            limit = self.free_slots
            ready, decided = await self.db.run(
                partial(
                    claim_due,
                    now=now,
                    limit=limit,
                    server_id=self.settings.server_id,
                    campaigns=self.campaigns,
                )
            )
            for request in ready:
                self.calls[request.attempt_id] = asyncio.create_task(
                    self._call(request), name=f"call-attempt-{request.attempt_id}"
                )
            started.extend(ready)
            if decided == 0 or not ready and decided < 500:
                break
        return started

    async def _call(self, request: CallRequest) -> None:
        log.info("attempt %d (%s): calling", request.attempt_id, request.campaign)
        try:
            try:
                async with asyncio.timeout(self.settings.call_timeout_s):
                    result = await self.placer.place_call(request)
            except asyncio.CancelledError:
                # The server is stopping: the call's end was not seen.
                await asyncio.shield(self._finish(request, CallResult(AttemptStatus.INTERRUPTED)))
                raise
            except Exception as exc:
                log.warning(
                    "attempt %d: the call failed: %s", request.attempt_id, type(exc).__name__
                )
                result = CallResult(AttemptStatus.FAILED)
            try:
                await self._finish(request, result)
            except Exception:
                # The attempt stays open in the database; the next start counts it as
                # interrupted and its job is retried then.
                log.exception("attempt %d: its end could not be recorded", request.attempt_id)
        finally:
            self.calls.pop(request.attempt_id, None)
            self._wake.set()

    async def _finish(self, request: CallRequest, result: CallResult) -> None:
        now = self.clock()
        if not self.keep_transcripts and result.turns:
            result = dataclasses.replace(result, turns=[])
        await self.db.run(
            lambda s: finish_attempt(
                s,
                request.attempt_id,
                result,
                now,
                self.campaigns,
                keys=self.keys,
                webhooks=self.outcome_webhooks,
            )
        )
        log.info("attempt %d: %s", request.attempt_id, result.outcome or result.status.value)

    async def run(self) -> None:
        """Recovers, then ticks until :meth:`stop`."""
        await self.recover()
        while not self._stopping:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the scheduler's tick failed; trying again at the next poll")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_s):
                    await self._wake.wait()

    async def stop(
        self,
        *,
        drain_s: float = 0,
        hand_over: Callable[[], Awaitable[int]] | None = None,
        hand_over_s: float = 15.0,
    ) -> None:
        """Stops claiming; lets live calls finish for up to ``drain_s``, then cancels them.

        ``hand_over``: called first for the calls still live when the drain time is
        up (it transfers them to a person and returns how many); they get
        ``hand_over_s`` more to leave before the rest are cancelled.
        """
        self._stopping = True
        self._wake.set()
        if self.calls and drain_s > 0:
            await asyncio.wait(list(self.calls.values()), timeout=drain_s)
        if self.calls and hand_over is not None and await hand_over():
            await asyncio.wait(list(self.calls.values()), timeout=hand_over_s)
        for task in list(self.calls.values()):
            task.cancel()
        for task in list(self.calls.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
