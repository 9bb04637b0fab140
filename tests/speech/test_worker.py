from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from agent.speech.worker import ModelWorker, StopFlag


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
