"""What a call session reports as it goes: typed events with monotonic timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Said:
    """A line of the conversation: the caller's transcript or the agent's words."""

    who: Literal["caller", "agent"]
    text: str
    at: float


@dataclass(frozen=True)
class TurnTimings:
    """One agent turn, from the end of the caller's speech to the first audio out."""

    turn: int
    end_of_speech: float
    stt_done: float
    first_token: float
    first_audio: float

    @property
    def response_s(self) -> float:
        return self.first_audio - self.end_of_speech


@dataclass(frozen=True)
class BargeIn:
    """The caller spoke over the agent: its audio was cut, ``heard`` is what got through."""

    at: float
    dropped_ms: int
    heard: str


@dataclass(frozen=True)
class CallEnded:
    at: float


SessionEvent = Said | TurnTimings | BargeIn | CallEnded
