from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncGenerator, Iterator

import pytest

from agent.speech.worker import CpuTurns, ModelWorker, StopFlag, Urgency


async def test_run_uses_the_model_thread() -> None:
    worker = ModelWorker("unit")
    name = await worker.run(lambda: threading.current_thread().name)
    assert name.startswith("model-unit") and name != threading.current_thread().name
    worker.close()


def counting(produced: list[int]) -> Iterator[int]:
    """A slow model's output: 1000 numbers, noting each one as it is made."""
    for i in range(1000):
        produced.append(i)
        time.sleep(0.001)
        yield i


async def test_stream_yields_in_order_and_stops_between_items() -> None:
    worker = ModelWorker("unit")
    produced: list[int] = []

    stop = StopFlag()
    got = []
    async with contextlib.aclosing(
        worker.stream(lambda: counting(produced), stop, maxsize=4)
    ) as items:
        async for n in items:
            got.append(n)
            if n == 9:
                break
    assert got == list(range(10))
    # Leaving early stops this stream only: the shared flag stays clear.
    assert not stop.is_set
    # The thread stopped within a few items of the break (queue of 4 + the one in hand).
    assert len(produced) <= 16
    worker.close()


async def test_errors_in_the_thread_reach_the_caller() -> None:
    worker = ModelWorker("unit")

    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("model failed")

    with pytest.raises(ValueError, match="model failed"):
        async for _ in worker.stream(broken, StopFlag()):
            pass
    worker.close()


async def test_a_shared_stop_flag_stops_the_thread() -> None:
    worker = ModelWorker("unit")
    stop = StopFlag()
    produced: list[int] = []

    got = []
    async for n in worker.stream(lambda: counting(produced), stop, maxsize=4):
        got.append(n)
        if n == 4:
            stop.set()
    assert got[:5] == [0, 1, 2, 3, 4] and len(produced) <= 12
    worker.close()


async def test_an_iterator_left_early_is_closed_on_the_model_thread() -> None:
    worker = ModelWorker("unit")
    closed_on: list[str] = []

    def tokens() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed_on.append(threading.current_thread().name)

    async with contextlib.aclosing(worker.stream(tokens, StopFlag(), maxsize=2)) as items:
        async for n in items:
            if n == 3:
                break
    # Its clean-up (a model saving its state) ran before the stream ended, beside the model.
    assert len(closed_on) == 1 and closed_on[0].startswith("model-unit")
    worker.close()


async def test_waiting_work_goes_by_urgency_then_in_order() -> None:
    worker = ModelWorker("unit")
    busy, ran = threading.Event(), []

    def hold() -> None:
        busy.wait(5)

    first = asyncio.ensure_future(worker.run(hold))
    await asyncio.sleep(0.05)  # the thread is busy with it
    queued = [
        asyncio.ensure_future(worker.run(lambda: ran.append("read ahead"), Urgency.BACKGROUND)),
        asyncio.ensure_future(worker.run(lambda: ran.append("decide 1"))),
        asyncio.ensure_future(worker.run(lambda: ran.append("hear"), Urgency.HEARING)),
        asyncio.ensure_future(worker.run(lambda: ran.append("decide 2"))),
    ]
    await asyncio.sleep(0.05)
    busy.set()
    await asyncio.gather(first, *queued)
    assert ran == ["hear", "decide 1", "decide 2", "read ahead"]
    worker.close()


async def test_work_stopped_while_it_waited_never_starts() -> None:
    worker = ModelWorker("unit")
    busy, made = threading.Event(), []

    def tokens() -> Iterator[int]:
        made.append(1)
        yield 1

    first = asyncio.ensure_future(worker.run(lambda: busy.wait(5)))
    await asyncio.sleep(0.05)
    stop = StopFlag()
    later = asyncio.ensure_future(_drain(worker.stream(tokens, stop)))
    await asyncio.sleep(0.05)
    stop.set()
    busy.set()
    assert await later == [] and made == []
    await first
    worker.close()


