"""The AMI client against recorded Asterisk conversations replayed over real TCP."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import AsyncIterator

import pytest

from agent.telephony.ami import LOST_EVENT, Ami, AmiError, AmiEvent, AmiLoginError, is_noise
from agent.telephony.outcomes import Amd, CallOutcomeTracker, CallStatus, HungUpBy
from tests.fakes.ami_server import FakeAmi, parse_block, recorded_messages

SCRIPTS = {
    "1001": "answered",
    "1002": "busy",
    "1003": "no-answer",
    "1004": "customer-hangup",
}
CALLER_ID = "+15550100000"


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    for _ in range(3):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = {t for t in asyncio.all_tasks() - before if not t.done() and t is not current}
    assert not leaked


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(scripts=SCRIPTS)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ami(fake: FakeAmi) -> AsyncIterator[Ami]:
    client = Ami("127.0.0.1", fake.port, "cartline", "secret", reconnect_s=0.1)
    await client.connect(timeout_s=5)
    yield client
    await client.close()


async def follow(ami: Ami, call_id: str, number: str) -> tuple[list[AmiEvent], CallOutcomeTracker]:
    """Originates a call to a scripted number and follows it to its end."""
    tracker = CallOutcomeTracker(call_id)
    events = []
    async with ami.call_events(call_id) as stream:
        await ami.originate(
            channel=f"PJSIP/{number}@trunk",
            context="cartline-outbound",
            exten="start",
            call_id=call_id,
            caller_id=CALLER_ID,
        )
        async with asyncio.timeout(5):
            async for event in stream:
                events.append(event)
                tracker.feed(event)
                if tracker.done:
                    break
    return events, tracker


def expected_names(recording: str) -> list[str]:
    """The recorded call's events, in wire order, as a call stream should give them."""
    names = []
    for block in recorded_messages(recording):
        fields = parse_block(block)
        name = fields.get("Event")
        if name and not is_noise(name, fields) and f"rec-{recording}" in block:
            names.append(name)
    return names


async def test_login_and_bad_login(fake: FakeAmi) -> None:
    good = Ami("127.0.0.1", fake.port, "cartline", "secret")
    await good.connect(timeout_s=5)
    assert good.connected and fake.logins == 1
    await good.close()
    assert not good.connected

    bad = Ami("127.0.0.1", fake.port, "cartline", "wrong-secret", reconnect_s=0.05)
    with pytest.raises(AmiLoginError) as info:
        await bad.connect(timeout_s=5)
    assert "wrong-secret" not in str(info.value)
    assert "refused user 'cartline'" in str(info.value)
    # No reconnecting with a refused secret once connect() has failed.
    await asyncio.sleep(0.3)
    assert fake.failed_logins == 1 and not bad.connected


async def test_unreachable_ami_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ami = Ami("127.0.0.1", port, "cartline", "secret")
    with pytest.raises(AmiError, match=f"cannot connect to the AMI at 127.0.0.1:{port}"):
        await ami.connect(timeout_s=2)


async def test_a_server_that_never_logs_in_times_out() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(AmiError, match="no AMI login"):
            await Ami("127.0.0.1", port, "u", "s").connect(timeout_s=0.3)
    finally:
        server.close()
        await server.wait_closed()


