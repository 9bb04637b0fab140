"""Conversations for every call: a session prepared before dialling, run when the audio connects."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.config import TurnSettings
from agent.conversation.events import SessionEvent
from agent.conversation.performers import CallActions
from agent.conversation.session import CallSession, Policy
from agent.speech.models import Speech
from agent.telephony.audiosocket import AudioSocketCall
from agent.telephony.dialer import PlacedCall
from agent.telephony.outcomes import Amd

if TYPE_CHECKING:
    from agent.app import Telephony


class Conversations:
    """The media handler that gives each call its :class:`CallSession`.

    For a call Cartline places, the greeting is synthesised before the number is
    dialled, so it starts the moment the customer's audio connects; a call an
    answering machine took gets the policy's voicemail plan instead. A call that
    comes in gets the session :meth:`expect` prepared for its media id, or one
    with ``policy``, the default, when nobody prepared one.
    """

    def __init__(self, speech: Speech, policy: Policy, turn: TurnSettings) -> None:
        self.speech = speech
        self.policy = policy
        self.turn = turn
        self.sessions: dict[str, CallSession] = {}

    def _session(
        self,
        policy: Policy | None = None,
        actions: CallActions | None = None,
        on_event: Callable[[SessionEvent], None] | None = None,
    ) -> CallSession:
        # The media arrives later; the session only needs it once it runs.
        return CallSession(
            None,  # type: ignore[arg-type]
            self.speech,
            policy or self.policy,
            self.turn,
            on_event=on_event,
            actions=actions,
        )

    async def place(
        self,
        telephony: Telephony,
        number: str,
        *,
        policy: Policy | None = None,
        actions: CallActions | None = None,
        amd: bool | None = None,
        record: bool | None = None,
        call_id: str | None = None,
        on_event: Callable[[SessionEvent], None] | None = None,
    ) -> tuple[PlacedCall, CallSession]:
        """Prepares a session, then dials ``number``; ``on_event`` hears what is said."""
        session = self._session(policy, actions, on_event)
        await session.prepare()
        placed = await telephony.dialer.place(number, amd=amd, record=record, call_id=call_id)
        self.sessions[placed.call_id] = session
        return placed, session

    def expect(self, media_id: str, policy: Policy, actions: CallActions | None = None) -> None:
        """Prepares the session of an inbound call whose audio will connect as ``media_id``."""
        self.sessions[media_id] = self._session(policy, actions)

    async def __call__(self, conn: AudioSocketCall, call: PlacedCall | None) -> None:
        key = call.call_id if call is not None else str(conn.uuid)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = self._session()
        session.media = conn
        voicemail = call is not None and call.outcome.amd == Amd.MACHINE
        try:
            await session.run(voicemail=voicemail)
        finally:
            if call is None:
                self.sessions.pop(key, None)
