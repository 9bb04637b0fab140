"""Virtual time for tests: sleeping advances the clock at once."""

from __future__ import annotations

import asyncio


class FakeClock:
    """A monotonic clock that only moves when slept on or advanced."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.t += seconds
