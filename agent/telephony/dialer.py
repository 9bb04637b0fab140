"""Places outbound calls and follows each one to its outcome.

A call gets two ids of our choosing before it is dialled: the call id (the
Asterisk channel's Uniqueid and Linkedid, so every AMI event of the call names
it) and the AudioSocket UUID (so the media connection finds its call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agent.config import CallSettings, RecordingSettings, TrunkSettings
from agent.errors import CartlineError
from agent.telephony.ami import Ami, AmiEvent
from agent.telephony.audiosocket import AudioSocketCall
from agent.telephony.outcomes import CallOutcome, CallOutcomeTracker

log = logging.getLogger(__name__)

_DIALABLE = re.compile(r"^\+?[0-9]{3,20}$")


class InvalidNumber(CartlineError):
    """A number that cannot be dialled; the message never repeats the number."""


@dataclass
class PlacedCall:
    """One outbound call: its ids, its AMI events, its media and its outcome."""

    call_id: str
    media_uuid: uuid.UUID
    tracker: CallOutcomeTracker
    events: list[AmiEvent] = field(default_factory=list)
    media: asyncio.Future[AudioSocketCall] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    done: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _follower: asyncio.Task[None] | None = None

    @property
    def channel(self) -> str | None:
        """The customer leg's Asterisk channel name, once Asterisk has made it."""
        for event in self.events:
            if event.name == "Newchannel" and event.get("Uniqueid") == self.call_id:
                return event.get("Channel") or None
        return None

    @property
    def outcome(self) -> CallOutcome:
        return self.tracker.outcome

    async def wait_done(self, timeout_s: float) -> CallOutcome:
        """Waits until the call is over (answered and ended, or failed)."""
        async with asyncio.timeout(timeout_s):
            await self.done.wait()
        return self.outcome

    async def wait_until(
        self, predicate: Callable[[CallOutcome], bool], timeout_s: float
    ) -> CallOutcome:
        """Waits until the outcome satisfies ``predicate`` or the call is over."""
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(lambda: predicate(self.outcome) or self.done.is_set())
        return self.outcome

    async def wait_media(self, timeout_s: float) -> AudioSocketCall:
        """Waits for the call's AudioSocket connection (after the answer and AMD)."""
        async with asyncio.timeout(timeout_s):
            return await asyncio.shield(self.media)


class Dialer:
    """Originates calls over the trunk into the ``cartline-outbound`` dialplan."""

    def __init__(
        self,
        ami: Ami,
        trunk: TrunkSettings,
        calls: CallSettings,
        recordings: RecordingSettings,
    ) -> None:
        self._ami = ami
        self._trunk = trunk
        self._calls = calls
        self._recordings = recordings
        self._by_media: dict[uuid.UUID, PlacedCall] = {}
        self.active: dict[str, PlacedCall] = {}

    async def place(
        self,
        number: str,
        *,
        amd: bool | None = None,
        record: bool | None = None,
        variables: Mapping[str, str] | None = None,
        call_id: str | None = None,
    ) -> PlacedCall:
        """Dials ``number`` and returns at once; the call's life is followed in the background.

        ``call_id`` (default: a fresh one) becomes the channel's Uniqueid, so a call
        recorded before dialling can be found in Asterisk by it.
        """
        if not _DIALABLE.match(number):
            raise InvalidNumber("the number to call must be 3 to 20 digits, optionally after a +")
        if call_id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", call_id):
            raise ValueError("call_id must be 1 to 64 letters, digits, '_', '.' or '-'")
        call_id = call_id or f"cl-{uuid.uuid4().hex}"
        placed = PlacedCall(call_id, uuid.uuid4(), CallOutcomeTracker(call_id))
        self.active[call_id] = placed
        self._by_media[placed.media_uuid] = placed
        # Subscribe before dialling so no event of the call is missed.
        stream = self._ami.call_events(call_id)
        placed._follower = asyncio.create_task(self._follow(placed, stream))
        use_amd = self._calls.amd if amd is None else amd
        use_rec = self._recordings.enabled if record is None else record
        channel_vars = {
            "CALL_ID": call_id,
            "AS_UUID": str(placed.media_uuid),
            "CARTLINE_AMD": "yes" if use_amd else "no",
            "CARTLINE_RECORD": "yes" if use_rec else "no",
            **(variables or {}),
        }
        log.info("call %s: dialling", call_id)
        try:
            await self._ami.originate(
                channel=f"PJSIP/{number}@{self._trunk.name}",
                context="cartline-outbound",
                exten="start",
                priority=1,
                call_id=call_id,
                variables=channel_vars,
                caller_id=self._trunk.caller_id,
                timeout_ms=int(self._trunk.ring_timeout_s * 1000),
            )
        except BaseException:
            self._forget(placed)
            placed._follower.cancel()
            raise
        return placed

    def attach_media(self, conn: AudioSocketCall) -> PlacedCall | None:
        """Hands an AudioSocket connection to the call that owns its UUID."""
        placed = self._by_media.get(conn.uuid)
        if placed is not None and not placed.media.done():
            placed.media.set_result(conn)
        return placed

    async def _follow(self, placed: PlacedCall, stream: object) -> None:
        try:
            async for event in stream:  # type: ignore[attr-defined]
                placed.events.append(event)
                placed.tracker.feed(event)
                async with placed.changed:
                    placed.changed.notify_all()
                if placed.tracker.done:
                    break
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
            outcome = placed.tracker.outcome
            log.info(
                "call %s: %s (cause %s)", placed.call_id, outcome.status.value, outcome.hangup_cause
            )
            self._forget(placed)
            placed.done.set()
            async with placed.changed:
                placed.changed.notify_all()

    def _forget(self, placed: PlacedCall) -> None:
        self.active.pop(placed.call_id, None)
        self._by_media.pop(placed.media_uuid, None)

    async def close(self) -> None:
        for placed in list(self.active.values()):
            if placed._follower is not None:
                placed._follower.cancel()
