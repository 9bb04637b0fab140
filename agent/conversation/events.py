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
    """One agent turn, from the end of the caller's speech to the first audio out.

    ``first_audio`` is the answer's; ``acknowledged`` is when a short
    acknowledgement (``acknowledgement_s`` long) started while the answer was
    still being decided, if one was said.
    """

    turn: int
    end_of_speech: float
    stt_done: float
    first_token: float
    first_audio: float
    acknowledged: float | None = None
    acknowledgement_s: float = 0.0

    @property
    def response_s(self) -> float:
        """End of the caller's speech to the first sound of the agent's reply."""
        first = self.first_audio if self.acknowledged is None else self.acknowledged
        return min(first, self.first_audio) - self.end_of_speech

    @property
    def answer_s(self) -> float:
        """End of the caller's speech to the answer's first audio (after any acknowledgement)."""
        if self.acknowledged is None:
            return self.first_audio - self.end_of_speech
        after_ack = self.acknowledged + self.acknowledgement_s
        return max(self.first_audio, after_ack) - self.end_of_speech


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
