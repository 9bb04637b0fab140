"""What the dialogue policy decides for one turn: a plan of effects, in order.

A :class:`TurnPlan` does nothing by itself; the call performs its effects one
after the other (:mod:`agent.conversation.reply`), the text evaluation only
reads them (scripts/eval_dialogue.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from agent.conversation.actions import Reason
from agent.conversation.checks import Problem

Outcome = Literal[
    "opted_out",
    "purchased",
    "wrong_person",
    "not_interested",
    "completed",
    "callback",
    "transferred",
    "voicemail",
]


@dataclass(frozen=True)
class Speak:
    text: str


@dataclass(frozen=True)
class AddToDoNotCall:
    """Put the number on the do-not-call list, before anything else is said."""

    why: Literal["phrase", "key", "model"]


@dataclass(frozen=True)
class SendCheckoutSms:
    """Text the checkout link (the sender checks SMS consent)."""


@dataclass(frozen=True)
class ScheduleCall:
    at: dt.datetime  # aware, in the customer's time zone


@dataclass(frozen=True)
class Transfer:
    target: str


@dataclass(frozen=True)
class HangUp:
    outcome: Outcome


Effect = Speak | AddToDoNotCall | SendCheckoutSms | ScheduleCall | Transfer | HangUp


@dataclass(frozen=True)
class CallNote:
    """A short structured note of the turn, kept with the call (never logged)."""

    customer_said: str
    intent: str
    objection: Reason | None = None
    next_step: str = "continue"


@dataclass(frozen=True)
class TurnPlan:
    """What the agent does for one turn, in order; ``outcome`` set when the call ends."""

    action: str
    source: Literal["rule", "model"]
    effects: tuple[Effect, ...]
    note: CallNote
    outcome: Outcome | None = None
    problems: tuple[Problem, ...] = field(default=())

    @property
    def say(self) -> str:
        return " ".join(e.text for e in self.effects if isinstance(e, Speak))


__all__ = [
    "AddToDoNotCall",
    "CallNote",
    "Effect",
    "HangUp",
    "Outcome",
    "ScheduleCall",
    "SendCheckoutSms",
    "Speak",
    "Transfer",
    "TurnPlan",
]
