"""Real calls through a real Asterisk, over SIP and RTP, to the customer simulator."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from agent.app import Telephony
from agent.config import Settings
from agent.simulator import analysis, voice
from agent.simulator.customer import CustomerSimulator
from agent.simulator.lab import pbx_login
from agent.simulator.scenario import (
    Answer,
    Dtmf,
    Hangup,
    Pause,
    Say,
    Scenario,
    human_hello,
    voicemail,
)
from agent.telephony import asterisk
from agent.telephony.audiosocket import AudioSocketCall, EndReason
from agent.telephony.dialer import PlacedCall
from agent.telephony.dialplan import Instance
from agent.telephony.outcomes import Amd, CallOutcome, CallStatus, HungUpBy

pytestmark = pytest.mark.asterisk

AgentScript = Callable[[AudioSocketCall, PlacedCall | None], Awaitable[None]]


class Agent:
    """The agent side for tests: runs a script per call and records what it heard."""

    def __init__(self) -> None:
        self.script: AgentScript | None = None
        self.heard: dict[str, bytearray] = {}
        self.dtmf: dict[str, str] = {}
        self.connections: list[AudioSocketCall] = []
        self.inbound: list[AudioSocketCall] = []

    async def __call__(self, conn: AudioSocketCall, call: PlacedCall | None) -> None:
        key = call.call_id if call is not None else str(conn.uuid)
        if call is None:
            self.inbound.append(conn)
        self.connections.append(conn)
        heard = self.heard.setdefault(key, bytearray())
        self.dtmf.setdefault(key, "")

        async def listen() -> None:
            async for pcm in conn.audio():
                heard.extend(pcm)

        async def keys() -> None:
            async for digit in conn.dtmf():
                self.dtmf[key] += digit

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(listen()), tg.create_task(keys())]
            if self.script is not None:
                await self.script(conn, call)
            await conn.wait_closed()
            for task in tasks:
                task.cancel()


@pytest.fixture
async def agent(settings: Settings) -> AsyncIterator[tuple[Telephony, Agent]]:
    handler = Agent()
    async with Telephony(settings, handler) as tel:
        yield tel, handler


async def _speak_then_hang_up(pcm: bytes, extra_s: float = 0.5) -> AgentScript:
    async def script(conn: AudioSocketCall, call: PlacedCall | None) -> None:
        conn.play(pcm)
        await asyncio.sleep(len(pcm) / 16000 + extra_s)
        await conn.hangup()

    return script


def _channels(instance: Instance) -> int:
    out = asterisk.run_cli(instance, "core show channels count")
    for line in out.splitlines():
        if "active channel" in line:
            return int(line.split()[0])
    raise AssertionError(out)


async def _no_channels_left(instance: Instance, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        # Asterisk's CLI is the witness here; there is no event to wait on.
        while await asyncio.to_thread(_channels, instance):  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_audio_flows_both_ways(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator, pbx: Instance
) -> None:
    tel, handler = agent
    agent_line = await voice.speak("Hello, this is Example Store calling about your cart.")
    signal = agent_line + voice.tone(440, 1.0)
    handler.script = await _speak_then_hang_up(signal, extra_s=1.5)
    simulator.book.add(
        "15550001001",
        Scenario(steps=(Pause(0.4), Say(text="Yes, I am listening. Go ahead please.")), name="x"),
    )
    placed = await tel.dialer.place("+15550001001", amd=False)
    outcome = await placed.wait_done(40)
    customer = await simulator.wait_call("15550001001")
    await customer.wait_done(5)

    assert outcome.status is CallStatus.ANSWERED and outcome.answered
    assert outcome.hung_up_by is HungUpBy.AGENT
    heard_by_customer = analysis.find(signal, customer.heard_pcm())
    assert heard_by_customer.correlation > 0.7
    said = customer.said[0]
    heard_by_agent = analysis.find(said.pcm, bytes(handler.heard[placed.call_id]))
    assert heard_by_agent.correlation > 0.7
    # Both sides of the pipe saw roughly real-time audio, not bursts.
    assert customer.ended_at is not None and customer.connected_at is not None
    assert len(customer.heard) * 0.02 == pytest.approx(
        customer.ended_at - customer.connected_at, abs=1.0
    )
    await _no_channels_left(pbx)


async def test_busy_and_no_answer_give_their_outcomes_and_causes(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator
) -> None:
    tel, _ = agent
    simulator.book.add("15550002001", Scenario(answer=Answer.BUSY))
    simulator.book.add("15550002002", Scenario(answer=Answer.NO_ANSWER))
    busy = await tel.dialer.place("15550002001")
    ringing = await tel.dialer.place("15550002002")
    busy_outcome = await busy.wait_done(10)
    assert busy_outcome.status is CallStatus.BUSY
    assert busy_outcome.hangup_cause == 17 and not busy_outcome.answered
    no_answer = await ringing.wait_done(15)
    assert no_answer.status is CallStatus.NO_ANSWER
    assert no_answer.hangup_cause in (19, 0) and not no_answer.answered


async def test_customer_hangs_up_mid_sentence(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator, pbx: Instance
) -> None:
    tel, handler = agent
    long_line = await voice.speak(
        "I am going to talk for quite a while now so that I can be cut off in the middle."
    )
    handler.script = await _speak_then_hang_up(long_line + long_line, extra_s=5)
    simulator.book.add(
        "15550003001",
        Scenario(
            steps=(Pause(0.3), Say(text="Sorry, I have to go right now.", hangup_after_s=1.0))
        ),
    )
    placed = await tel.dialer.place("15550003001", amd=False)
    outcome = await placed.wait_done(30)
    assert outcome.answered and outcome.hung_up_by is HungUpBy.CUSTOMER
    assert outcome.hangup_cause == 16
    conn = handler.connections[-1]
    await asyncio.wait_for(conn.wait_closed(), 5)
    assert conn.end_reason in (EndReason.CALLER_EOF, EndReason.CALLER_HANGUP)
    await _no_channels_left(pbx)
    assert tel.dialer.active == {}


async def test_dtmf_reaches_the_agent(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator
) -> None:
    tel, handler = agent
    simulator.book.add(
        "15550004001", Scenario(steps=(Pause(0.5), Dtmf("1234#"), Pause(1.0), Hangup()))
    )
    placed = await tel.dialer.place("15550004001", amd=False)
    await placed.wait_done(30)
    assert handler.dtmf[placed.call_id] == "1234#"


async def test_amd_tells_a_person_from_a_voicemail(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator
) -> None:
    tel, _ = agent
    simulator.book.add("15550005001", human_hello())
    simulator.book.add("15550005002", voicemail(voice.tone(1000, 0.5)))
    person = await tel.dialer.place("15550005001", amd=True)
    machine = await tel.dialer.place("15550005002", amd=True)

    def has_amd(o: CallOutcome) -> bool:
        return o.amd is not None

    assert (await person.wait_until(has_amd, 20)).amd is Amd.HUMAN
    assert (await machine.wait_until(has_amd, 20)).amd is Amd.MACHINE
    for call in (person, machine):
        conn = await call.wait_media(10)
        await conn.hangup()
        await call.wait_done(10)


async def test_ten_simultaneous_calls(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator, pbx: Instance
) -> None:
    tel, handler = agent
    tones = {f"1555000600{i}": voice.tone(300 + 70 * i, 2.0) for i in range(10)}
    by_call: dict[str, bytes] = {}

    async def script(conn: AudioSocketCall, call: PlacedCall | None) -> None:
        assert call is not None
        conn.play(by_call[call.call_id])
        await asyncio.sleep(2.8)
        await conn.hangup()

    handler.script = script
    for number in tones:
        simulator.book.add(number, Scenario(steps=(Pause(10.0),)))
    placed = {}
    for number, pcm in tones.items():
        call = await tel.dialer.place(number, amd=False)
        by_call[call.call_id] = pcm
        placed[number] = call
    outcomes = await asyncio.gather(*(c.wait_done(40) for c in placed.values()))
    assert all(o.answered and o.hung_up_by is HungUpBy.AGENT for o in outcomes)
    for number, pcm in tones.items():
        heard = (await simulator.wait_call(number)).heard_pcm()
        own = analysis.find(pcm[:8000], heard).correlation
        others = [
            analysis.find(p[:8000], heard).correlation for n, p in tones.items() if n != number
        ]
        assert own > 0.7, number
        assert own > max(others), number
    await _no_channels_left(pbx)


async def test_bad_audiosocket_clients_do_not_harm_a_call(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator, settings: Settings
) -> None:
    tel, handler = agent
    line = await voice.speak("This call must go on while others misbehave.")
    handler.script = await _speak_then_hang_up(line, extra_s=1.0)
    simulator.book.add("15550007001", Scenario(steps=(Pause(8.0),)))
    placed = await tel.dialer.place("15550007001", amd=False)
    await placed.wait_media(15)
    port = settings.audiosocket.port
    silent = socket.create_connection(("127.0.0.1", port))
    garbage = socket.create_connection(("127.0.0.1", port))
    garbage.sendall(b"\x01\x00\x10" + b"\x00" * 16 + b"\x77\xff\xff" + b"junk" * 50)
    try:
        outcome = await placed.wait_done(30)
    finally:
        silent.close()
        garbage.close()
    assert outcome.answered and outcome.hung_up_by is HungUpBy.AGENT
    heard = (await simulator.wait_call("15550007001")).heard_pcm()
    assert analysis.find(line, heard).correlation > 0.7


async def test_asterisk_restart_during_a_call(
    agent: tuple[Telephony, Agent],
    simulator: CustomerSimulator,
    settings: Settings,
    pbx: Instance,
) -> None:
    tel, handler = agent
    simulator.book.add("15550008001", Scenario(steps=(Pause(30.0),)))
    placed = await tel.dialer.place("15550008001", amd=False)
    await placed.wait_media(15)
    await asyncio.to_thread(asterisk.stop, pbx, settings.state_dir)
    outcome = await placed.wait_done(10)
    assert outcome.answered and outcome.status is CallStatus.FAILED
    assert outcome.hangup_cause_text in ("asterisk restarted", "AMI connection lost")
    await asyncio.to_thread(asterisk.start, pbx, settings.state_dir, pbx_login(settings), 20)
    await tel.ami.wait_connected(15)

    line = await voice.speak("Back again after the restart.")
    handler.script = await _speak_then_hang_up(line)
    simulator.book.add("15550008002", Scenario(steps=(Pause(6.0),)))
    again = await tel.dialer.place("15550008002", amd=False)
    second = await again.wait_done(30)
    assert second.answered and second.hung_up_by is HungUpBy.AGENT
    heard = (await simulator.wait_call("15550008002")).heard_pcm()
    assert analysis.find(line, heard).correlation > 0.7


async def test_transfer_to_a_person(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator, pbx: Instance
) -> None:
    tel, handler = agent
    person_line = await voice.speak("Hello, this is Robin from the store team. How can I help?")
    simulator.book.add("15550010001", Scenario(steps=(Pause(12.0),), name="customer"))
    simulator.book.add(
        "15550010999", Scenario(steps=(Pause(0.5), Say(pcm=person_line), Pause(1.0), Hangup()))
    )

    async def script(conn: AudioSocketCall, call: PlacedCall | None) -> None:
        assert call is not None
        await asyncio.sleep(0.5)
        await tel.transfer(call, "15550010999")

    handler.script = script
    placed = await tel.dialer.place("15550010001", amd=False)
    outcome = await placed.wait_done(30)
    assert outcome.answered
    assert any(
        e.name == "UserEvent" and e.get("UserEvent") == "CartlineTransfer" for e in placed.events
    )
    customer = await simulator.wait_call("15550010001")
    person = await simulator.wait_call("15550010999")
    await person.wait_done(5)
    assert analysis.find(person_line, customer.heard_pcm()).correlation > 0.7
    await _no_channels_left(pbx)


async def test_text_message_over_the_trunk(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator
) -> None:
    tel, _ = agent
    body = "Your cart is waiting: https://shop.example/c/42?d=SAVE10, reply STOP to opt out"
    await tel.send_text("+15550011001", body)
    message = await simulator.wait_message("15550011001")
    assert message.body == body


async def test_hang_up_over_ami(
    agent: tuple[Telephony, Agent], simulator: CustomerSimulator, pbx: Instance
) -> None:
    tel, _ = agent
    simulator.book.add("15550012001", Scenario(ring_s=0.5, steps=(Pause(20.0),)))
    placed = await tel.dialer.place("15550012001", amd=False)
    await placed.wait_media(10)
    await asyncio.sleep(1.0)
    await tel.hangup(placed)
    outcome = await placed.wait_done(10)
    assert outcome.answered and outcome.hung_up_by is HungUpBy.AGENT
    assert outcome.answered_at is not None and outcome.originated_at is not None
    assert outcome.answered_at - outcome.originated_at >= 0.5  # it rang first
    customer = await simulator.wait_call("15550012001")
    await customer.wait_done(5)
    assert not customer.hung_up_by_customer
    await _no_channels_left(pbx)
