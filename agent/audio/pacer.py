"""Outbound audio pacing: one 20 ms frame per deadline on a monotonic clock.

AudioSocket has no "clear playout" message, so whatever the agent has already
written will be heard: how far ahead of real time the pacer writes is the
barge-in delay. The pacer therefore writes at most ``lead_frames`` frames ahead
and keeps the rest queued, where :meth:`Pacer.clear` can still drop it. When it
has nothing to say it writes silence, because Asterisk's AudioSocket() hangs up
after 2 s without traffic.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from agent.audio.frames import FRAME_MS, duration_ms, frame_bytes, silence


class Clock(Protocol):
    """Monotonic time, injectable so pacing is tested without sleeping."""

    def now(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        await asyncio.sleep(max(0.0, delay))


Sink = Callable[[bytes], Awaitable[None]]


class Pacer:
    """Writes queued audio to ``sink`` in real time, and silence when there is none.

    ``push`` accepts PCM of any length; a trailing partial frame is padded with
    silence when it is sent, so an utterance is never held back waiting for
    more audio. ``clear`` drops everything not yet written (barge-in).
    """

    def __init__(
        self,
        sink: Sink,
        clock: Clock | None = None,
        *,
        frame_size: int | None = None,
        lead_frames: int = 2,
        max_late_frames: int = 5,
        on_frame: Callable[[float], None] | None = None,
    ) -> None:
        if not 1 <= lead_frames <= 3:
            raise ValueError("lead_frames must be 1, 2 or 3")
        self._sink = sink
        self._clock = clock or MonotonicClock()
        self.frame_size = frame_size or frame_bytes()
        self._period = FRAME_MS / 1000
        self._lead = lead_frames
        self._max_late = max_late_frames
        self._on_frame = on_frame
        self._queue: deque[bytes] = deque()
        self._partial = b""
        self.frames_sent = 0
        self.audio_frames = 0
        self.silence_frames = 0
        self.late_frames = 0
        self.resyncs = 0

    def set_frame_size(self, size: int) -> None:
        """Changes the frame size (the call's audio rate); queued audio is re-cut."""
        if size == self.frame_size:
            return
        queued = b"".join(self._queue) + self._partial
        self._queue.clear()
        self._partial = b""
        self.frame_size = size
        self.push(queued)

    def push(self, pcm: bytes) -> None:
        """Queues audio to be played after what is already queued."""
        data = self._partial + pcm
        size = self.frame_size
        whole = len(data) - len(data) % size
        self._queue.extend(data[i : i + size] for i in range(0, whole, size))
        self._partial = data[whole:]

    def clear(self) -> int:
        """Drops all queued audio; returns how many milliseconds were dropped."""
        dropped = sum(len(f) for f in self._queue) + len(self._partial)
        self._queue.clear()
        self._partial = b""
        return round(duration_ms(dropped, self.frame_size * 50 // 2))

    @property
    def queued_ms(self) -> float:
        queued = sum(len(f) for f in self._queue) + len(self._partial)
        return duration_ms(queued, self.frame_size * 50 // 2)

    @property
    def idle(self) -> bool:
        """True when nothing is queued (the agent is not speaking)."""
        return not self._queue and not self._partial

    def _next_frame(self) -> bytes:
        if self._queue:
            self.audio_frames += 1
            return self._queue.popleft()
        if self._partial:
            frame = self._partial + silence(self.frame_size - len(self._partial))
            self._partial = b""
            self.audio_frames += 1
            return frame
        self.silence_frames += 1
        return silence(self.frame_size)

    async def run(self) -> None:
        """Sends frames until cancelled. Deadlines are start + n * 20 ms: they never drift."""
        start = self._clock.now()
        n = 0
        while True:
            # Frame n belongs to real time start + n*period; it may go out
            # lead frames early, never earlier, so at most lead frames are in flight.
            slot = start + n * self._period
            due = slot - self._lead * self._period
            now = self._clock.now()
            if now < due:
                await self._clock.sleep_until(due)
                now = self._clock.now()
            elif now - slot > self._max_late * self._period:
                # The loop stalled: start a new timeline rather than bursting.
                self.resyncs += 1
                start = now + self._lead * self._period
                n = 0
            elif now > slot:
                # Behind real time: the far end's buffer ran dry for this frame.
                self.late_frames += 1
            frame = self._next_frame()
            await self._sink(frame)
            self.frames_sent += 1
            if self._on_frame is not None:
                self._on_frame(now)
            n += 1
