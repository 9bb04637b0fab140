"""Campaign calls: the scheduler's call requests placed through the telephony core.

Each call gets its conversation (the campaign's script and the request's shared
fields) and the store's performers for its effects; its recording is sealed
once Asterisk has closed it; observers (the live view, the metrics, the demo's
terminal) follow it; and on shutdown a live call can be handed to a person.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from agent.campaigns.calling import StoreActions, policy_for
from agent.campaigns.placement import CallObserver, CallRequest, CallResult
from agent.conversation.calls import Conversations
from agent.conversation.session import CallSession
from agent.privacy.crypto import RECORDING_CONTEXT, DataKeys
from agent.store.tables import AttemptStatus
from agent.telephony.ami import AmiError
from agent.telephony.dialer import PlacedCall
from agent.telephony.dialplan import pbx_instance
from agent.telephony.outcomes import Amd, CallOutcome, CallStatus

if TYPE_CHECKING:
    from agent.app import Telephony

log = logging.getLogger(__name__)


_ATTEMPT_STATUS = {
    CallStatus.BUSY: AttemptStatus.BUSY,
    CallStatus.NO_ANSWER: AttemptStatus.NO_ANSWER,
}


def attempt_status(outcome: CallOutcome) -> AttemptStatus:
    """How the job queue sees a call's telephony outcome."""
    if outcome.answered:
        return AttemptStatus.VOICEMAIL if outcome.amd == Amd.MACHINE else AttemptStatus.ANSWERED
    return _ATTEMPT_STATUS.get(outcome.status, AttemptStatus.FAILED)


class CampaignCalls:
    """Places the scheduler's calls: the conversation is prepared, then the number dialled.

    Each call gets its own dialogue (the campaign's script and the request's
    shared fields) and ``make_actions``' performers for its effects.
    """

    def __init__(
        self,
        telephony: Telephony,
        conversations: Conversations,
        make_actions: Callable[[CallRequest], StoreActions],
    ) -> None:
        self.telephony = telephony
        self.conversations = conversations
        self.make_actions = make_actions
        # Set to seal each recording as soon as its call ends (encryption at rest).
        self.keys: DataKeys | None = None
        self.observers: list[CallObserver] = []
        # Live calls, with where a person answers for their campaign (None: nobody).
        self.live: dict[str, _LiveCall] = {}

    async def hand_over(self) -> int:
        """Transfers every live call that has a person to go to (shutdown); returns how many.

        A handed-over call's attempt ends at once, as answered and transferred: the
        customer talks on with a person, and the recording stops at the hand-over.
        """
        moved = 0
        for call_id, live in list(self.live.items()):
            if live.target is None or not live.placed.outcome.answered:
                continue
            try:
                await self.telephony.transfer(live.placed, live.target, stop_recording=True)
            except AmiError:
                log.warning("call %s: could not be handed over to a person", call_id)
                continue
            if live.session.record.outcome is None:
                live.session.record.outcome = "transferred"
            live.released.set()
            moved += 1
        if moved:
            log.info("handed %d live call(s) over to a person", moved)
        return moved

    def _notify(self, method: str, *args: object) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:
                log.exception("a call observer failed on %s", method)

    async def place_call(self, request: CallRequest) -> CallResult:
        call_id = f"cl-a{request.attempt_id}-{uuid.uuid4().hex[:12]}"
        self._notify("call_started", request, call_id)
        try:
            result = await self._place(request, call_id)
        except BaseException:
            self._notify("call_ended", request, CallResult(AttemptStatus.FAILED, call_id=call_id))
            raise
        self._notify("call_ended", request, result)
        return result

    async def _place(self, request: CallRequest, call_id: str) -> CallResult:
        s = self.telephony.settings
        campaign = next((c for c in s.campaigns if c.name == request.campaign), None)
        if campaign is None:
            log.warning(
                "attempt %d: campaign %s is not configured", request.attempt_id, request.campaign
            )
            return CallResult(AttemptStatus.FAILED, call_id=call_id)
        policy = policy_for(campaign, s.merchant, request, self.conversations.speech.llm)
        actions = self.make_actions(request)
        placed, session = await self.conversations.place(
            self.telephony,
            request.phone_e164,
            policy=policy,
            actions=actions,
            call_id=call_id,
            on_event=lambda event: self._notify("call_event", request, event),
        )
        actions.call = placed
        live = _LiveCall(placed, session, campaign.script.transfer_to)
        self.live[placed.call_id] = live
        try:
            outcome = await live.wait(s.trunk.ring_timeout_s + s.calls.max_call_s + 30)
        finally:
            self.conversations.sessions.pop(placed.call_id, None)
            self.live.pop(placed.call_id, None)
        ended = dt.datetime.now(dt.UTC)
        answered_at = None
        if outcome.answered and outcome.answered_at:
            lasted = (outcome.ended_at or time.monotonic()) - outcome.answered_at
            answered_at = ended - dt.timedelta(seconds=lasted)
        turns = [
            {"speaker": "customer" if m.role == "user" else "agent", "text": m.content}
            for m in session.history
            if m.role != "system"
        ]
        recording = pbx_instance(s).host(PurePosixPath(s.recordings.dir) / f"{placed.call_id}.wav")
        size = 0
        if outcome.answered and recording.is_file():
            recording, size = await asyncio.to_thread(self._keep_recording, recording)
        status = attempt_status(outcome)
        if status == AttemptStatus.ANSWERED and session.record.outcome == "voicemail":
            # The policy heard a voicemail greeting that AMD missed: retried like one.
            status = AttemptStatus.VOICEMAIL
        return CallResult(
            status=status,
            call_id=placed.call_id,
            answered_at=answered_at,
            ended_at=ended,
            hangup_cause=outcome.hangup_cause,
            amd=outcome.amd.value if outcome.amd else None,
            outcome=session.record.outcome if outcome.answered else None,
            note=session.record.note() if outcome.answered else {},
            turns=turns if outcome.answered else [],
            recording=str(recording) if size else None,
            recording_bytes=size,
        )

    def _keep_recording(self, mix: Path) -> tuple[Path, int]:
        """Seals the call's recording files (mix, in, out) once Asterisk has closed them."""
        files = [mix.with_name(f"{mix.stem}{part}.wav") for part in ("", "-in", "-out")]
        _wait_settled(files)
        size = mix.stat().st_size
        if self.keys is None:
            return mix, size
        sealed = mix
        for f in files:
            if f.is_file():
                done = self.keys.seal_file(f, RECORDING_CONTEXT)
                sealed = done if f == mix else sealed
        return sealed, size


@dataclasses.dataclass
class _LiveCall:
    placed: PlacedCall
    session: CallSession
    target: str | None
    # Set when the call was handed to a person: its attempt ends there.
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def wait(self, timeout_s: float) -> CallOutcome:
        """The call's outcome once it ends, or once it was handed over (still going)."""
        done = asyncio.ensure_future(self.placed.wait_done(timeout_s))
        released = asyncio.ensure_future(self.released.wait())
        try:
            await asyncio.wait({done, released}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
            if not done.done():
                done.cancel()
        return done.result() if done.done() and not done.cancelled() else self.placed.outcome


def _wait_settled(files: list[Path], quiet_s: float = 0.3, limit_s: float = 5.0) -> None:
    # MixMonitor closes its files as the channel goes away, just after the hang-up
    # event: wait until their sizes stop changing.
    deadline = time.monotonic() + limit_s
    last: list[int] = []
    while time.monotonic() < deadline:
        sizes = [f.stat().st_size if f.is_file() else -1 for f in files]
        if sizes == last:
            return
        last = sizes
        time.sleep(quiet_s)
