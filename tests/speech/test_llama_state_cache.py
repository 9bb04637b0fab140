"""The model-state cache with the real default model: calls that take turns on one model.

Two calls with different prompts alternate, as simultaneous calls do. With the
cache each call's next decision resumes its own saved state instead of reading
its whole prompt again, gives the same (greedy) choice, and the cache holds what
it counts: KV states without the 300 MB logits copy llama-cpp-python saves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import LlamaSettings
from agent.conversation.actions import action_schema
from agent.speech.llama import LlamaLlm
from agent.speech.protocols import ChatMessage
from agent.speech.weights import prepare_llm
from agent.speech.worker import StopFlag

MODELS = Path(__file__).resolve().parents[2] / "models"
SCHEMA = action_schema([], link=True, transfer=False)
PROMPTS = {
    "a": "You are Ava, calling for Acme about a trail tent left in the cart. " * 6,
    "b": "You are Bo, calling for Zed about running shoes left in the cart. " * 6,
}
LINES = ["Can you send me the link?", "I already bought it."]


@pytest.fixture(scope="module")
def models() -> Iterator[dict[str, LlamaLlm]]:
    prepare_llm(MODELS)
    pair = {
        "cached": LlamaLlm(LlamaSettings(state_cache_mb=64), MODELS),
        "plain": LlamaLlm(LlamaSettings(state_cache_mb=0), MODELS),
    }
    yield pair
    for model in pair.values():
        model._worker.close()


async def alternate(llm: LlamaLlm) -> tuple[list[str], list[float]]:
    """Both calls' decisions, turn by turn; the seconds each took after the first round."""
    history = {k: [ChatMessage("system", p)] for k, p in PROMPTS.items()}
    choices, seconds = [], []
    for turn, line in enumerate(LINES):
        for call in ("a", "b"):
            asked = [*history[call], ChatMessage("user", line)]
            started = time.perf_counter()
            choices.append(await llm.choose(asked, SCHEMA, StopFlag()))
            if turn:
                seconds.append(time.perf_counter() - started)
            history[call] = [*asked, ChatMessage("assistant", "Sure.")]
    return choices, seconds


async def test_alternating_calls_resume_their_own_state(
    models: dict[str, LlamaLlm], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = models["cached"]
    inner: Any = cached._llm
    loads = 0
    load_state = inner.load_state

    def counting(state: Any) -> None:
        nonlocal loads
        loads += 1
        load_state(state)

    monkeypatch.setattr(inner, "load_state", counting)
    with_cache, fast = await alternate(cached)
    without, slow = await alternate(models["plain"])
    assert with_cache == without  # the same greedy choices either way
    assert loads >= 2  # each call's second turn resumed its own state
    # Each resumed turn reads only its new line, not the whole prompt again.
    assert sum(fast) < 0.6 * sum(slow)
    states = inner.cache.cache_state.values()
    assert states and all(s.scores.size == 1 for s in states)
    # Saved without copying the logits buffer first (~300 MB: up to 0.27 s a save).
    assert inner.save_state().scores.size == 1
    assert inner.cache.cache_size <= 64 << 20
