"""Virtual time for tests: sleeping moves the clock to the deadline at once."""

from __future__ import annotations

import asyncio


class FakeClock:
    """A monotonic clock (a ``Clock``) that only moves when slept on or advanced.

    ``sleep_until`` still yields to the event loop once, so other tasks run
    between frames as they would in real time.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.sleeps = 0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.sleeps += 1
        self.t = max(self.t, deadline)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Time passing without the sleeper's knowledge: a stalled event loop."""
        self.t += seconds
