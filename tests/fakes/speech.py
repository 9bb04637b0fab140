"""Fakes of the four speech models, and an in-memory call with a real pacer."""

from __future__ import annotations

import array
import asyncio
import math
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.audio.pacer import Pacer
from agent.speech.models import Speech
from agent.speech.protocols import ChatMessage, SpeechChunk, Transcript
from agent.speech.worker import StopFlag


def tone(seconds: float, freq: float = 300.0, rate: int = 8000, amp: int = 8000) -> bytes:
    n = int(seconds * rate)
    return array.array(
        "h", (int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    ).tobytes()


def loud(pcm: bytes) -> bool:
    samples = array.array("h", pcm)
    return bool(samples) and max(abs(s) for s in samples) > 1000


class FakeVadStream:
    def probability(self, window: bytes) -> float:
        return 1.0 if loud(window) else 0.0


class FakeVad:
    def stream(self) -> FakeVadStream:
        return FakeVadStream()


@dataclass
class FakeStt:
    """Answers each transcription with the next text; records when it was asked."""

    texts: list[str]
    delay_s: float = 0.05
    calls: list[tuple[float, int]] = field(default_factory=list)

    async def transcribe(self, pcm16k: bytes) -> Transcript:
        self.calls.append((time.monotonic(), len(pcm16k)))
        text = self.texts.pop(0) if self.texts else ""
        await asyncio.sleep(self.delay_s)
        return Transcript(text, len(pcm16k) / 32000, self.delay_s)


@dataclass
class FakeLlm:
    """Writes ``reply`` word by word; notes whether it was stopped early.

    :meth:`choose` answers with the scripted ``choices``, one per call, in order
    (``{"action": "end_call"}`` once they run out), and keeps what it was asked.
    """

    reply: str = ""
    token_s: float = 0.02
    requests: list[list[ChatMessage]] = field(default_factory=list)
    background: list[bool] = field(default_factory=list)  # each request's ``background``
    stop_flags: list[StopFlag] = field(default_factory=list)  # each request's ``stop``
    stopped_early: int = 0
    choices: list[str] = field(default_factory=list)
    choose_requests: list[tuple[list[ChatMessage], dict[str, Any]]] = field(default_factory=list)
    choose_s: float = 0.0  # how long a choice takes
    stopped_choices: int = 0  # choices whose stop flag was set before they finished

    async def choose(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], stop: StopFlag
    ) -> str:
        self.choose_requests.append((list(messages), schema))
        try:
            await asyncio.sleep(self.choose_s)
        finally:
            if stop.is_set:
                self.stopped_choices += 1
        return self.choices.pop(0) if self.choices else '{"action": "end_call"}'

    @property
    def prompts(self) -> str:
        """Everything :meth:`stream_reply` and :meth:`choose` were shown, as one text."""
        shown = [m for ms in self.requests for m in ms]
        shown += [m for ms, _ in self.choose_requests for m in ms]
        return "\n".join(m.content for m in shown)

    async def stream_reply(
        self, messages: Sequence[ChatMessage], stop: StopFlag, *, background: bool = False
    ) -> AsyncGenerator[str, None]:
        self.requests.append(list(messages))
        self.background.append(background)
        self.stop_flags.append(stop)
        words = self.reply.split(" ")
        finished = False
        try:
            for i, word in enumerate(words):
                if stop.is_set:
                    return
                await asyncio.sleep(self.token_s)
                yield word + (" " if i < len(words) - 1 else "")
            finished = True
        finally:
            if not finished:
                self.stopped_early += 1


@dataclass
class FakeTts:
    """Speaks 120 ms of tone per word, at 8 kHz."""

    ms_per_word: int = 120
    texts: list[str] = field(default_factory=list)

    async def synthesize(self, text: str, stop: StopFlag) -> AsyncGenerator[SpeechChunk, None]:
        self.texts.append(text)
        await asyncio.sleep(0.01)
        yield SpeechChunk(tone(len(text.split()) * self.ms_per_word / 1000, 440), 8000)


def fake_speech(stt_texts: list[str], reply: str) -> Speech:
    return Speech(FakeVad(), FakeStt(stt_texts), FakeLlm(reply), FakeTts())


class FakeCall:
    """A call in memory: caller frames go in, the agent's audio comes out paced in real time."""

    def __init__(self) -> None:
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.out: list[tuple[float, bytes]] = []
        self.pacer = Pacer(self._sink)
        self._closed = asyncio.Event()
        self._pacing: asyncio.Task[None] | None = None
        self.hung_up = False
        self.digits: asyncio.Queue[str | None] = asyncio.Queue()

    async def _sink(self, frame: bytes) -> None:
        self.out.append((time.monotonic(), frame))

    def start(self) -> None:
        self._pacing = asyncio.get_running_loop().create_task(self.pacer.run())

    async def audio(self) -> AsyncGenerator[bytes, None]:
        while (frame := await self._frames.get()) is not None:
            yield frame

    async def dtmf(self) -> AsyncGenerator[str, None]:
        while (digit := await self.digits.get()) is not None:
            yield digit

    def play(self, pcm: bytes) -> None:
        self.pacer.push(pcm)

    def clear_playout(self) -> int:
        return self.pacer.clear()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def hangup(self) -> None:
        self.hung_up = True
        await self.close()

    async def close(self) -> None:
        self._closed.set()
        self._frames.put_nowait(None)
        self.digits.put_nowait(None)
        if self._pacing is not None:
            self._pacing.cancel()
            await asyncio.gather(self._pacing, return_exceptions=True)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def caller(self, *parts: tuple[str, float]) -> None:
        """Plays the caller in real time: ("speak" | "quiet", seconds) parts."""
        for kind, seconds in parts:
            frame = tone(0.02) if kind == "speak" else bytes(320)
            for _ in range(round(seconds / 0.02)):
                self._frames.put_nowait(frame)
                await asyncio.sleep(0.02)

    def loud_times(self) -> list[float]:
        return [t for t, f in self.out if loud(f)]
