"""What a simulated customer does on a call: a scenario of timed steps.

Scenarios are plain data, so a test or the demo states a customer's behaviour
in a few lines: answer after ringing, say a line, pause, press keys, hang up
mid-sentence, stay silent, play a voicemail greeting, be busy, never answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Answer(StrEnum):
    """What the customer's phone does when the merchant calls."""

    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "noanswer"
    REJECT = "reject"


@dataclass(frozen=True)
class Say:
    """Speak a line: a WAV file, text (synthesised with espeak-ng) or raw 8 kHz PCM.

    ``hangup_after_s`` hangs up that many seconds into the line (mid-sentence).
    """

    text: str | None = None
    wav: Path | None = None
    pcm: bytes | None = None
    label: str = ""
    hangup_after_s: float | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.text, self.wav, self.pcm)) != 1:
            raise ValueError("Say needs exactly one of text, wav or pcm")


@dataclass(frozen=True)
class Pause:
    """Stay silent (while still sending silence frames, as a phone does)."""

    seconds: float


@dataclass(frozen=True)
class Dtmf:
    """Press keys; sent as RFC 4733 events through the simulator's Asterisk."""

    digits: str
    gap_s: float = 0.25


@dataclass(frozen=True)
class Hangup:
    """Hang up now."""


@dataclass(frozen=True)
class AwaitReply:
    """Listen like a person: wait until the agent has spoken and then paused.

    Waits for the agent's audio to start (up to ``timeout_s``), then for
    ``silence_s`` of quiet after it. After no more than ``short_s`` of agent
    audio (an "Okay." while the agent thinks) a person expects more to come:
    then the quiet waited for is ``after_short_s``.
    """

    silence_s: float = 1.2
    timeout_s: float = 20.0
    short_s: float = 1.0
    after_short_s: float = 4.0


Step = Say | Pause | Dtmf | Hangup | AwaitReply


@dataclass(frozen=True)
class Scenario:
    """One customer's behaviour on one call.

    After the last step the customer stays on the line, silent, until the
    merchant hangs up or ``max_call_s`` passes (then the customer hangs up).
    """

    answer: Answer = Answer.ANSWER
    ring_s: float = 0.0
    steps: tuple[Step, ...] = ()
    max_call_s: float = 60.0
    name: str = ""


VOICEMAIL_GREETING = (
    "Hi, you have reached the voicemail of Jordan Baker. I am not able to take your call "
    "right now. Please leave your name, your number and a short message after the tone, "
    "and I will get back to you as soon as I can."
)


def voicemail(beep: bytes) -> Scenario:
    """A voicemail box: a long greeting, a beep, then silence while it records."""
    return Scenario(
        steps=(
            Say(text=VOICEMAIL_GREETING, label="greeting"),
            Say(pcm=beep, label="beep"),
            Pause(20.0),
            Hangup(),
        ),
        name="voicemail",
    )


def human_hello() -> Scenario:
    """A person who answers with a short "Hello?" and then waits."""
    return Scenario(steps=(Say(text="Hello?", label="hello"), Pause(8.0), Hangup()), name="hello")


@dataclass
class ScenarioBook:
    """Scenarios by dialled number, with a default for numbers not listed."""

    by_number: dict[str, Scenario] = field(default_factory=dict)
    by_name: dict[str, Scenario] = field(default_factory=dict)
    default: Scenario = field(default_factory=human_hello)
    # Scenarios for a number's next calls, in order (e.g. busy, then answer the retry).
    queued: dict[str, list[Scenario]] = field(default_factory=dict)

    def add(self, number: str, scenario: Scenario) -> None:
        self.by_number[number.lstrip("+")] = scenario

    def add_sequence(self, number: str, *scenarios: Scenario) -> None:
        """The number's next calls follow ``scenarios`` in turn; the last one then stays."""
        key = number.lstrip("+")
        self.queued[key] = list(scenarios[:-1])
        self.by_number[key] = scenarios[-1]

    def find(self, number: str, name: str | None = None) -> Scenario:
        if name and name in self.by_name:
            return self.by_name[name]
        key = number.lstrip("+")
        queue = self.queued.get(key)
        if queue:
            return queue.pop(0)
        return self.by_number.get(key, self.default)
