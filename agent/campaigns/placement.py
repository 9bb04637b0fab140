"""A campaign call as the scheduler hands it to the dialer, and as it comes back.

``CallRequest`` is what placing one call needs (and all the conversation may
know of the customer); ``CallResult`` how it ended; a ``CallObserver`` follows
calls as they happen (the live view, the metrics, the demo's terminal).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.store.tables import AttemptStatus


@dataclass(frozen=True)
class CallRequest:
    """What the dialer needs to place one call and what the conversation may know."""

    attempt_id: int
    job_id: int
    campaign: str
    phone_e164: str
    checkout_id: int
    first_name: str | None
    items: list[dict[str, Any]]
    total: str | None
    currency: str
    checkout_url: str | None
    last_name: str | None = None
    city: str | None = None


@dataclass(frozen=True)
class CallResult:
    """How a call ended. ``outcome`` is the conversation's verdict on an answered call."""

    status: AttemptStatus
    call_id: str | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    hangup_cause: int | None = None
    amd: str | None = None
    outcome: str | None = None
    note: dict[str, Any] = field(default_factory=dict)
    turns: list[dict[str, Any]] = field(default_factory=list)
    recording: str | None = None  # the mixed recording's path on this machine
    recording_bytes: int = 0


class CallObserver(Protocol):
    """Follows campaign calls as they happen (the live view, the metrics).

    Called on the event loop; an observer must not block and must not raise.
    ``event`` is one of the conversation's events (``agent.conversation.events``).
    """

    def call_started(self, request: CallRequest, call_id: str) -> None: ...

    def call_event(self, request: CallRequest, event: object) -> None: ...

    def call_ended(self, request: CallRequest, result: CallResult) -> None: ...
