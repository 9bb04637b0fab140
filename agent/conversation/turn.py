"""The bot's reply as it is being written: tokens grouped into speakable sentences.

Speaking starts as soon as the first sentence is complete, while the model
writes the next one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator

# A sentence ends at . ! ? (or a line break) followed by a space, unless the
# period belongs to a common abbreviation or a number like 9.99.
_END = re.compile(r"([.!?]+[\"')\]]*|\n)\s")
_ABBREVIATIONS = ("mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "vs.", "etc.", "no.")
MIN_CHARS = 12
# The first piece may end at a clause (comma, colon, semicolon) once it is this
# long: the agent starts speaking sooner, and Piper phrases a clause well.
FIRST_CLAUSE_CHARS = 28
_CLAUSE = re.compile(r"[,;:]\s")


def _split_point(text: str) -> int | None:
    for match in _END.finditer(text):
        end = match.end(1)
        head = text[:end].strip()
        if len(head) < MIN_CHARS:
            continue
        if head.lower().endswith(_ABBREVIATIONS):
            continue
        return end
    return None


def _first_clause(text: str) -> int | None:
    for match in _CLAUSE.finditer(text):
        if match.start() + 1 >= FIRST_CLAUSE_CHARS:
            return match.start() + 1
    return None


async def sentences(tokens: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """Groups streamed tokens into sentences; the rest comes out when the stream ends.

    The first piece may be a long enough clause rather than a whole sentence.
    """
    buffer = ""
    first = True
    async for token in tokens:
        buffer += token
        if first and (cut := _split_point(buffer) or _first_clause(buffer)) is not None:
            first = False
            sentence, buffer = buffer[:cut].strip(), buffer[cut:]
            if sentence:
                yield sentence
        while (cut := _split_point(buffer)) is not None:
            sentence, buffer = buffer[:cut].strip(), buffer[cut:]
            if sentence:
                yield sentence
    tail = buffer.strip()
    if tail:
        yield tail
