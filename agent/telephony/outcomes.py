"""A call's outcome, worked out from its AMI events. Pure: events in, outcome out.

Signals, as Asterisk 22 sends them for a call originated with our ChannelId:
``OriginateResponse`` (Success with Reason 4 when answered; Failure with
Reason 5 busy, 3 no answer, 8 congestion, 0/1 otherwise), ``DialEnd``
(DialStatus), ``Hangup`` (Cause, Cause-txt), and the dialplan's user events
``AmdResult`` (answering-machine detection) and ``CartlineCallEnd`` (sent by the
hang-up handler; End is "agent" when Cartline ended the media leg).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from agent.telephony.ami import LOST_EVENT, AmiEvent


class CallStatus(enum.Enum):
    DIALING = "dialing"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    REJECTED = "rejected"
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
    """What became of a call. ``done`` once it is over."""

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
    "CANCEL": CallStatus.FAILED,
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


_SOFTHANGUP_SHUTDOWN = 0x04
_SOFTHANGUP_TIMEOUT = 0x08


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class CallOutcomeTracker:
    """Feeds on one call's events and keeps its outcome up to date."""

    def __init__(self, call_id: str, originated_at: float | None = None) -> None:
        self.call_id = call_id
        self._o = CallOutcome(originated_at=originated_at)
        self._dial_status: CallStatus | None = None
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
        """Cartline itself ended the call (so a normal clearing is not the customer's)."""
        self._agent_hung_up = True

    def feed(self, event: AmiEvent) -> None:
        if self._o.done:
            return
        o = self._o
        if o.originated_at is None:
            o = replace(o, originated_at=event.received_at)
        name = event.name
        if name == "Newchannel" and event.get("Uniqueid") == self.call_id:
            self._channel_seen = True
        if name == "SoftHangupRequest" and event.get("Uniqueid") == self.call_id:
            # Its Cause is Asterisk's soft-hangup flags, not a Q.850 cause.
            self._soft_hangup |= _int(event.get("Cause")) or 0
        if name == "DialEnd" and event.get("Uniqueid") in ("", self.call_id):
            self._dial_status = _DIAL_STATUS.get(event.get("DialStatus"))
            if event.get("DialStatus") == "ANSWER":
                o = self._answer(o, event.received_at)
        elif name == "Newstate" and event.get("ChannelStateDesc") == "Up":
            if event.get("Uniqueid") == self.call_id:
                o = self._answer(o, event.received_at)
        elif name == "OriginateResponse":
            o = self._originate_response(o, event)
        elif name == "UserEvent":
            o = self._user_event(o, event)
        elif name == "Hangup" and event.get("Uniqueid") == self.call_id:
            o = self._hangup(o, event)
        elif name == LOST_EVENT:
            o = replace(
                o,
                status=CallStatus.FAILED,
                hangup_cause_text=event.get("Reason", "AMI connection lost"),
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

    def _originate_response(self, o: CallOutcome, event: AmiEvent) -> CallOutcome:
        reason = _int(event.get("Reason")) or 0
        if event.get("Response") == "Success":
            return self._answer(o, event.received_at)
        status = _FAILURE_REASONS.get(reason) or self._dial_status or o.status
        if status in (CallStatus.DIALING, CallStatus.ANSWERED):
            status = _CAUSES.get(o.hangup_cause or -1, CallStatus.FAILED)
        self._originate_failed = True
        # The call is over when its channel is gone too (the Hangup carries the
        # cause); it may come before or after this response, or never exist.
        return replace(
            o,
            status=status,
            answered=False,
            hung_up_by=HungUpBy.NETWORK if o.hung_up_by is HungUpBy.UNKNOWN else o.hung_up_by,
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
            by = HungUpBy.AGENT if event.get("End") == "agent" else HungUpBy.CUSTOMER
            if self._agent_hung_up:
                by = HungUpBy.AGENT
            return replace(o, hung_up_by=by)
        return o

    def _hangup(self, o: CallOutcome, event: AmiEvent) -> CallOutcome:
        self._hung_up = True
        cause = _int(event.get("Cause"))
        text = event.get("Cause-txt") or _CAUSE_TEXT.get(cause or 0, "")
        o = replace(o, hangup_cause=cause, hangup_cause_text=text, ended_at=event.received_at)
        if o.answered:
            if self._soft_hangup & _SOFTHANGUP_SHUTDOWN:
                return replace(
                    o,
                    status=CallStatus.FAILED,
                    hangup_cause_text="asterisk restarted",
                    hung_up_by=HungUpBy.NETWORK,
                    done=True,
                )
            by = o.hung_up_by
            if self._soft_hangup & _SOFTHANGUP_TIMEOUT:
                # The dialplan's absolute timeout: the call reached calls.max_call_s.
                by = HungUpBy.AGENT
                o = replace(o, hangup_cause_text="maximum call length reached")
            if by is HungUpBy.UNKNOWN:
                by = HungUpBy.AGENT if self._agent_hung_up else HungUpBy.CUSTOMER
            return replace(o, status=CallStatus.ANSWERED, hung_up_by=by, done=True)
        # Not answered: the OriginateResponse that follows settles the status;
        # keep what the cause says meanwhile.
        if self._originate_failed:
            status = o.status
            if status is CallStatus.FAILED:
                status = self._dial_status or _CAUSES.get(cause or -1, status)
            return replace(o, status=status, done=True)
        status = self._dial_status or _CAUSES.get(cause or -1, o.status)
        return replace(o, status=status, hung_up_by=HungUpBy.NETWORK)
