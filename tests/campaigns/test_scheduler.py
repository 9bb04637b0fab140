"""The scheduler with a fake placer: slots, release on failure, pause, and two servers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from functools import partial

import pytest
from sqlmodel import select

from agent.campaigns.placement import CallRequest, CallResult
from agent.campaigns.scheduler import Scheduler
from agent.campaigns.settings import SchedulerSettings
from agent.store import repository as repo
from agent.store.db import Database
from agent.store.tables import AttemptStatus, CallAttempt, CallJob, JobState, Outcome, Transcript
from tests.campaigns.helpers import Clock, Store, checkout, open_store, settings_with


class FakePlacer:
    """Holds each call until released; counts how many run at once."""

    def __init__(self, result: CallResult | Exception | None = None) -> None:
        self.result = result or CallResult(AttemptStatus.ANSWERED)
        self.placed: list[CallRequest] = []
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()

    async def place_call(self, request: CallRequest) -> CallResult:
        self.placed.append(request)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(delay_min=0), Clock()) as st:
        yield st


def _load(store: Store, n: int) -> None:
    for i in range(n):
        rec = checkout(f"c{i}", phone=f"+1212555{i:04d}")
        store.db.call(partial(store.intake.ingest, record=rec))


def _scheduler(store: Store, placer: FakePlacer, slots: int, server: str = "srv-1") -> Scheduler:
    return Scheduler(
        store.db,
        SchedulerSettings(voice_slots=slots, server_id=server, poll_s=0.05),
        store.settings.campaigns,
        placer,
        clock=store.clock,
    )


async def _settle(sched: Scheduler, placer: FakePlacer) -> None:
    placer.release.set()
    while sched.calls:
        await asyncio.gather(*sched.calls.values())


async def test_never_more_calls_than_voice_slots(store: Store) -> None:
    _load(store, 5)
    placer = FakePlacer()
    sched = _scheduler(store, placer, slots=2)
    started = await sched.tick()
    assert len(started) == 2
    await asyncio.sleep(0)
    assert placer.most_at_once == 2 and sched.free_slots == 0
    assert await sched.tick() == []
    placer.release.set()
    for _ in range(3):
        await asyncio.gather(*sched.calls.values())
        await sched.tick()
    await _settle(sched, placer)
    assert len(placer.placed) == 5
    assert placer.most_at_once == 2
    jobs = store.db.call(lambda s: list(s.exec(select(CallJob)).all()))
    assert {j.result for j in jobs} == {"answered"}


async def test_a_placer_error_frees_the_slot_and_counts_as_failed(store: Store) -> None:
    _load(store, 1)
    placer = FakePlacer(RuntimeError("trunk down"))
    sched = _scheduler(store, placer, slots=1)
    await sched.tick()
    await _settle(sched, placer)
    assert sched.free_slots == 1
    attempt = store.db.call(lambda s: s.exec(select(CallAttempt)).one())
    assert attempt.status == AttemptStatus.FAILED and attempt.ended_at is not None
    job = store.db.call(lambda s: s.exec(select(CallJob)).one())
    assert job.state == JobState.PENDING  # retried later


async def test_paused_campaign_starts_nothing_until_resumed(store: Store) -> None:
    _load(store, 1)
    now = store.clock()
    store.db.call(lambda s: repo.set_paused(s, "checkout-recovery", True, "by hand", now))
    placer = FakePlacer()
    sched = _scheduler(store, placer, slots=1)
    assert await sched.tick() == []
    store.db.call(lambda s: repo.set_paused(s, "checkout-recovery", False, None, now))
    assert len(await sched.tick()) == 1
    await _settle(sched, placer)


async def test_stop_marks_live_calls_interrupted(store: Store) -> None:
    _load(store, 1)
    placer = FakePlacer()
    sched = _scheduler(store, placer, slots=1)
    await sched.tick()
    await asyncio.sleep(0)
    await sched.stop(drain_s=0)
    attempt = store.db.call(lambda s: s.exec(select(CallAttempt)).one())
    assert attempt.status == AttemptStatus.INTERRUPTED


async def test_two_servers_on_postgresql_never_dial_the_same_job(postgres_url: str) -> None:
    clock = Clock()
    settings = settings_with(delay_min=0)
    stores = []
    for name in ("srv-1", "srv-2"):
        db = Database(postgres_url)
        await asyncio.to_thread(db.migrate)
        stores.append((name, Store(db, settings, clock)))
    try:
        _load(stores[0][1], 40)
        placers = [FakePlacer(), FakePlacer()]
        scheds = [
            _scheduler(st, p, slots=40, server=name)
            for (name, st), p in zip(stores, placers, strict=True)
        ]
        for p in placers:
            p.release.set()
        # Both servers claim at the same moment, over and over, until no job is left.
        for _ in range(10):
            await asyncio.gather(*(s.tick() for s in scheds))
            for s in scheds:
                if s.calls:
                    await asyncio.gather(*s.calls.values())
        dialled = Counter(r.phone_e164 for p in placers for r in p.placed)
        assert len(dialled) == 40
        assert set(dialled.values()) == {1}
    finally:
        for _, st in stores:
            st.db.close()


async def test_transcripts_are_not_kept_when_the_merchant_says_so(store: Store) -> None:
    _load(store, 2)
    turns = [{"speaker": "customer", "text": "hello"}]
    placer = FakePlacer(CallResult(AttemptStatus.ANSWERED, turns=turns))
    sched = _scheduler(store, placer, slots=1)
    await sched.tick()
    await _settle(sched, placer)
    assert len(store.db.call(lambda s: list(s.exec(select(Transcript)).all()))) == 1
    sched.keep_transcripts = False
    await sched.tick()
    await _settle(sched, placer)
    assert len(store.db.call(lambda s: list(s.exec(select(Transcript)).all()))) == 1
    assert len(store.db.call(lambda s: list(s.exec(select(Outcome)).all()))) == 2
