"""One worker thread per model: inference never runs on the event loop.

A model's lazy iterators (Whisper segments, llama tokens, Piper chunks) are
consumed inside its thread and handed to the loop one item at a time through a
bounded queue; a :class:`StopFlag` set by the loop (barge-in, hang-up) is
checked between items, so cancelled work stops within one token or chunk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class StopFlag:
    """Set from the loop, read from the worker thread."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()


class ModelWorker:
    """Runs one model's calls, one at a time, on its own thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"model-{name}")

    async def run(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on the worker thread and returns its result."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def stream(
        self, make: Callable[[], Iterator[T]], stop: StopFlag, maxsize: int = 64
    ) -> AsyncGenerator[T, None]:
        """Consumes the iterator ``make()`` on the worker thread; yields its items here.

        ``stop`` (shared with other work of the same reply) stops the thread
        before its next item. Closing this iterator early (``contextlib.aclosing``
        around an ``async for`` that may break) or cancelling stops it too, without
        touching ``stop``: the rest of the reply goes on.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        room = threading.Semaphore(maxsize)
        gone = threading.Event()  # this consumer left

        def stopped() -> bool:
            return stop.is_set or gone.is_set()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def pump() -> None:
            items = None
            try:
                items = make()
                for item in items:
                    if stopped():
                        break
                    # Backpressure: never more than maxsize items in flight.
                    while not room.acquire(timeout=0.1):
                        if stopped():
                            return
                    put(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, re-raised there
                put(_Failure(exc))
            finally:
                # Closed here, on this thread: a generator's own clean-up runs beside its model.
                close = getattr(items, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception as exc:  # noqa: BLE001 - handed to the loop
                        put(_Failure(exc))
                put(_DONE)

        future = loop.run_in_executor(self._pool, pump)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failure):
                    raise item.exc
                room.release()
                yield item  # type: ignore[misc]
        finally:
            gone.set()
            room.release()
            await asyncio.shield(future)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
