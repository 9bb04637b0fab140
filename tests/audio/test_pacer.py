"""The pacer on virtual time: exact deadlines, bounded lead, silence, clearing, resync."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agent.audio.frames import frame_bytes, rms_dbfs, silence
from agent.audio.pacer import DEFAULT_MAX_QUEUED_MS, MonotonicClock, Pacer
from tests.fakes.clock import FakeClock

PERIOD = 0.02
FRAME = 320


class Enough(Exception):
    """Stops the pacer once the test has seen the frames it needs."""


class Recorder:
    """A sink that notes when each frame was written, and stops after ``limit``."""

    def __init__(
        self, clock: FakeClock, limit: int, hook: Callable[[int], None] | None = None
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.hook = hook
        self.sent: list[tuple[float, bytes]] = []

    async def __call__(self, frame: bytes) -> None:
        self.sent.append((self.clock.now(), frame))
        if self.hook is not None:
            self.hook(len(self.sent))
        if len(self.sent) == self.limit:
            raise Enough

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.sent]

    @property
    def frames(self) -> list[bytes]:
        return [f for _, f in self.sent]


def make(
    limit: int,
    lead: int = 2,
    hook: Callable[[int], None] | None = None,
    max_queued_ms: int = DEFAULT_MAX_QUEUED_MS,
) -> tuple[Pacer, Recorder, FakeClock]:
    clock = FakeClock()
    rec = Recorder(clock, limit, hook)
    pacer = Pacer(rec, clock, lead_frames=lead, max_queued_ms=max_queued_ms)
    return pacer, rec, clock


async def run(pacer: Pacer) -> None:
    with pytest.raises(Enough):
        await pacer.run()


def tone(n_frames: int, value: int = 1000) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (FRAME // 2) * n_frames


@pytest.mark.parametrize("lead", [1, 2, 3])
async def test_one_frame_per_deadline_never_more_than_lead_ahead(lead: int) -> None:
    pacer, rec, clock = make(200, lead)
    start = clock.now()
    await run(pacer)
    for n, t in enumerate(rec.times):
        # Frame n is heard at start + n*period; it leaves lead periods early, never earlier.
        assert t == pytest.approx(max(start, start + (n - lead) * PERIOD), abs=1e-9)
    for t in rec.times:
        written = sum(1 for u in rec.times if u <= t + 1e-9)
        heard_by_now = int((t - start) / PERIOD + 1e-6) + 1
        assert written - heard_by_now <= lead
    assert pacer.frames_sent == 199  # the 200th write raised in the sink
    assert pacer.late_frames == 0


async def test_silence_when_idle_and_a_padded_tail_at_the_end_of_speech() -> None:
    pacer, rec, _ = make(5)
    pacer.push(tone(2) + b"\x02\x00" * 10)  # two frames and a bit
    await run(pacer)
    assert rec.frames[0] == rec.frames[1] == tone(1)
    assert rec.frames[2] == b"\x02\x00" * 10 + silence(300)
    assert rec.frames[3] == rec.frames[4] == silence(FRAME)
    assert pacer.audio_frames == 3 and pacer.silence_frames == 2
    assert all(len(f) == FRAME for f in rec.frames)


async def test_a_partial_frame_waits_for_the_next_push_when_more_follows() -> None:
    pacer, rec, _ = make(3)
    pacer.push(tone(1)[:100])
    pacer.push(tone(1)[100:] + tone(1, 2000))
    await run(pacer)
    assert rec.frames[:2] == [tone(1), tone(1, 2000)]
    assert rec.frames[2] == silence(FRAME)


async def test_audio_pushed_while_running_goes_out_in_order() -> None:
    def speak(count: int) -> None:
        if count == 10:
            pacer.push(tone(3, 7))

    pacer, rec, _ = make(16, hook=speak)
    await run(pacer)
    assert rec.frames[:10] == [silence(FRAME)] * 10
    assert rec.frames[10:13] == [tone(1, 7)] * 3
    assert rec.frames[13:] == [silence(FRAME)] * 3


async def test_clear_drops_queued_audio_and_reports_its_length() -> None:
    pacer, rec, _ = make(3)
    pacer.push(tone(50) + tone(1)[:160])
    assert pacer.queued_ms == pytest.approx(1010)
    assert not pacer.idle
    assert pacer.clear() == 1010
    assert pacer.idle and pacer.queued_ms == 0 and pacer.clear() == 0
    await asyncio.wait_for(pacer.wait_idle(), 1)
    await run(pacer)
    assert rec.frames == [silence(FRAME)] * 3


async def test_queued_ms_counts_down_as_frames_go_out_and_wait_idle_returns() -> None:
    pacer, rec, _ = make(1000)
    pacer.push(tone(10))
    task = asyncio.create_task(pacer.run())
    await asyncio.wait_for(pacer.wait_idle(), 1)
    assert pacer.queued_ms == 0 and pacer.audio_frames == 10
    # The sink had the last frame before the waiter woke.
    assert 10 <= len(rec.sent) <= 12 and rec.frames[9] == tone(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_drift_over_ten_thousand_frames() -> None:
    pacer, rec, clock = make(10_000, lead=3)
    start = clock.now()
    await run(pacer)
    assert rec.times[-1] == start + (9_999 - 3) * PERIOD  # exact: no accumulated error
    gaps = [b - a for a, b in zip(rec.times[3:], rec.times[4:], strict=False)]
    assert min(gaps) == pytest.approx(PERIOD) and max(gaps) == pytest.approx(PERIOD)
    assert pacer.late_frames == 0 and pacer.resyncs == 0


async def test_a_stalled_loop_resynchronises_instead_of_bursting() -> None:
    def stall(count: int) -> None:
        if count == 50:
            clock.advance(1.0)  # the event loop was blocked for a second

    pacer, rec, clock = make(100, lead=2, hook=stall)
    await run(pacer)
    assert pacer.resyncs == 1 and pacer.late_frames == 1
    after = rec.times[50:]
    # A new timeline: its lead goes out at once (as at the start), then one per period.
    assert sum(1 for t in after if t == after[0]) == 3
    gaps = [b - a for a, b in zip(after[2:], after[3:], strict=False)]
    assert all(g == pytest.approx(PERIOD) for g in gaps)


async def test_a_short_delay_is_caught_up_and_counted_late() -> None:
    def hiccup(count: int) -> None:
        if count == 20:
            clock.advance(4 * PERIOD + 0.001)  # frames 20 and 21 go out late

    pacer, rec, clock = make(40, lead=2, hook=hiccup)
    start = clock.now()
    await run(pacer)
    assert pacer.resyncs == 0 and pacer.late_frames == 2
    # Back on the original timeline: no drift after a short delay.
    assert rec.times[-1] == pytest.approx(start + (39 - 2) * PERIOD)


async def test_the_queue_is_bounded() -> None:
    pacer, _, _ = make(1, max_queued_ms=1000)
    pacer.push(tone(40))
    pacer.push(tone(20))
    assert pacer.queued_ms == 1000 and pacer.overflow_ms == pytest.approx(200)
    pacer.push(tone(1))
    assert pacer.queued_ms == 1000 and pacer.overflow_ms == pytest.approx(220)


async def test_on_frame_records_each_send_time() -> None:
    stamps: list[float] = []
    pacer, rec, _ = make(30)
    pacer.on_frame = stamps.append
    await run(pacer)
    assert stamps == rec.times


async def test_frame_size_change_keeps_queued_audio() -> None:
    pacer, rec, _ = make(3)
    pacer.push(bytes(range(256)) * 5)  # 1,280 bytes
    pacer.set_frame_bytes(frame_bytes(16000))
    assert pacer.frame_bytes == 640 and pacer.queued_ms == pytest.approx(40)
    await run(pacer)
    assert b"".join(rec.frames[:2]) == bytes(range(256)) * 5
    assert rec.frames[2] == silence(640)


def test_arguments_are_checked() -> None:
    async def sink(frame: bytes) -> None:
        return None

    with pytest.raises(ValueError):
        Pacer(sink, FakeClock(), lead_frames=5)
    with pytest.raises(ValueError):
        Pacer(sink, FakeClock(), lead_frames=0)
    with pytest.raises(ValueError):
        Pacer(sink, FakeClock(), frame_bytes=321)
    with pytest.raises(ValueError, match="odd"):
        Pacer(sink, FakeClock()).push(b"\x00\x00\x00")


async def test_the_monotonic_clock_sleeps_until_the_deadline() -> None:
    clock = MonotonicClock()
    deadline = clock.now() + 0.03
    await clock.sleep_until(deadline)
    assert clock.now() >= deadline - 0.002  # asyncio may wake within its clock resolution
    before = clock.now()
    await clock.sleep_until(before - 1)  # a deadline in the past does not sleep
    assert clock.now() - before < 0.01


def test_rms_dbfs() -> None:
    assert rms_dbfs(silence(320)) == float("-inf")
    assert rms_dbfs(b"") == float("-inf")
    assert rms_dbfs(b"\x00\x80" * 160) == pytest.approx(0.0)  # full-scale square
    assert rms_dbfs(tone(1, 3277)) == pytest.approx(-20.0, abs=0.01)
