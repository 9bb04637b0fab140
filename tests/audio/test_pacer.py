"""The pacer on virtual time: exact deadlines, bounded lead, silence, clearing."""

from __future__ import annotations

import asyncio

import pytest

from agent.audio.pacer import Pacer
from tests.fakes.clock import FakeClock

PERIOD = 0.02


class Enough(Exception):
    pass


async def run_frames(pacer: Pacer, clock: FakeClock, n: int) -> list[tuple[float, bytes]]:
    sent: list[tuple[float, bytes]] = []

    async def sink(frame: bytes) -> None:
        sent.append((clock.now(), frame))
        if len(sent) == n:
            raise Enough

    pacer._sink = sink
    with pytest.raises(Enough):
        await pacer.run()
    return sent


async def test_one_frame_per_deadline_at_most_lead_frames_ahead() -> None:
    clock = FakeClock()
    pacer = Pacer(lambda f: asyncio.sleep(0), clock, lead_frames=2)
    start = clock.now()
    sent = await run_frames(pacer, clock, 100)
    for n, (t, _) in enumerate(sent):
        # Frame n is due at start + n*period; it may leave 2 frames early, never earlier.
        assert t == pytest.approx(max(start, start + (n - 2) * PERIOD), abs=1e-9)
        assert t >= start + (n - 2) * PERIOD - 1e-9


async def test_silence_when_idle_and_audio_when_queued() -> None:
    clock = FakeClock()
    pacer = Pacer(lambda f: asyncio.sleep(0), clock)
    pacer.push(b"\x01\x00" * 160 * 2 + b"\x02\x00" * 10)  # two frames and a bit
    sent = await run_frames(pacer, clock, 5)
    frames = [f for _, f in sent]
    assert frames[0] == b"\x01\x00" * 160 and frames[1] == b"\x01\x00" * 160
    assert frames[2] == b"\x02\x00" * 10 + bytes(300)  # the tail, padded with silence
    assert frames[3] == bytes(320) and frames[4] == bytes(320)
    assert pacer.audio_frames == 3 and pacer.silence_frames == 2
    assert all(len(f) == 320 for f in frames)


async def test_clear_drops_queued_audio() -> None:
    clock = FakeClock()
    pacer = Pacer(lambda f: asyncio.sleep(0), clock)
    pacer.push(bytes(320) * 50)
    assert pacer.queued_ms == pytest.approx(1000)
    assert pacer.clear() == 1000
    assert pacer.idle and pacer.queued_ms == 0


async def test_no_drift_over_ten_thousand_frames() -> None:
    clock = FakeClock()
    pacer = Pacer(lambda f: asyncio.sleep(0), clock, lead_frames=3)
    start = clock.now()
    sent = await run_frames(pacer, clock, 10_000)
    assert sent[-1][0] == pytest.approx(start + (9_999 - 3) * PERIOD, abs=1e-6)
    assert pacer.late_frames == 0 and pacer.resyncs == 0


async def test_a_stalled_loop_resynchronises_instead_of_bursting() -> None:
    clock = FakeClock()
    times: list[float] = []

    async def sink(frame: bytes) -> None:
        times.append(clock.now())
        if len(times) == 50:
            clock.advance(1.0)  # the event loop was blocked for a second
        if len(times) == 100:
            raise Enough

    pacer = Pacer(sink, clock, lead_frames=2)
    with pytest.raises(Enough):
        await pacer.run()
    assert pacer.resyncs == 1
    after = times[50:]
    # After the stall: at most lead+1 frames at once, then one per period again.
    assert sum(1 for t in after if t == after[0]) <= 3
    gaps = [b - a for a, b in zip(after[3:], after[4:], strict=False)]
    assert all(g == pytest.approx(PERIOD) for g in gaps)


async def test_frame_size_change_keeps_queued_audio() -> None:
    pacer = Pacer(lambda f: asyncio.sleep(0), FakeClock())
    pacer.push(bytes(960))
    pacer.set_frame_size(640)
    assert pacer.queued_ms == pytest.approx(30)  # the same bytes, now 16 kHz
    assert pacer.frame_size == 640


def test_lead_is_bounded() -> None:
    with pytest.raises(ValueError):
        Pacer(lambda f: asyncio.sleep(0), FakeClock(), lead_frames=5)
