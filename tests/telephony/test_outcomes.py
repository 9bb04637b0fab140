"""The outcome tracker, fed event lists (pure: no sockets, no clock)."""

from __future__ import annotations

import pytest

from agent.telephony.ami import LOST_EVENT, AmiEvent
from agent.telephony.outcomes import Amd, CallOutcome, CallOutcomeTracker, CallStatus, HungUpBy
from tests.fakes.ami_server import parse_block, recorded_messages

CALL = "c-1"


def ev(name: str, t: float = 0.0, **fields: str) -> AmiEvent:
    return AmiEvent(name, {"Uniqueid": CALL, **fields}, t)


def dial_end(status: str, t: float = 0.0) -> AmiEvent:
    # An originated call's DialEnd has no caller: the leg is the Dest one.
    return AmiEvent("DialEnd", {"DestUniqueid": CALL, "DialStatus": status}, t)


def user_event(kind: str, **fields: str) -> AmiEvent:
    return AmiEvent("UserEvent", {"Uniqueid": CALL, "UserEvent": kind, "CallId": CALL, **fields}, 0)


def lost(shutdown: bool, t: float = 3.0) -> AmiEvent:
    return AmiEvent(LOST_EVENT, {"Shutdown": "yes" if shutdown else "no"}, t)


def run(*events: AmiEvent, tracker: CallOutcomeTracker | None = None) -> CallOutcome:
    tracker = tracker or CallOutcomeTracker(CALL)
    for e in events:
        tracker.feed(e)
    return tracker.outcome


def replay(name: str) -> CallOutcome:
    events = []
    for i, block in enumerate(recorded_messages(name)):
        fields = parse_block(block.replace(f"rec-{name}", CALL))
        if "Event" in fields:
            events.append(AmiEvent(fields["Event"], fields, float(i)))
    return run(*events)


UP = (ev("Newchannel"), dial_end("ANSWER", 1.0))
HANGUP_16 = ev("Hangup", 5.0, Cause="16", **{"Cause-txt": "Normal Clearing"})


def test_recorded_calls() -> None:
    answered = replay("answered")
    assert (answered.status, answered.amd, answered.hung_up_by) == (
        CallStatus.ANSWERED,
        Amd.HUMAN,
        HungUpBy.AGENT,
    )
    assert answered.originated_at is not None and answered.answered_at is not None
    assert answered.ended_at is not None and answered.done
    assert answered.originated_at < answered.answered_at < answered.ended_at
    hung_up = replay("customer-hangup")
    assert hung_up.hung_up_by is HungUpBy.CUSTOMER and hung_up.hangup_cause == 16
    busy = replay("busy")
    assert busy.status is CallStatus.BUSY and busy.hangup_cause == 17 and busy.done
    assert busy.hangup_cause_text == "User busy" and busy.hung_up_by is HungUpBy.NETWORK
    no_answer = replay("no-answer")
    assert no_answer.status is CallStatus.NO_ANSWER and no_answer.hangup_cause == 19
    assert not no_answer.answered and no_answer.done


def test_busy_in_either_order() -> None:
    hangup = ev("Hangup", Cause="17")
    response = ev("OriginateResponse", Response="Failure", Reason="0")
    for events in ((hangup, response), (response, hangup)):
        o = run(ev("Newchannel"), dial_end("BUSY"), *events)
        assert o.status is CallStatus.BUSY and o.done and not o.answered


def test_no_answer_in_either_order() -> None:
    hangup = ev("Hangup", 4.0, Cause="19", **{"Cause-txt": "User alerting, no answer"})
    response = ev("OriginateResponse", 4.0, Response="Failure", Reason="3")
    for events in ((hangup, response), (response, hangup)):
        o = run(ev("Newchannel"), *events)
        assert o.status is CallStatus.NO_ANSWER and o.hangup_cause == 19 and o.done
    # Not over until the channel is gone too: its Hangup carries the cause.
    assert not run(ev("Newchannel"), response).done
    assert not run(ev("Newchannel"), hangup).done


@pytest.mark.parametrize(
    ("reason", "status"),
    [("5", CallStatus.BUSY), ("3", CallStatus.NO_ANSWER), ("8", CallStatus.CONGESTION)],
)
def test_failure_reasons_without_a_channel_end_at_once(reason: str, status: CallStatus) -> None:
    o = run(ev("OriginateResponse", 2.0, Response="Failure", Reason=reason))
    assert o.status is status and o.done and not o.answered and o.ended_at == 2.0


def test_reason_zero_looks_at_dial_status_then_cause() -> None:
    failure = ev("OriginateResponse", Response="Failure", Reason="0")
    assert run(failure).status is CallStatus.FAILED
    unavailable = run(ev("Newchannel"), dial_end("CHANUNAVAIL"), failure, ev("Hangup", Cause="0"))
    assert unavailable.status is CallStatus.FAILED and unavailable.done
    for cause, status in (
        ("17", CallStatus.BUSY),
        ("18", CallStatus.NO_ANSWER),
        ("21", CallStatus.REJECTED),
        ("34", CallStatus.CONGESTION),
        ("38", CallStatus.CONGESTION),
    ):
        o = run(ev("Newchannel"), ev("Hangup", Cause=cause), failure)
        assert o.status is status and o.hung_up_by is HungUpBy.NETWORK


