from __future__ import annotations

from collections.abc import AsyncIterator

from agent.conversation.turn import sentences


async def _tokens(text: str, size: int = 3) -> AsyncIterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


async def _collect(text: str) -> list[str]:
    return [s async for s in sentences(_tokens(text))]


async def test_splits_at_sentence_ends() -> None:
    assert await _collect("Hi, this is Ava from Acme. Did you mean to leave? Great! Bye") == [
        "Hi, this is Ava from Acme.",
        "Did you mean to leave?",
        "Great! Bye",  # a fragment too short to speak alone joins the next
    ]


async def test_numbers_and_abbreviations_do_not_split() -> None:
    text = "The total is $49.99 with shipping. Mrs. Lee asked e.g. twice. Thanks."
    assert await _collect(text) == [
        "The total is $49.99 with shipping.",
        "Mrs. Lee asked e.g. twice.",
        "Thanks.",
    ]


async def test_the_first_sentence_comes_before_the_stream_ends() -> None:
    seen: list[str] = []

    async def tokens() -> AsyncIterator[str]:
        for t in ["Sure, I can help ", "with that. ", "Let me ", "check."]:
            seen.append(t)
            yield t

    out = []
    async for s in sentences(tokens()):
        out.append((s, len(seen)))
    # Spoken after the second token, before the model wrote the rest.
    assert out[0] == ("Sure, I can help with that.", 2)


async def test_a_long_first_clause_is_spoken_before_its_sentence_ends() -> None:
    text = "Sure thing, I can send you the link, and the code is still valid. Anything else?"
    assert await _collect(text) == [
        "Sure thing, I can send you the link,",
        "and the code is still valid.",
        "Anything else?",
    ]