async def test_closing_drops_the_work_not_started() -> None:
    worker = ModelWorker("unit")
    busy = threading.Event()
    first = asyncio.ensure_future(worker.run(lambda: busy.wait(5)))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(worker.run(lambda: "never"))
    await asyncio.sleep(0.05)
    worker.close()
    busy.set()
    assert await first is True
    with pytest.raises(asyncio.CancelledError):
        await waiting
    with pytest.raises(RuntimeError, match="closed"):
        await worker.run(lambda: None)


async def _drain(items: AsyncGenerator[int, None]) -> list[int]:
    return [i async for i in items]


class Timeline:
    """When each model's work ran, to see that no two units overlap."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def work(self, name: str, seconds: float) -> None:
        start = time.perf_counter()
        time.sleep(seconds)
        with self.lock:
            self.spans.append((name, start, time.perf_counter()))

    def tokens(self, count: int) -> Iterator[int]:
        """A model writing ``count`` tokens of 20 ms each."""
        for i in range(count):
            self.work("token", 0.02)
            yield i

    def overlaps(self) -> int:
        spans = sorted(self.spans, key=lambda s: s[1])
        return sum(b[1] < a[2] for a, b in itertools.pairwise(spans))


async def test_models_take_turns_and_a_transcript_waits_one_token_at_most() -> None:
    turns = CpuTurns()
    llm = ModelWorker("llm", Urgency.DECISION, turns)
    stt = ModelWorker("stt", Urgency.HEARING, turns)
    timeline = Timeline()

    writing = asyncio.ensure_future(_drain(llm.stream(lambda: timeline.tokens(30), StopFlag())))
    await asyncio.sleep(0.1)
    asked = time.perf_counter()
    await stt.run(lambda: timeline.work("transcript", 0.1))
    waited = next(s for n, s, _ in timeline.spans if n == "transcript") - asked
    assert len(await writing) == 30
    # Never two units of work at once; the transcript went before the remaining tokens.
    assert timeline.overlaps() == 0
    assert waited < 0.1, waited
    names = [n for n, _, _ in sorted(timeline.spans, key=lambda s: s[1])]
    assert names.index("transcript") < 15
    llm.close()
    stt.close()


async def test_without_turns_models_run_at_once() -> None:
    llm, stt = ModelWorker("llm"), ModelWorker("stt")
    timeline = Timeline()

    writing = asyncio.ensure_future(_drain(llm.stream(lambda: timeline.tokens(10), StopFlag())))
    await asyncio.sleep(0.05)
    await stt.run(lambda: timeline.work("transcript", 0.1))
    await writing
    assert timeline.overlaps() > 0  # the check above can fail
    llm.close()
    stt.close()


def test_turns_hand_over_to_the_most_urgent_waiting() -> None:
    turns = CpuTurns()
    order: list[str] = []
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with turns.turn(Urgency.DECISION):
            held.set()
            release.wait(5)

    def waiter(name: str, urgency: Urgency) -> None:
        with turns.turn(urgency):
            order.append(name)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    held.wait(5)
    for name, urgency in [
        ("background", Urgency.BACKGROUND),
        ("decision", Urgency.DECISION),
        ("voice", Urgency.VOICE),
        ("hearing", Urgency.HEARING),
    ]:
        t = threading.Thread(target=waiter, args=(name, urgency))
        t.start()
        threads.append(t)
        while turns.waiting < len(threads) - 1:
            time.sleep(0.001)
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["voice", "hearing", "decision", "background"]
    assert turns.waiting == 0


def test_work_left_behind_by_a_closed_loop_does_not_stop_the_thread() -> None:
    worker = ModelWorker("unit")

    async def leave_early() -> None:
        async for _ in worker.stream(lambda: counting([]), StopFlag(), maxsize=2):
            break  # no aclosing: the stream is left to the garbage collector

    asyncio.run(leave_early())  # the loop closes while the thread still makes items
    time.sleep(0.05)
    assert asyncio.run(worker.run(lambda: "still serving")) == "still serving"
    worker.close()
