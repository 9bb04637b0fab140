"""A call's outcome, worked out from its AMI events. Pure: events in, outcome out.

Signals, as Asterisk 22 sends them for a call originated with our ChannelId:

* ``OriginateResponse``: Success with Reason 4 when answered; Failure with
  Reason 5 (busy), 3 (no answer), 8 (congestion), or 0/1 (look further).
* ``DialEnd`` DialStatus (ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, CANCEL)
  and ``Hangup`` Cause (17 busy, 18/19 no answer, 21 rejected, 34/38/42 network).
  A busy line gives DialEnd BUSY, Hangup 17 and Failure Reason 0 together; no
  answer gives Hangup 19 and Failure Reason 3 without a DialEnd. The order of
  the Hangup and the OriginateResponse varies, so the call is over only when
  both have come (or when the response says no channel was ever made).
* ``SoftHangupRequest`` Cause: Asterisk's soft-hangup flags (shutdown, timeout).
* The dialplan's UserEvents ``AmdResult`` (AMDSTATUS, AMDCAUSE) and
  ``CartlineCallEnd`` (from the hang-up handler; End is "agent" when Cartline
  ended the media leg, "transfer" after a hand-over to a person, empty when the
  customer hung up).
* ``CartlineAmiLost`` from the AMI client: the connection dropped mid-call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from agent.telephony.ami import LOST_EVENT, AmiEvent


class CallStatus(enum.Enum):
    """Where a call stands: DIALING until answered or failed."""

    DIALING = "dialing"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    REJECTED = "rejected"
    CANCELED = "canceled"
    FAILED = "failed"


class HungUpBy(enum.Enum):
    CUSTOMER = "customer"
    AGENT = "agent"
    NETWORK = "network"
    UNKNOWN = "unknown"


class Amd(enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"
    NOTSURE = "notsure"


@dataclass(frozen=True)
class CallOutcome:
    """What became of a call; timestamps are the events' ``received_at``. ``done`` once over."""

    status: CallStatus = CallStatus.DIALING
    answered: bool = False
    hangup_cause: int | None = None
    hangup_cause_text: str = ""
    hung_up_by: HungUpBy = HungUpBy.UNKNOWN
    amd: Amd | None = None
    amd_cause: str = ""
    originated_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    done: bool = False


