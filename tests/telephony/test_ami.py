"""The AMI client against recorded Asterisk conversations replayed over real TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent.telephony.ami import LOST_EVENT, Ami, AmiError, AmiEvent, AmiLoginError
from agent.telephony.outcomes import Amd, CallOutcomeTracker, CallStatus, HungUpBy
from tests.fakes.ami_server import FakeAmi

SCRIPTS = {
    "1001": "answered",
    "1002": "busy",
    "1003": "no-answer",
    "1004": "customer-hangup",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(scripts=SCRIPTS)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ami(fake: FakeAmi) -> AsyncIterator[Ami]:
    client = Ami("127.0.0.1", fake.port, "cartline", "secret", reconnect_s=1)
    await client.connect(timeout_s=5)
    yield client
    await client.close()


async def _collect(ami: Ami, call_id: str, number: str) -> list[AmiEvent]:
    stream = ami.call_events(call_id)
    await ami.originate(
        channel=f"PJSIP/{number}@trunk", context="cartline-outbound", exten="start", call_id=call_id
    )
    tracker = CallOutcomeTracker(call_id)
    events = []
    async with asyncio.timeout(5):
        async for event in stream:
            events.append(event)
            tracker.feed(event)
            if tracker.done:
                break
    await stream.aclose()
    return events


async def test_login_and_bad_login(fake: FakeAmi) -> None:
    good = Ami("127.0.0.1", fake.port, "cartline", "secret")
    await good.connect(timeout_s=5)
    assert good.connected
    await good.close()
    bad = Ami("127.0.0.1", fake.port, "cartline", "wrong-secret")
    with pytest.raises(AmiLoginError) as info:
        await bad.connect(timeout_s=5)
    assert "wrong-secret" not in str(info.value)
    assert "ami.secret" in str(info.value)


async def test_unreachable_ami_is_a_clear_error() -> None:
    ami = Ami("127.0.0.1", 1, "cartline", "secret")
    with pytest.raises(AmiError, match="127.0.0.1:1"):
        await ami.connect(timeout_s=1.5)


async def test_answered_call_events_in_order_without_noise(ami: Ami) -> None:
    events = await _collect(ami, "call-a", "1001")
    names = [e.name for e in events]
    assert names[0] == "Newchannel"
    assert names.index("DialEnd") < names.index("Hangup")
    assert "VarSet" not in names and "Newexten" not in names
    tracker = CallOutcomeTracker("call-a")
    for e in events:
        tracker.feed(e)
    o = tracker.outcome
    assert o.status is CallStatus.ANSWERED and o.answered
    assert o.amd is Amd.HUMAN and o.hung_up_by is HungUpBy.AGENT
    assert o.hangup_cause == 16 and o.done
    # panoramisk hands the OriginateResponse to the action, not to event
    # callbacks; the client routes it to the call all the same.
    response = await ami.wait_event(
        lambda e: e.name == "OriginateResponse" and e.get("ChannelId") == "call-a", 2
    )
    assert response.get("Reason") == "4"


async def test_originate_sends_call_id_variables_and_async(ami: Ami, fake: FakeAmi) -> None:
    await ami.originate(
        channel="PJSIP/1002@trunk",
        context="cartline-outbound",
        exten="start",
        call_id="call-b",
        variables={"CALL_ID": "call-b", "AS_UUID": "u-1"},
        caller_id="+15550100000",
        timeout_ms=4000,
    )
    action = next(a for a in fake.actions if a.get("action") == "Originate")
    assert action["channelid"] == "call-b"
    assert action["async"] == "true"
    assert action["timeout"] == "4000"
    assert action["callerid"] == "+15550100000"


async def test_busy_and_no_answer(ami: Ami) -> None:
    for call_id, number, status, cause in (
        ("call-busy", "1002", CallStatus.BUSY, 17),
        ("call-na", "1003", CallStatus.NO_ANSWER, 19),
    ):
        tracker = CallOutcomeTracker(call_id)
        for e in await _collect(ami, call_id, number):
            tracker.feed(e)
        assert tracker.outcome.status is status
        assert tracker.outcome.hangup_cause == cause
        assert not tracker.outcome.answered


async def test_refused_originate_raises(ami: Ami) -> None:
    with pytest.raises(AmiError, match="Originate"):
        await ami.originate(channel="PJSIP/9999@trunk", context="c", exten="s", call_id="x")


async def test_events_of_other_calls_are_not_delivered(ami: Ami) -> None:
    other = ami.call_events("someone-else")
    await _collect(ami, "call-c", "1004")
    assert not other._queue
    await other.aclose()


async def test_late_subscriber_gets_the_history(ami: Ami) -> None:
    await ami.originate(channel="PJSIP/1001@trunk", context="c", exten="s", call_id="call-d")
    await ami.wait_event(lambda e: e.name == "Hangup" and e.get("Uniqueid") == "call-d", 5)
    stream = ami.call_events("call-d")
    names = []
    async with asyncio.timeout(2):
        async for event in stream:
            names.append(event.name)
            if event.name == "Hangup":
                break
    assert names[0] == "Newchannel"


async def test_command_returns_lines(ami: Ami) -> None:
    assert await ami.command("core show channels") == ["0 active channels", "0 active calls"]


@pytest.mark.parametrize("shutdown", [True, False])
async def test_connection_loss_fails_calls_and_reconnects(
    ami: Ami, fake: FakeAmi, shutdown: bool
) -> None:
    stream = ami.call_events("call-live")
    fake.send("Event: Newchannel\r\nUniqueid: call-live\r\nChannelStateDesc: Down")
    fake.send("Event: Newstate\r\nUniqueid: call-live\r\nChannelStateDesc: Up")
    fake.drop(shutdown=shutdown)
    tracker = CallOutcomeTracker("call-live")
    async with asyncio.timeout(5):
        async for event in stream:
            tracker.feed(event)
            if event.name == LOST_EVENT:
                break
    assert tracker.outcome.status is CallStatus.FAILED and tracker.outcome.answered
    expected = "asterisk restarted" if shutdown else "AMI connection lost"
    assert tracker.outcome.hangup_cause_text == expected
    assert not ami.connected
    await ami.wait_connected(5)
    assert ami.reconnects == 1 and fake.logins == 2
    events = await _collect(ami, "call-after", "1002")
    assert events[-1].name in ("Hangup", "OriginateResponse")
