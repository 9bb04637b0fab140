"""The four small contracts of the speech pipeline. Backends and fakes both fit them."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.speech.worker import StopFlag

VAD_RATE = 16000
VAD_WINDOW_SAMPLES = 512  # 32 ms at 16 kHz


class VadStream(Protocol):
    """One call's voice-activity detector (it keeps per-call state)."""

    def probability(self, window: bytes) -> float:
        """Speech probability of one 32 ms window of 16 kHz 16-bit PCM."""
        ...


class Vad(Protocol):
    def stream(self) -> VadStream: ...


@dataclass(frozen=True)
class Transcript:
    text: str
    audio_s: float
    seconds: float  # time the model took


class Stt(Protocol):
    async def transcribe(self, pcm16k: bytes) -> Transcript:
        """Text of one caller turn (16 kHz 16-bit mono PCM)."""
        ...


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


class Llm(Protocol):
    def stream_reply(
        self, messages: Sequence[ChatMessage], stop: StopFlag, *, background: bool = False
    ) -> AsyncGenerator[str, None]:
        """The reply's text as it is written, token by token.

        ``background``: work no one waits for (reading a call ahead, warming
        up), which goes after every decision that waits.
        """
        ...

    async def choose(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], stop: StopFlag
    ) -> str:
        """One complete JSON object that follows ``schema`` (a JSON schema).

        The backend constrains the model to the schema where it can. Setting
        ``stop`` ends the work early; what was written by then is returned.
        """
        ...


@dataclass(frozen=True)
class SpeechChunk:
    pcm: bytes  # 16-bit mono at ``rate``
    rate: int


class Tts(Protocol):
    def synthesize(self, text: str, stop: StopFlag) -> AsyncGenerator[SpeechChunk, None]:
        """Audio for ``text``, chunk by chunk, at the voice's own rate."""
        ...
