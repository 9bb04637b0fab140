"""AMI events as Cartline sees them: a typed event, the noise filter, and the
bounded per-call event stream that :class:`agent.telephony.ami.Ami` feeds.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class _Owner(Protocol):
    def _unsubscribe(self, stream: CallEvents) -> None: ...


LOST_EVENT = "CartlineAmiLost"
"""Synthetic event put in every open call stream when the AMI connection drops.

Fields: ``Shutdown`` ("yes" when Asterisk announced a shutdown, so it is
restarting; "no" when the connection just dropped) and ``Reason`` (the same,
in words: "asterisk restarted" or "AMI connection lost").
"""

# Events that say nothing about a call's course; they are most of the stream.
NOISE = frozenset(
    {"VarSet", "Newexten", "AGIExecStart", "AGIExecEnd", "NewConnectedLine", "NewCallerid"}
    | {"NewAccountCode", "DeviceStateChange", "ChannelTalkingStart", "ChannelTalkingStop"}
    | {"Cdr", "Cel", "SuccessfulAuth", "ChallengeSent", "RequestBadFormat"}
)
CALL_ID_KEYS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "CallId", "ChannelId")

NoiseFilter = Callable[[str, Mapping[str, str]], bool]


def is_noise(name: str, fields: Mapping[str, str]) -> bool:
    """The default noise filter: TestEvents (but MIXMONITOR_END), RTCP*, and ``NOISE``."""
    if name == "TestEvent":
        return fields.get("State") != "MIXMONITOR_END"
    return name.startswith("RTCP") or name in NOISE


@dataclass(frozen=True)
class AmiEvent:
    """One AMI event (or a response folded into a call's events)."""

    name: str
    fields: Mapping[str, str]
    received_at: float

    def get(self, key: str, default: str = "") -> str:
        """A field by name; like Asterisk, ignores the case of the name."""
        value = self.fields.get(key)
        if value is None:
            wanted = key.lower()
            value = next((v for k, v in self.fields.items() if k.lower() == wanted), None)
        return default if value is None else value

    @property
    def call_ids(self) -> frozenset[str]:
        """The call ids this event names (Uniqueid, Linkedid, their Dest forms, CallId)."""
        return frozenset(v for k in CALL_ID_KEYS if (v := self.get(k)))


class CallEvents:
    """The events of one call, as an async iterator.

    Bounded: when the consumer falls ``maxsize`` events behind, the oldest go
    (counted in ``dropped``), so the latest state of the call is always kept.
    Iteration ends after :meth:`aclose` or when the client is closed.
    """

    def __init__(self, owner: _Owner, call_id: str, maxsize: int) -> None:
        self.call_id = call_id
        self.dropped = 0
        self._owner = owner
        self._queue: collections.deque[AmiEvent] = collections.deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._ended = False

    @property
    def pending(self) -> int:
        """Events received and not yet taken."""
        return len(self._queue)

    def _put(self, event: AmiEvent) -> None:
        if self._ended:
            return
        if len(self._queue) == self._queue.maxlen:
            if not self.dropped:
                log.warning("call %s: its event consumer is behind; dropping events", self.call_id)
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def _end(self) -> None:
        self._ended = True
        self._ready.set()

    def __aiter__(self) -> CallEvents:
        return self

    async def __anext__(self) -> AmiEvent:
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        """Stops the subscription; what was not taken is discarded."""
        self._queue.clear()
        self._end()
        self._owner._unsubscribe(self)

    async def __aenter__(self) -> CallEvents:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
