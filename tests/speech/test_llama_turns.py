"""The real dialogue model takes CPU turns with the other models.

While it reads a long prompt (a call's first decision with nothing read ahead)
a transcript that comes in waits for one part of it, not for all of it; the
choice it makes is the one it makes alone; and reading ahead waits for a
decision asked after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import LlamaSettings
from agent.conversation.actions import action_schema
from agent.speech.llama import LlamaLlm
from agent.speech.protocols import ChatMessage
from agent.speech.weights import prepare_llm
from agent.speech.worker import CpuTurns, ModelWorker, StopFlag, Urgency

MODELS = Path(__file__).resolve().parents[2] / "models"
SCHEMA = action_schema([], link=True, transfer=False)
LONG = "You are Ava, calling for Acme about a trail tent left in the cart. " * 12


def asked(system: str, line: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", system),
        ChatMessage("assistant", "Hi, this is Ava from Acme."),
        ChatMessage("user", line),
    ]


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[LlamaLlm, ModelWorker, CpuTurns]]:
    prepare_llm(MODELS)
    turns = CpuTurns()
    llm = LlamaLlm(LlamaSettings(state_cache_mb=0), MODELS, turns)
    hearing = ModelWorker("hearing", Urgency.HEARING, turns)
    yield llm, hearing, turns
    llm._worker.close()
    hearing.close()


async def test_a_transcript_waits_for_a_part_of_a_long_prompt_only(
    shared: tuple[LlamaLlm, ModelWorker, CpuTurns],
) -> None:
    llm, hearing, _ = shared
    # The choice when the model has the CPU to itself.
    alone = await llm.choose(asked(LONG, "Can you send me the link?"), SCHEMA, StopFlag())

    messages = asked(LONG.replace("tent", "stove"), "Can you send me the link?")
    started = time.perf_counter()
    deciding = asyncio.ensure_future(llm.choose(messages, SCHEMA, StopFlag()))
    await asyncio.sleep(0.5)  # well inside reading the ~200 new tokens
    asked_at = time.perf_counter()
    ran_at = await hearing.run(time.perf_counter)
    choice = await deciding
    decision_s = time.perf_counter() - started

    waited = ran_at - asked_at
    assert decision_s > 2.0, decision_s  # a long read: the wait below means something
    # One part of the prompt (16 tokens) or one token, not the rest of the read.
    assert waited < decision_s / 3, (waited, decision_s)
    assert choice.replace("stove", "tent") == alone.replace("stove", "tent")


async def test_reading_ahead_waits_for_a_decision(
    shared: tuple[LlamaLlm, ModelWorker, CpuTurns],
) -> None:
    llm, _, _ = shared
    order: list[str] = []

    async def decide(system: str, name: str) -> None:
        await llm.choose(asked(system, "I already bought it."), SCHEMA, StopFlag())
        order.append(name)

    async def read_ahead() -> None:
        reading = llm.stream_reply(asked(LONG, "Hello?")[:2], StopFlag(), background=True)
        async with contextlib.aclosing(reading) as tokens:
            async for _ in tokens:
                break
        order.append("read ahead")

    first = asyncio.ensure_future(decide(LONG.replace("tent", "lamp"), "first decision"))
    await asyncio.sleep(0.2)  # the model's thread is busy with it
    ahead = asyncio.ensure_future(read_ahead())
    await asyncio.sleep(0.1)  # asked before the next decision, which goes first
    await asyncio.gather(first, ahead, decide(LONG, "next decision"))
    assert order == ["first decision", "next decision", "read ahead"]