def test_agent_gives_up_before_the_answer() -> None:
    tracker = CallOutcomeTracker(CALL)
    run(ev("Newchannel"), ev("Newstate", ChannelStateDesc="Ringing"), tracker=tracker)
    tracker.mark_agent_hangup()
    o = run(
        ev("Hangup", Cause="16"),
        ev("OriginateResponse", Response="Failure", Reason="1"),
        tracker=tracker,
    )
    assert o.status is CallStatus.CANCELED and o.hung_up_by is HungUpBy.AGENT and o.done
    canceled = run(
        ev("Newchannel"),
        dial_end("CANCEL"),
        ev("Hangup", Cause="16"),
        ev("OriginateResponse", Response="Failure", Reason="1"),
    )
    assert canceled.status is CallStatus.CANCELED


def test_customer_and_agent_hangups() -> None:
    by_customer = run(*UP, user_event("CartlineCallEnd", End=""), HANGUP_16)
    assert by_customer.hung_up_by is HungUpBy.CUSTOMER and by_customer.answered_at == 1.0
    assert by_customer.hangup_cause_text == "Normal Clearing" and by_customer.ended_at == 5.0
    by_agent = run(*UP, user_event("CartlineCallEnd", End="agent"), HANGUP_16)
    assert by_agent.hung_up_by is HungUpBy.AGENT
    transferred = run(*UP, user_event("CartlineCallEnd", End="transfer"), HANGUP_16)
    assert transferred.hung_up_by is HungUpBy.AGENT
    tracker = CallOutcomeTracker(CALL)
    run(*UP, tracker=tracker)
    tracker.mark_agent_hangup()
    assert run(HANGUP_16, tracker=tracker).hung_up_by is HungUpBy.AGENT
    assert run(*UP, HANGUP_16).hung_up_by is HungUpBy.UNKNOWN


def test_asterisk_shutdown_and_max_call_length() -> None:
    up = (ev("Newchannel"), ev("Newstate", ChannelStateDesc="Up"))
    shutdown = run(*up, ev("SoftHangupRequest", Cause="4"), ev("Hangup", Cause="0"))
    assert shutdown.status is CallStatus.FAILED and shutdown.answered
    assert shutdown.hangup_cause_text == "asterisk restarted"
    assert shutdown.hung_up_by is HungUpBy.NETWORK
    timeout = run(*up, ev("SoftHangupRequest", Cause="8"), ev("Hangup", Cause="16"))
    assert timeout.hung_up_by is HungUpBy.AGENT and timeout.status is CallStatus.ANSWERED
    assert timeout.hangup_cause_text == "maximum call length reached"


@pytest.mark.parametrize(
    ("shutdown", "text"), [(True, "asterisk restarted"), (False, "AMI connection lost")]
)
def test_connection_lost_mid_call(shutdown: bool, text: str) -> None:
    o = run(*UP, lost(shutdown), HANGUP_16)
    assert o.status is CallStatus.FAILED and o.answered and o.done
    assert o.hangup_cause_text == text and o.ended_at == 3.0
    assert o.hung_up_by is HungUpBy.NETWORK and o.hangup_cause is None
    ringing = run(ev("Newchannel"), lost(shutdown))
    assert ringing.status is CallStatus.FAILED and not ringing.answered and ringing.done


def test_connection_lost_after_the_end_changes_nothing() -> None:
    busy = run(ev("OriginateResponse", Response="Failure", Reason="5"), lost(False))
    assert busy.status is CallStatus.BUSY and busy.hangup_cause_text == ""


def test_amd_results() -> None:
    for status, amd in (("MACHINE", Amd.MACHINE), ("NOTSURE", Amd.NOTSURE), ("HUMAN", Amd.HUMAN)):
        o = run(*UP, user_event("AmdResult", AMDSTATUS=status, AMDCAUSE="x"))
        assert o.amd is amd and o.amd_cause == "x" and not o.done


def test_answer_signals_and_timestamps() -> None:
    success = ev("OriginateResponse", 1.5, Response="Success", Reason="4")
    by_response = run(ev("Newchannel", 0.5), success)
    assert by_response.answered and by_response.answered_at == 1.5
    assert by_response.originated_at == 0.5 and by_response.status is CallStatus.ANSWERED
    given = run(ev("Newchannel", 9.0), tracker=CallOutcomeTracker(CALL, originated_at=2.0))
    assert given.originated_at == 2.0


def test_inbound_call_ends_at_its_hangup() -> None:
    tracker = CallOutcomeTracker(CALL, inbound=True)
    o = run(ev("Newchannel"), ev("Newstate", ChannelStateDesc="Up"), HANGUP_16, tracker=tracker)
    assert o.answered and o.done
    inbound = CallOutcomeTracker(CALL, inbound=True)
    rejected = run(ev("Newchannel"), ev("Hangup", Cause="21"), tracker=inbound)
    assert rejected.status is CallStatus.REJECTED and rejected.done


def test_unknown_and_foreign_events_are_ignored() -> None:
    o = run(
        ev("Newchannel"),
        ev("Newstate", ChannelStateDesc="Up"),
        ev("SomethingNew", Cause="17"),
        AmiEvent("Hangup", {"Uniqueid": "other", "Linkedid": CALL, "Cause": "16"}, 1.0),
        AmiEvent(
            "UserEvent", {"UserEvent": "AmdResult", "CallId": "other", "AMDSTATUS": "MACHINE"}, 1.0
        ),
    )
    assert o.answered and not o.done and o.amd is None and o.hangup_cause is None
