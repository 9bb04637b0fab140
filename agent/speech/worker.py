"""One worker thread per model: inference never runs on the event loop.

A model's lazy iterators (Whisper segments, llama tokens, Piper chunks) are
consumed inside its thread and handed to the loop one item at a time through a
bounded queue; a :class:`StopFlag` set by the loop (barge-in, hang-up) is
checked between items, so cancelled work stops within one token or chunk.

Work waiting for a model's thread goes in order of :class:`Urgency`, then first
come, first served. Models that share the CPU take :class:`CpuTurns`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from enum import IntEnum
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


class Pause:
    """Yielded by a model's iterator between two parts of one long unit of work.

    Not handed on: it only lets more urgent work of other models take its
    turn there (the dialogue model reads a long prompt a few tokens at a time).
    """


PAUSE = Pause()


class StopFlag:
    """Set from the loop, read from the worker thread."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()


class Urgency(IntEnum):
    """Which model work goes first when several wait (lower first)."""

    VOICE = 0  # the agent's next words: a caller is about to hear them
    HEARING = 1  # a caller's words, which their answer waits for
    DECISION = 2  # the model's next move in a call
    BACKGROUND = 3  # reading a call ahead, warming up: only ever makes later work faster


class CpuTurns:
    """The models of a process take turns on the CPU, the most urgent work first.

    Two models computing at once on a few cores are each slower than the two one
    after the other: their threads wait on each other's cores (on 2 cores a
    transcript took 1.1 s instead of 0.55 s while the dialogue model wrote;
    BENCHMARKS.md). With turns, each unit of work (a transcript, a sentence of
    speech, the reading of a prompt, one token) runs alone, and the most urgent
    unit waiting goes next. A token takes tens of milliseconds, so a transcript
    waits at most that long for the dialogue model.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._waiting: list[tuple[int, int, threading.Event]] = []
        self._order = itertools.count()

    @contextlib.contextmanager
    def turn(self, urgency: Urgency) -> Iterator[None]:
        go: threading.Event | None = None
        with self._lock:
            if self._busy:
                go = threading.Event()
                heapq.heappush(self._waiting, (urgency, next(self._order), go))
            else:
                self._busy = True
        if go is not None:
            go.wait()  # handed the turn by the work before
        try:
            yield
        finally:
            with self._lock:
                if self._waiting:
                    heapq.heappop(self._waiting)[2].set()
                else:
                    self._busy = False

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)


@contextlib.contextmanager
def _no_turn(urgency: Urgency) -> Iterator[None]:
    yield


class ModelWorker:
    """Runs one model's work, one at a time, on its own thread, the most urgent first.

    ``urgency``: of this model's work, unless a call says otherwise. ``turns``:
    shared with the process's other models that compute on the CPU; None lets
    this one run beside them (a model on a GPU or behind HTTP).
    """

    def __init__(
        self, name: str, urgency: Urgency = Urgency.DECISION, turns: CpuTurns | None = None
    ) -> None:
        self.name = name
        self.urgency = urgency
        self._turn = turns.turn if turns is not None else _no_turn
        # (urgency, order, the work, what to do when it is dropped unstarted)
        self._jobs: list[tuple[int, int, Callable[[], None], Callable[[], None]]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def _submit(self, job: Callable[[], None], drop: Callable[[], None], urgency: Urgency) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError(f"the {self.name} model is closed")
            heapq.heappush(self._jobs, (urgency, next(self._order), job, drop))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"model-{self.name}", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._jobs and not self._closed:
                    self._ready.wait()
                if not self._jobs:
                    return
                job = heapq.heappop(self._jobs)[2]
            job()

    def _future(self, fn: Callable[[], T], urgency: Urgency) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(outcome: Callable[[], Any]) -> None:
            if not future.done():
                outcome()

        def hand(outcome: Callable[[], Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, outcome)

        def job() -> None:
            if future.cancelled():  # its caller left before its turn
                return
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, raised there
                hand(partial(future.set_exception, exc))
            else:
                hand(partial(future.set_result, result))

        def drop() -> None:
            hand(future.cancel)

        self._submit(job, drop, urgency)
        return future

    async def run(self, fn: Callable[[], T], urgency: Urgency | None = None) -> T:
        """Runs ``fn`` on the worker thread, in its turn, and returns its result."""
        level = self.urgency if urgency is None else urgency

        def in_turn() -> T:
            with self._turn(level):
                return fn()

        return await self._future(in_turn, level)

    async def stream(
        self,
        make: Callable[[], Iterator[T | Pause]],
        stop: StopFlag,
        maxsize: int = 64,
        urgency: Urgency | None = None,
    ) -> AsyncGenerator[T, None]:
        """Consumes the iterator ``make()`` on the worker thread; yields its items here.

        ``stop`` (shared with other work of the same reply) stops the thread
        before its next item, or before it starts. Closing this iterator early
        (``contextlib.aclosing`` around an ``async for`` that may break) or
        cancelling stops it too, without touching ``stop``: the rest of the reply
        goes on. Each item is made in its own CPU turn, and a :data:`PAUSE`
        ends a turn without an item.
        """
        level = self.urgency if urgency is None else urgency
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        room = threading.Semaphore(maxsize)
        gone = threading.Event()  # this consumer left

        def stopped() -> bool:
            return stop.is_set or gone.is_set()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody reads on
                gone.set()

        def pump() -> None:
            items = None
            try:
                if stopped():  # left or stopped while it waited for the thread
                    return
                items = iter(make())
                while not stopped():
                    with self._turn(level):
                        item = next(items, _DONE)
                    if item is _DONE:
                        break
                    if item is PAUSE:
                        continue
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
                        with self._turn(level):
                            close()
                    except Exception as exc:  # noqa: BLE001 - handed to the loop
                        put(_Failure(exc))
                put(_DONE)

        future = self._future(pump, level)
        try:
            while True:
                got = await queue.get()
                if got is _DONE:
                    break
                if isinstance(got, _Failure):
                    raise got.exc
                room.release()
                yield got  # type: ignore[misc]
        finally:
            gone.set()
            room.release()
            await asyncio.shield(future)

    def close(self) -> None:
        """Drops the work not started; the thread ends after the work in hand."""
        with self._ready:
            self._closed = True
            dropped, self._jobs = self._jobs, []
            self._ready.notify_all()
        for *_, drop in dropped:
            drop()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