_FAILURE_REASONS = {5: CallStatus.BUSY, 3: CallStatus.NO_ANSWER, 8: CallStatus.CONGESTION}
_DIAL_STATUS = {
    "BUSY": CallStatus.BUSY,
    "NOANSWER": CallStatus.NO_ANSWER,
    "CONGESTION": CallStatus.CONGESTION,
    "CHANUNAVAIL": CallStatus.FAILED,
    "CANCEL": CallStatus.CANCELED,
}
_CAUSES = {
    17: CallStatus.BUSY,
    18: CallStatus.NO_ANSWER,
    19: CallStatus.NO_ANSWER,
    21: CallStatus.REJECTED,
    34: CallStatus.CONGESTION,
    38: CallStatus.CONGESTION,
    42: CallStatus.CONGESTION,
}
_CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
    38: "Network out of order",
}
_AGENT_ENDS = frozenset({"agent", "transfer"})
# Asterisk's AST_SOFTHANGUP_* flags, carried in SoftHangupRequest's Cause.
_SOFTHANGUP_SHUTDOWN = 0x04
_SOFTHANGUP_TIMEOUT = 0x08


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class CallOutcomeTracker:
    """Feeds on one call's events and keeps its outcome up to date.

    ``call_id`` is the customer leg's Uniqueid. For a call Cartline did not
    originate (``inbound``) no OriginateResponse is awaited: the leg's Hangup ends it.
    """

    def __init__(
        self, call_id: str, originated_at: float | None = None, *, inbound: bool = False
    ) -> None:
        self.call_id = call_id
        self._inbound = inbound
        self._o = CallOutcome(originated_at=originated_at)
        self._reason_status: CallStatus | None = None
        self._dial_status: CallStatus | None = None
        self._end_by: HungUpBy | None = None
        self._agent_hung_up = False
        self._channel_seen = False
        self._hung_up = False
        self._originate_failed = False
        self._soft_hangup = 0

    @property
    def outcome(self) -> CallOutcome:
        return self._o

    @property
    def done(self) -> bool:
        return self._o.done

    def mark_agent_hangup(self) -> None:
        """Cartline itself ends the call: a normal clearing is then not the customer's,
        and a call not yet answered is canceled."""
        self._agent_hung_up = True

    def feed(self, event: AmiEvent) -> None:
        """Takes one event of the call; events of no interest are ignored."""
        if self._o.done:
            return
        o = self._o
        if o.originated_at is None:
            o = replace(o, originated_at=event.received_at)
        own_leg = event.get("Uniqueid") == self.call_id
        name = event.name
        if name == "Newchannel" and own_leg:
            self._channel_seen = True
        elif name == "SoftHangupRequest" and own_leg:
            self._soft_hangup |= _int(event.get("Cause")) or 0
        elif name == "DialEnd" and event.get("DestUniqueid") == self.call_id:
            self._dial_status = _DIAL_STATUS.get(event.get("DialStatus"))
            if event.get("DialStatus") == "ANSWER":
                o = self._answer(o, event.received_at)
        elif name == "Newstate" and own_leg and event.get("ChannelStateDesc") == "Up":
            o = self._answer(o, event.received_at)
        elif name == "OriginateResponse":
            o = self._originate_response(o, event)
        elif name == "UserEvent" and event.get("CallId", self.call_id) == self.call_id:
            o = self._user_event(o, event)
        elif name == "Hangup" and own_leg:
            o = self._hangup(o, event)
        elif name == LOST_EVENT:
            shutdown = event.get("Shutdown") == "yes"
            o = replace(
                o,
                status=CallStatus.FAILED,
                hangup_cause_text="asterisk restarted" if shutdown else "AMI connection lost",
                hung_up_by=HungUpBy.NETWORK,
                ended_at=event.received_at,
                done=True,
            )
        self._o = o

    @staticmethod
    def _answer(o: CallOutcome, at: float) -> CallOutcome:
        if o.answered:
            return o
        return replace(o, answered=True, status=CallStatus.ANSWERED, answered_at=at)

    def _unanswered(self, o: CallOutcome) -> CallOutcome:
        """Settles the status of a call that ended before anyone answered."""
        if self._agent_hung_up:
            return replace(o, status=CallStatus.CANCELED, hung_up_by=HungUpBy.AGENT)
        status = (
            self._reason_status
            or self._dial_status
            or _CAUSES.get(o.hangup_cause if o.hangup_cause is not None else -1)
            or CallStatus.FAILED
        )
        return replace(o, status=status, hung_up_by=HungUpBy.NETWORK)

    def _originate_response(self, o: CallOutcome, event: AmiEvent) -> CallOutcome:
        if event.get("Response") == "Success":
            return self._answer(o, event.received_at)
        self._originate_failed = True
        if o.answered:
            return o  # the leg's Hangup ends it, as for any answered call
        self._reason_status = _FAILURE_REASONS.get(_int(event.get("Reason")) or 0)
        o = self._unanswered(o)
        # Over once the channel is gone too (its Hangup has the cause), or at
        # once when Asterisk never made a channel.
        return replace(
            o,
            ended_at=o.ended_at or event.received_at,
            done=self._hung_up or not self._channel_seen,
        )

    def _user_event(self, o: CallOutcome, event: AmiEvent) -> CallOutcome:
        kind = event.get("UserEvent")
        if kind == "AmdResult":
            status = event.get("AMDSTATUS").upper()
            amd = {"HUMAN": Amd.HUMAN, "MACHINE": Amd.MACHINE}.get(status, Amd.NOTSURE)
            return replace(o, amd=amd, amd_cause=event.get("AMDCAUSE"))
        if kind == "CartlineCallEnd":
            end = event.get("End").lower()
            self._end_by = HungUpBy.AGENT if end in _AGENT_ENDS else HungUpBy.CUSTOMER
        return o

    def _hangup(self, o: CallOutcome, event: AmiEvent) -> CallOutcome:
        self._hung_up = True
        cause = _int(event.get("Cause"))
        text = event.get("Cause-txt") or _CAUSE_TEXT.get(cause if cause is not None else 0, "")
        o = replace(o, hangup_cause=cause, hangup_cause_text=text, ended_at=event.received_at)
        if not o.answered:
            o = self._unanswered(o)
            return replace(o, done=self._originate_failed or self._inbound)
        if self._soft_hangup & _SOFTHANGUP_SHUTDOWN:
            return replace(
                o,
                status=CallStatus.FAILED,
                hangup_cause_text="asterisk restarted",
                hung_up_by=HungUpBy.NETWORK,
                done=True,
            )
        by = self._end_by or HungUpBy.UNKNOWN
        if self._agent_hung_up:
            by = HungUpBy.AGENT
        if self._soft_hangup & _SOFTHANGUP_TIMEOUT:
            # The dialplan's absolute timeout: the call reached its maximum length.
            by = HungUpBy.AGENT
            o = replace(o, hangup_cause_text="maximum call length reached")
        return replace(o, status=CallStatus.ANSWERED, hung_up_by=by, done=True)
