"""Conversations for every call: a session prepared before dialling, run when the audio connects."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.config import TurnSettings
from agent.conversation.events import SessionEvent
from agent.conversation.session import CallSession, Policy
from agent.speech.models import Speech
from agent.telephony.audiosocket import AudioSocketCall
from agent.telephony.dialer import PlacedCall

if TYPE_CHECKING:
    from agent.app import Telephony


class Conversations:
    """The media handler that gives each call its :class:`CallSession`.

    For a call Cartline places, the greeting is synthesised before the number is
    dialled, so it starts the moment the customer's audio connects. A call that
    comes in gets its session when its audio connects.
    """

    def __init__(self, speech: Speech, policy: Policy, turn: TurnSettings) -> None:
        self.speech = speech
        self.policy = policy
        self.turn = turn
        self.sessions: dict[str, CallSession] = {}

    def _session(self, on_event: Callable[[SessionEvent], None] | None = None) -> CallSession:
        # The media arrives later; the session only needs it once it runs.
        return CallSession(None, self.speech, self.policy, self.turn, on_event=on_event)  # type: ignore[arg-type]

    async def place(
        self,
        telephony: Telephony,
        number: str,
        *,
        amd: bool | None = None,
        record: bool | None = None,
        call_id: str | None = None,
        on_event: Callable[[SessionEvent], None] | None = None,
    ) -> tuple[PlacedCall, CallSession]:
        """Prepares a session, then dials ``number``; ``on_event`` hears what is said."""
        session = self._session(on_event)
        await session.prepare()
        placed = await telephony.dialer.place(number, amd=amd, record=record, call_id=call_id)
        self.sessions[placed.call_id] = session
        return placed, session

    async def __call__(self, conn: AudioSocketCall, call: PlacedCall | None) -> None:
        key = call.call_id if call is not None else str(conn.uuid)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = self._session()
        session.media = conn
        await session.run()
