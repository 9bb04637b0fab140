"""What a plan's effects do in the world, and what a call leaves behind.

A :class:`~agent.conversation.policy.TurnPlan` only says what should happen;
a :class:`CallActions` makes it happen (the database, the telephone, the
text sender). The reply awaits each one before the next effect, so the
do-not-call entry is committed before its confirmation is spoken.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.conversation.policy import CallNote, TurnPlan

log = logging.getLogger(__name__)


class CallActions(Protocol):
    """The side effects one call may have; each returns once it is done (or raises)."""

    async def add_do_not_call(self, why: str) -> None:
        """Puts the caller's number on the do-not-call list, committed on return."""
        ...

    async def send_checkout_link(self) -> bool:
        """Texts the checkout link; False when it may not be sent (no consent, no link)."""
        ...

    async def schedule_callback(self, at: dt.datetime) -> None:
        """Arranges the next call at ``at`` (aware)."""
        ...

    async def transfer(self, target: str) -> None:
        """Hands the caller to a person at ``target``."""
        ...

    async def hang_up(self) -> None:
        """Ends the call from the agent's side."""
        ...


class HangUpOnly:
    """Actions for a call with no campaign behind it: it can only be hung up."""

    def __init__(self, media: object) -> None:
        self.media = media

    async def add_do_not_call(self, why: str) -> None:
        log.warning("opt-out (%s) on a call with no campaign: no list to write to", why)

    async def send_checkout_link(self) -> bool:
        return False

    async def schedule_callback(self, at: dt.datetime) -> None:
        log.warning("callback asked on a call with no campaign: not scheduled")

    async def transfer(self, target: str) -> None:
        log.warning("transfer asked on a call with no campaign: not transferred")

    async def hang_up(self) -> None:
        await self.media.hangup()  # type: ignore[attr-defined]


@dataclass
class CallRecord:
    """The call's verdict as the plans go: one outcome, and a note per turn."""

    outcome: str | None = None
    notes: list[CallNote] = field(default_factory=list)
    callback_at: dt.datetime | None = None
    link_sent: bool = False

    def add(self, plan: TurnPlan) -> None:
        self.notes.append(plan.note)
        if plan.outcome is not None and self.outcome is None:
            self.outcome = plan.outcome

    def note(self) -> dict[str, Any]:
        """The note kept with the call: the last thing said, the objection, the next step."""
        last = self.notes[-1] if self.notes else None
        objection = next((n.objection for n in reversed(self.notes) if n.objection), None)
        note: dict[str, Any] = {
            "customer_said": last.customer_said if last else "",
            "intent": last.intent if last else "",
            "objection": objection,
            "next_step": last.next_step if last else "none",
            "intents": [n.intent for n in self.notes],
            "link_sent": self.link_sent,
        }
        if self.callback_at is not None:
            note["callback_at"] = self.callback_at.isoformat()
        return note


__all__ = ["CallActions", "CallRecord", "HangUpOnly"]
