"""End-of-turn detection as a pure state machine: speech probabilities in, events out.

No I/O and no clock: time is counted in the audio fed to it, so the same input
always gives the same events. It answers three questions for the call session:
did the caller start speaking (long enough to count, not a click or a cough),
is the caller's turn probably over (early enough to start work speculatively),
and is it certainly over.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Segment(enum.Enum):
    SPEECH_STARTED = "speech_started"
    # The silence is long enough that the turn is likely over: start thinking.
    TURN_LIKELY_OVER = "turn_likely_over"
    # The caller resumed speaking after TURN_LIKELY_OVER: drop that work.
    TURN_RESUMED = "turn_resumed"
    TURN_OVER = "turn_over"


@dataclass(frozen=True)
class SegmenterSettings:
    threshold: float = 0.5
    # Hysteresis: once speaking, a frame counts as speech down to this level.
    release_threshold: float = 0.35
    min_speech_ms: int = 200
    # Dips this short inside the first syllables do not restart the count towards
    # min_speech_ms: a word's onset often flickers around the threshold.
    onset_gap_ms: int = 96
    likely_over_ms: int = 300
    end_silence_ms: int = 700


class Segmenter:
    """Feeds on (probability, duration) pairs; returns the events each one causes."""

    def __init__(self, settings: SegmenterSettings | None = None) -> None:
        self.s = settings or SegmenterSettings()
        self.reset()

    def reset(self) -> None:
        """Forgets the current turn (after the agent hangs up or the call restarts)."""
        self._speech_ms = 0
        self._silence_ms = 0
        self._in_turn = False
        self._likely_sent = False
        self._candidate_ms = 0
        self._candidate_gap_ms = 0

    @property
    def in_turn(self) -> bool:
        """True between SPEECH_STARTED and TURN_OVER."""
        return self._in_turn

    @property
    def speech_ms(self) -> int:
        """Speech heard in the current turn so far (or in the current candidate)."""
        return self._speech_ms if self._in_turn else self._candidate_ms

    def feed(self, probability: float, duration_ms: int) -> list[Segment]:
        events: list[Segment] = []
        s = self.s
        # Hysteresis: once a turn, or a candidate for one, has begun, a frame counts as
        # speech down to the release threshold (soft words hover around the threshold).
        started = self._in_turn or self._candidate_ms > 0
        speaking = probability >= (s.release_threshold if started else s.threshold)
        if not self._in_turn:
            if speaking:
                self._candidate_ms += duration_ms
                self._candidate_gap_ms = 0
                if self._candidate_ms >= s.min_speech_ms:
                    self._in_turn = True
                    self._speech_ms = self._candidate_ms
                    self._silence_ms = 0
                    events.append(Segment.SPEECH_STARTED)
            elif self._candidate_ms:
                self._candidate_gap_ms += duration_ms
                if self._candidate_gap_ms > s.onset_gap_ms:
                    # A short blip that never reached min_speech_ms: forget it.
                    self._candidate_ms = 0
                    self._candidate_gap_ms = 0
            return events
        if speaking:
            self._speech_ms += duration_ms
            if self._likely_sent:
                self._likely_sent = False
                events.append(Segment.TURN_RESUMED)
            self._silence_ms = 0
            return events
        self._silence_ms += duration_ms
        if not self._likely_sent and self._silence_ms >= s.likely_over_ms:
            self._likely_sent = True
            events.append(Segment.TURN_LIKELY_OVER)
        if self._silence_ms >= s.end_silence_ms:
            events.append(Segment.TURN_OVER)
            self._in_turn = False
            self._likely_sent = False
            self._candidate_ms = 0
            self._candidate_gap_ms = 0
            self._speech_ms = 0
            self._silence_ms = 0
        return events


def should_interrupt(speech_ms: int, bot_speaking: bool, min_barge_in_ms: int = 400) -> bool:
    """Barge-in: the caller talked over the agent long enough to be more than a backchannel.

    "mm-hm", "yeah" and line noise are shorter than ``min_barge_in_ms`` and do not
    interrupt; a real interruption is.
    """
    return bot_speaking and speech_ms >= min_barge_in_ms
