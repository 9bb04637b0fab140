"""The outcome tracker, fed event lists (pure: no sockets, no clock)."""

from __future__ import annotations

from agent.telephony.ami import LOST_EVENT, AmiEvent
from agent.telephony.outcomes import Amd, CallOutcome, CallOutcomeTracker, CallStatus, HungUpBy
from tests.fakes.ami_server import recorded_messages

CALL = "c-1"


def ev(name: str, t: float = 0.0, **fields: str) -> AmiEvent:
    return AmiEvent(name, {"Uniqueid": CALL, **fields}, t)


def run(*events: AmiEvent) -> CallOutcome:
    tracker = CallOutcomeTracker(CALL)
    for e in events:
        tracker.feed(e)
    return tracker.outcome


def replay(name: str) -> CallOutcome:
    tracker = CallOutcomeTracker(CALL)
    for block in recorded_messages(name):
        fields = dict(
            line.split(": ", 1) for line in block.replace(f"rec-{name}", CALL).split("\r\n")
            if ": " in line
        )  # fmt: skip
        kind = fields.get("Event")
        if kind:
            tracker.feed(AmiEvent(kind, fields, 0.0))
    return tracker.outcome


def test_recorded_calls() -> None:
    answered = replay("answered")
    assert (answered.status, answered.amd, answered.hung_up_by) == (
        CallStatus.ANSWERED,
        Amd.HUMAN,
        HungUpBy.AGENT,
    )
    hung_up = replay("customer-hangup")
    assert hung_up.hung_up_by is HungUpBy.CUSTOMER and hung_up.hangup_cause == 16
    busy = replay("busy")
    assert busy.status is CallStatus.BUSY and busy.hangup_cause == 17 and busy.done
    no_answer = replay("no-answer")
    assert no_answer.status is CallStatus.NO_ANSWER and no_answer.hangup_cause == 19


def test_no_answer_in_either_order() -> None:
    hangup = ev("Hangup", 4.0, Cause="19", **{"Cause-txt": "User alerting, no answer"})
    response = ev("OriginateResponse", 4.0, Response="Failure", Reason="3")
    for events in ((hangup, response), (response, hangup)):
        o = run(ev("Newchannel"), *events)
        assert o.status is CallStatus.NO_ANSWER and o.hangup_cause == 19 and o.done
    # Not done until the channel is gone.
    assert not run(ev("Newchannel"), response).done


def test_failure_without_a_channel_is_done_at_once() -> None:
    o = run(ev("OriginateResponse", Response="Failure", Reason="0"))
    assert o.status is CallStatus.FAILED and o.done and not o.answered


def test_rejected_and_congested() -> None:
    for cause, status in (("21", CallStatus.REJECTED), ("34", CallStatus.CONGESTION)):
        o = run(
            ev("Newchannel"),
            ev("Hangup", Cause=cause),
            ev("OriginateResponse", Response="Failure", Reason="0"),
        )
        assert o.status is status


def test_customer_and_agent_hangups() -> None:
    up = (ev("Newchannel"), ev("DialEnd", DialStatus="ANSWER", t=1.0))
    by_customer = run(
        *up,
        ev("UserEvent", UserEvent="CartlineCallEnd", CallId=CALL, End=""),
        ev("Hangup", 5.0, Cause="16"),
    )
    assert by_customer.hung_up_by is HungUpBy.CUSTOMER and by_customer.answered_at == 1.0
    by_agent = run(
        *up,
        ev("UserEvent", UserEvent="CartlineCallEnd", CallId=CALL, End="agent"),
        ev("Hangup", Cause="16"),
    )
    assert by_agent.hung_up_by is HungUpBy.AGENT
    tracker = CallOutcomeTracker(CALL)
    for e in (*up, ev("Hangup", Cause="16")):
        if e.name == "Hangup":
            tracker.mark_agent_hangup()
        tracker.feed(e)
    assert tracker.outcome.hung_up_by is HungUpBy.AGENT


def test_asterisk_shutdown_and_max_call_length() -> None:
    up = (ev("Newchannel"), ev("Newstate", ChannelStateDesc="Up"))
    shutdown = run(*up, ev("SoftHangupRequest", Cause="4"), ev("Hangup", Cause="0"))
    assert shutdown.status is CallStatus.FAILED and shutdown.answered
    assert shutdown.hangup_cause_text == "asterisk restarted"
    assert shutdown.hung_up_by is HungUpBy.NETWORK
    timeout = run(*up, ev("SoftHangupRequest", Cause="8"), ev("Hangup", Cause="16"))
    assert timeout.hung_up_by is HungUpBy.AGENT
    assert timeout.hangup_cause_text == "maximum call length reached"


def test_connection_lost_mid_call() -> None:
    o = run(
        ev("Newchannel"),
        ev("Newstate", ChannelStateDesc="Up"),
        AmiEvent(LOST_EVENT, {"Reason": "AMI connection lost"}, 3.0),
        ev("Hangup", Cause="16"),
    )
    assert o.status is CallStatus.FAILED and o.answered and o.done
    assert o.hangup_cause_text == "AMI connection lost" and o.ended_at == 3.0


def test_amd_results() -> None:
    for status, amd in (("MACHINE", Amd.MACHINE), ("NOTSURE", Amd.NOTSURE), ("HUMAN", Amd.HUMAN)):
        o = run(ev("UserEvent", UserEvent="AmdResult", AMDSTATUS=status, AMDCAUSE="x"))
        assert o.amd is amd and o.amd_cause == "x"


def test_events_of_other_channels_do_not_end_the_call() -> None:
    o = run(
        ev("Newchannel"),
        ev("Newstate", ChannelStateDesc="Up"),
        AmiEvent("Hangup", {"Uniqueid": "other", "Linkedid": CALL, "Cause": "16"}, 1.0),
    )
    assert not o.done