async def test_answered_call_in_wire_order(ami: Ami, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    events, tracker = await follow(ami, "call-a", "1001")
    names = [e.name for e in events]
    # OriginateResponse reaches the action in panoramisk, yet it is here, in its place.
    assert names == expected_names("answered")
    assert names.index("OriginateResponse") < names.index("Newstate")
    assert [e.received_at for e in events] == sorted(e.received_at for e in events)
    o = tracker.outcome
    assert o.status is CallStatus.ANSWERED and o.answered and o.done
    assert o.amd is Amd.HUMAN and o.amd_cause.startswith("HUMAN")
    assert o.hung_up_by is HungUpBy.AGENT and o.hangup_cause == 16
    response = await ami.wait_event(lambda e: e.name == "OriginateResponse", 1)
    assert response.get("Reason") == "4" and response.get("ChannelId") == "call-a"
    assert CALLER_ID not in caplog.text


async def test_customer_hangup(ami: Ami) -> None:
    events, tracker = await follow(ami, "call-h", "1004")
    assert [e.name for e in events] == expected_names("customer-hangup")
    assert tracker.outcome.answered and tracker.outcome.hung_up_by is HungUpBy.CUSTOMER
    assert tracker.outcome.amd is None


@pytest.mark.parametrize(
    ("number", "status", "cause"),
    [("1002", CallStatus.BUSY, 17), ("1003", CallStatus.NO_ANSWER, 19)],
)
async def test_busy_and_no_answer(ami: Ami, number: str, status: CallStatus, cause: int) -> None:
    events, tracker = await follow(ami, f"call-{number}", number)
    assert "OriginateResponse" in [e.name for e in events]
    assert tracker.outcome.status is status and tracker.outcome.hangup_cause == cause
    assert not tracker.outcome.answered and tracker.outcome.done


async def test_originate_returns_once_queued(ami: Ami, fake: FakeAmi) -> None:
    fake.held.add("1003")
    stream = ami.call_events("call-q")
    await ami.originate(
        channel="PJSIP/1003@trunk",
        context="cartline-outbound",
        exten="start",
        call_id="call-q",
        variables={"AS_UUID": "u-1", "NOTE": 'a,b "c" (d) [e] \\f'},
        caller_id=CALLER_ID,
        timeout_ms=4000,
    )
    assert stream.pending == 0  # queued, nothing more yet: the phone is still ringing
    (sent,) = fake.named("Originate")
    assert sent["channelid"] == "call-q" and sent["async"] == "true"
    assert sent["timeout"] == "4000" and sent["callerid"] == CALLER_ID
    assert sent["variable"].split("\n") == [
        "CALL_ID=call-q",
        "AS_UUID=u-1",
        'NOTE=a\\,b \\"c\\" \\(d\\) \\[e\\] \\\\f',
    ]
    fake.release()
    tracker = CallOutcomeTracker("call-q")
    async with asyncio.timeout(5):
        async for event in stream:
            tracker.feed(event)
            if tracker.done:
                break
    await stream.aclose()
    assert tracker.outcome.status is CallStatus.NO_ANSWER


async def test_bad_originate_values_are_refused_before_sending(ami: Ami, fake: FakeAmi) -> None:
    with pytest.raises(AmiError, match="line break"):
        await ami.originate(
            channel="PJSIP/1001@trunk", context="c", exten="s", call_id="x", caller_id="1\r\nX: y"
        )
    with pytest.raises(AmiError, match="not a channel variable name"):
        await ami.originate(
            channel="PJSIP/1001@trunk", context="c", exten="s", call_id="x", variables={"A=B": "1"}
        )
    assert fake.named("Originate") == []


async def test_refused_originate_raises(ami: Ami) -> None:
    with pytest.raises(AmiError, match="refused the Originate: Originate failed"):
        await ami.originate(channel="PJSIP/9999@trunk", context="c", exten="s", call_id="x")


async def test_events_of_other_calls_are_not_delivered(ami: Ami, fake: FakeAmi) -> None:
    other = ami.call_events("someone-else")
    events, _ = await follow(ami, "call-c", "1004")
    assert other.pending == 0
    assert all("call-c" in e.call_ids for e in events)
    fake.send("Event: UserEvent", "UserEvent: Note", "CallId: someone-else")
    note = await ami.wait_event(lambda e: e.get("UserEvent") == "Note", 2)
    assert await anext(other) is note
    await other.aclose()


async def test_late_subscriber_gets_the_history(ami: Ami) -> None:
    await ami.originate(channel="PJSIP/1001@trunk", context="c", exten="s", call_id="call-d")
    await ami.wait_event(lambda e: e.name == "Hangup" and e.get("Uniqueid") == "call-d", 5)
    names = []
    async with ami.call_events("call-d") as stream:
        while stream.pending:
            names.append((await anext(stream)).name)
    assert names == expected_names("answered")


async def test_wait_event_times_out(ami: Ami) -> None:
    with pytest.raises(TimeoutError):
        await ami.wait_event(lambda e: e.name == "Never", 0.05)


async def test_noise_filter_is_configurable(fake: FakeAmi) -> None:
    ami = Ami("127.0.0.1", fake.port, "cartline", "secret", noise=None)
    await ami.connect(timeout_s=5)
    try:
        await ami.originate(channel="PJSIP/1001@trunk", context="c", exten="s", call_id="n-1")
        await ami.wait_event(lambda e: e.name == "Hangup", 5)
        async with ami.call_events("n-1") as stream:
            names = {(await anext(stream)).name for _ in range(stream.pending)}
        assert {"VarSet", "Newexten"} <= names
        await ami.wait_event(lambda e: e.name == "TestEvent", 1)
    finally:
        await ami.close()


async def test_command_returns_lines(ami: Ami) -> None:
    assert await ami.command("core show channels") == ["0 active channels", "0 active calls"]


async def test_channel_actions(ami: Ami, fake: FakeAmi) -> None:
    fake.variables["CARTLINE_END"] = "agent"
    await ami.hangup("PJSIP/trunk-1", cause=17)
    await ami.redirect("PJSIP/trunk-1", "cartline-transfer", "15550001111")
    await ami.setvar("PJSIP/trunk-1", "FOO", "bar")
    assert await ami.getvar("PJSIP/trunk-1", "CARTLINE_END") == "agent"
    await ami.message_send("pjsip:trunk/sip:+1555@h", "sip:shop@h", "Héllo, world", {"X": "1"})
    assert fake.named("Hangup")[0]["cause"] == "17"
    assert fake.named("Redirect")[0]["priority"] == "1"
    (message,) = fake.named("MessageSend")
    assert message["destination"] == "pjsip:trunk/sip:+1555@h"
    assert base64.b64decode(message["base64body"]).decode() == "Héllo, world"
    assert message["variable"] == "X=1"
    sent = [a for a in fake.actions if a["action"] != "Login"]
    assert all("async" in a for a in sent)
    with pytest.raises(AmiError, match="Hangup failed: No such channel"):
        await ami.hangup("gone")


async def test_listener_errors_do_not_drop_the_connection(ami: Ami) -> None:
    seen: list[str] = []

    def broken(event: AmiEvent) -> None:
        seen.append(event.name)
        raise RuntimeError("listener bug")

    ami.add_listener(broken)
    _, tracker = await follow(ami, "call-l", "1002")
    assert tracker.done and "Hangup" in seen
    assert ami.connected and ami.reconnects == 0


@pytest.mark.parametrize("shutdown", [True, False])
async def test_connection_loss_fails_calls_and_reconnects(
    ami: Ami, fake: FakeAmi, shutdown: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.telephony.ami")
    stream = ami.call_events("call-live")
    fake.send("Event: Newchannel", "Uniqueid: call-live", "ChannelStateDesc: Down")
    fake.send("Event: Newstate", "Uniqueid: call-live", "ChannelStateDesc: Up")
    fake.drop(shutdown=shutdown)
    tracker = CallOutcomeTracker("call-live")
    async with asyncio.timeout(5):
        async for event in stream:
            tracker.feed(event)
            if event.name == LOST_EVENT:
                assert not ami.connected
                assert event.get("Shutdown") == ("yes" if shutdown else "no")
                break
    await stream.aclose()
    o = tracker.outcome
    assert o.status is CallStatus.FAILED and o.answered and o.done
    assert o.hung_up_by is HungUpBy.NETWORK
    assert o.hangup_cause_text == ("asterisk restarted" if shutdown else "AMI connection lost")
    await ami.wait_connected(5)
    assert ami.connected and ami.reconnects == 1 and fake.logins == 2
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(
        level == logging.WARNING and text.startswith("AMI connection lost; reconnecting")
        for level, text in messages
    )
    assert (logging.INFO, "AMI reconnected") in messages
    _, after = await follow(ami, "call-after", "1002")
    assert after.outcome.status is CallStatus.BUSY


async def test_actions_in_flight_fail_and_are_not_sent_again(ami: Ami, fake: FakeAmi) -> None:
    fake.silent.update({"getvar", "originate"})
    getvar = asyncio.create_task(ami.getvar("PJSIP/trunk-1", "X"))
    originate = asyncio.create_task(
        ami.originate(channel="PJSIP/1001@trunk", context="c", exten="s", call_id="twice")
    )
    async with asyncio.timeout(5):
        await fake.wait_actions(3)  # the login, and both actions
    fake.drop()
    for task in (getvar, originate):
        with pytest.raises(AmiError, match="connection was lost"):
            await task
    fake.silent.clear()
    await ami.wait_connected(5)
    assert await ami.command("core show channels")  # the new connection works
    # A second Originate would be a second phone call.
    assert len(fake.named("Originate")) == 1 and len(fake.named("Getvar")) == 1


async def test_not_connected_and_closed(ami: Ami) -> None:
    stream = ami.call_events("call-z")
    await ami.close()
    assert [e async for e in stream] == []
    with pytest.raises(AmiError, match="not connected"):
        await ami.hangup("PJSIP/trunk-1")
