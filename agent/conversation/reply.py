"""The agent's answer to one caller turn: transcribe, think, speak, stream all the way.

A reply may start speculatively, when the caller has probably finished: it
transcribes and lets the model start writing, but says nothing until the
session confirms the turn is over (:meth:`Reply.go`). Cancelling a reply stops
its model work between tokens and chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from agent.audio.resample import resample
from agent.conversation.events import Said, SessionEvent, TurnTimings
from agent.conversation.turn import sentences
from agent.speech.models import TELEPHONE_RATE, Speech
from agent.speech.protocols import ChatMessage
from agent.speech.worker import StopFlag

LEAD_MS = 40  # audio the pacer has already written ahead: heard even when cleared

__all__ = ["Reply", "Speech"]


def heard_part(spoken: list[tuple[str, float]], dropped_ms: int) -> str:
    """The words of ``spoken`` (text, ms) that played before the last ``dropped_ms`` were cut.

    Words within a sentence are assumed evenly spread: good enough to keep the
    model's history honest about what the caller heard.
    """
    total = sum(ms for _, ms in spoken)
    heard_ms = max(0.0, total - dropped_ms + LEAD_MS)
    words: list[str] = []
    elapsed = 0.0
    for text, ms in spoken:
        if elapsed + ms <= heard_ms:
            words += text.split()
        else:
            part = text.split()
            share = max(0.0, (heard_ms - elapsed) / ms) if ms else 0.0
            words += part[: int(len(part) * share)]
            break
        elapsed += ms
    return " ".join(words)


@dataclass
class _Spoken:
    text: str
    ms: float


@dataclass
class Reply:
    turn: int
    utterance: bytes
    speech: Speech
    media: object
    history: list[ChatMessage]
    system_prompt: str
    clock: Callable[[], float]
    emit: Callable[[SessionEvent], None]
    speculative: bool
    end_of_speech: float
    finished: bool = False
    transcript: str = ""
    _stop: StopFlag = field(default_factory=StopFlag)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _spoken: list[_Spoken] = field(default_factory=list)
    _play_until: float = 0.0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def go(self) -> None:
        """The caller's turn is over: the reply may speak."""
        self.speculative = False
        self._go.set()

    @property
    def speaking(self) -> bool:
        return bool(self._spoken) and (not self.finished or self.clock() < self._play_until)

    async def cancel(self) -> None:
        self._stop.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def heard_text(self, dropped_ms: int) -> str:
        """What the caller heard of this reply, when ``dropped_ms`` of it were cut."""
        return heard_part([(s.text, s.ms) for s in self._spoken], dropped_ms)

    async def _run(self) -> None:
        try:
            await self._respond()
        finally:
            self.finished = True

    async def _respond(self) -> None:
        transcript = await self.speech.stt.transcribe(self.utterance)
        stt_done = self.clock()
        self.transcript = transcript.text.strip()
        if not self.transcript:
            return
        messages = [
            ChatMessage("system", self.system_prompt),
            *self.history,
            ChatMessage("user", self.transcript),
        ]
        first_token: list[float] = []

        async def timed(tokens: AsyncIterator[str]) -> AsyncIterator[str]:
            async for token in tokens:
                if not first_token:
                    first_token.append(self.clock())
                yield token

        said: list[str] = []
        tokens = self.speech.llm.stream_reply(messages, self._stop)
        async with contextlib.aclosing(sentences(timed(tokens))) as stream:
            async for sentence in stream:
                if not said:
                    await self._go.wait()
                    self.history.append(ChatMessage("user", self.transcript))
                    self.emit(Said("caller", self.transcript, self.end_of_speech))
                await self._speak(sentence, stt_done, first_token)
                said.append(sentence)
        if said:
            text = " ".join(said)
            self.history.append(ChatMessage("assistant", text))
            self.emit(Said("agent", text, self.clock()))

    async def _speak(self, sentence: str, stt_done: float, first_token: list[float]) -> None:
        chunks = self.speech.tts.synthesize(sentence, self._stop)
        async with contextlib.aclosing(chunks) as stream:
            async for chunk in stream:
                pcm = resample(chunk.pcm, chunk.rate, TELEPHONE_RATE)
                if not self._spoken:
                    now = self.clock()
                    self.emit(
                        TurnTimings(
                            self.turn,
                            self.end_of_speech,
                            stt_done,
                            first_token[0] if first_token else now,
                            now,
                        )
                    )
                self.media.play(pcm)  # type: ignore[attr-defined]
                ms = len(pcm) / 16
                self._spoken.append(_Spoken(sentence, ms))
                self._play_until = max(self._play_until, self.clock()) + ms / 1000
