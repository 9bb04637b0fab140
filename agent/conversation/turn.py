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


async def sentences(tokens: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """Groups streamed tokens into sentences; the rest comes out when the stream ends."""
    buffer = ""
    async for token in tokens:
        buffer += token
        while (cut := _split_point(buffer)) is not None:
            sentence, buffer = buffer[:cut].strip(), buffer[cut:]
            if sentence:
                yield sentence
    tail = buffer.strip()
    if tail:
        yield tail
