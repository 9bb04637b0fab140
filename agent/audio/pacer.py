"""Outbound audio pacing: one 20 ms frame per deadline on a monotonic clock.

AudioSocket has no "clear playout" message, so whatever the agent has already
written will be heard: how far ahead of real time the pacer writes is the
barge-in delay. The pacer therefore writes at most ``lead_frames`` frames ahead
and keeps the rest queued, where :meth:`Pacer.clear` can still drop it. Writing
in a burst is no better: Asterisk loses most of a burst. When there is nothing
to say the pacer writes silence, because Asterisk's AudioSocket() hangs up after
2 s without traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from agent.audio import frames

log = logging.getLogger(__name__)

Sink = Callable[[bytes], Awaitable[None]]

MAX_LEAD_FRAMES = 3
DEFAULT_FRAME_BYTES = frames.frame_bytes()
# Five minutes of speech: far beyond any reply, small enough to bound memory.
DEFAULT_MAX_QUEUED_MS = 300_000


class Clock(Protocol):
    """Monotonic time in seconds, injectable so pacing is tested without sleeping."""

    def now(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


class Pacer:
    """Writes queued audio to ``sink`` in real time, and silence when there is none.

    Frame ``n`` belongs to real time ``start + n * 20 ms`` and is written no
    earlier than ``lead_frames`` periods before that, so deadlines never drift
    and at most ``lead_frames`` frames are ever ahead of real time. A frame
    written after its own time is counted in ``late_frames``; when the loop has
    stalled for more than ``max_late_frames`` periods the pacer starts a new
    timeline (``resyncs``) instead of bursting to catch up.

    ``push`` accepts PCM16 of any even length. Whole frames are queued; a
    trailing partial frame waits for the next push and is padded with silence
    only when it is due and nothing follows it (end of utterance, or the
    producer fell behind), so an utterance is never held back.
    """

    def __init__(
        self,
        sink: Sink,
        clock: Clock | None = None,
        frame_bytes: int = DEFAULT_FRAME_BYTES,
        lead_frames: int = 2,
        *,
        max_late_frames: int = 5,
        max_queued_ms: int = DEFAULT_MAX_QUEUED_MS,
        on_frame: Callable[[float], None] | None = None,
    ) -> None:
        if not 1 <= lead_frames <= MAX_LEAD_FRAMES:
            raise ValueError(f"lead_frames must be between 1 and {MAX_LEAD_FRAMES}")
        _check_frame_bytes(frame_bytes)
        self._sink = sink
        self._clock = clock or MonotonicClock()
        self.frame_bytes = frame_bytes
        self.lead_frames = lead_frames
        self._period = frames.FRAME_MS / 1000
        self._max_late = max_late_frames
        self._max_queued_ms = max_queued_ms
        self._on_frame = on_frame
        self._queue: deque[bytes] = deque()
        self._partial = b""
        self._queued_bytes = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.frames_sent = 0
        self.audio_frames = 0
        self.silence_frames = 0
        self.late_frames = 0
        self.resyncs = 0
        self.overflow_ms = 0.0

    @property
    def on_frame(self) -> Callable[[float], None] | None:
        """Called with the clock time of each frame as it is written (jitter measurement)."""
        return self._on_frame

    @on_frame.setter
    def on_frame(self, callback: Callable[[float], None] | None) -> None:
        self._on_frame = callback

    def push(self, pcm: bytes) -> None:
        """Queues PCM16 to be played after what is already queued.

        Audio beyond ``max_queued_ms`` is dropped and counted in ``overflow_ms``.
        """
        if len(pcm) % frames.SAMPLE_WIDTH:
            raise ValueError("PCM16 holds whole 2-byte samples; got an odd length")
        room = self._bytes_for_ms(self._max_queued_ms) - self._queued_bytes
        if len(pcm) > room:
            kept = max(0, room - room % frames.SAMPLE_WIDTH)
            if not self.overflow_ms:
                log.warning("outbound audio queue full; dropping the excess")
            self.overflow_ms += self._ms(len(pcm) - kept)
            pcm = pcm[:kept]
        if not pcm:
            return
        data = self._partial + pcm
        size = self.frame_bytes
        whole = len(data) - len(data) % size
        self._queue.extend(data[i : i + size] for i in range(0, whole, size))
        self._partial = data[whole:]
        self._queued_bytes += len(pcm)
        self._idle.clear()

    def clear(self) -> int:
        """Drops all queued audio (barge-in); returns how many milliseconds were dropped."""
        dropped = self._queued_bytes
        self._queue.clear()
        self._partial = b""
        self._queued_bytes = 0
        self._idle.set()
        return round(self._ms(dropped))

    def set_frame_bytes(self, size: int) -> None:
        """Changes the frame size (the call's audio rate); queued audio is re-cut."""
        _check_frame_bytes(size)
        if size == self.frame_bytes:
            return
        queued = b"".join(self._queue) + self._partial
        self.clear()
        self.frame_bytes = size
        self.push(queued)

    @property
    def queued_ms(self) -> float:
        """Playing time of the audio queued and not yet written."""
        return self._ms(self._queued_bytes)

    @property
    def idle(self) -> bool:
        """True when nothing is queued (the agent is not speaking)."""
        return self._queued_bytes == 0

    async def wait_idle(self) -> None:
        """Returns once every queued frame has been handed to the sink, or cleared."""
        await self._idle.wait()

    async def run(self) -> None:
        """Sends frames until cancelled; an exception from the sink ends it."""
        period = self._period
        lead = self.lead_frames * period
        start = self._clock.now()
        n = 0
        while True:
            slot = start + n * period
            now = self._clock.now()
            if now < slot - lead:
                await self._clock.sleep_until(slot - lead)
                now = self._clock.now()
            elif now - slot > self._max_late * period:
                # The loop stalled: start a new timeline rather than burst to catch
                # up, which Asterisk would mostly drop anyway.
                self.late_frames += 1
                self.resyncs += 1
                start, n = now, 0
            elif now > slot:
                # Written after its own time: the far end ran dry for a moment.
                self.late_frames += 1
            frame = self._next_frame()
            if self._on_frame is not None:
                self._on_frame(now)
            await self._sink(frame)
            self.frames_sent += 1
            n += 1

    def _next_frame(self) -> bytes:
        if self._queue:
            frame = self._queue.popleft()
            self._queued_bytes -= len(frame)
        elif self._partial:
            self._queued_bytes -= len(self._partial)
            frame = self._partial + frames.silence(self.frame_bytes - len(self._partial))
            self._partial = b""
        else:
            self.silence_frames += 1
            return frames.silence(self.frame_bytes)
        self.audio_frames += 1
        if not self._queued_bytes:
            self._idle.set()
        return frame

    def _ms(self, n_bytes: int) -> float:
        return n_bytes / self.frame_bytes * frames.FRAME_MS

    def _bytes_for_ms(self, ms: float) -> int:
        return int(ms / frames.FRAME_MS * self.frame_bytes)


def _check_frame_bytes(size: int) -> None:
    if size <= 0 or size % frames.SAMPLE_WIDTH:
        raise ValueError("a frame holds a positive, even number of bytes")
