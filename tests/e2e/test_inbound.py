"""A customer calls the merchant: FastAGI routing by caller ID, then the media path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from agent.app import Telephony
from agent.config import Settings
from agent.simulator import analysis, voice
from agent.simulator.customer import CustomerSimulator
from agent.simulator.scenario import Pause, Say, Scenario
from agent.telephony.agi import InboundCall, InboundRoute
from agent.telephony.audiosocket import AudioSocketCall
from agent.telephony.dialer import PlacedCall

pytestmark = pytest.mark.asterisk


class Router:
    """Knows one customer by caller ID."""

    def __init__(self) -> None:
        self.seen: list[InboundCall] = []

    async def route(self, call: InboundCall) -> InboundRoute:
        self.seen.append(call)
        known = call.caller_id.lstrip("+") == "15557654321"
        return InboundRoute(
            campaign="abandoned-checkout" if known else None,
            call_id=f"in-{len(self.seen)}",
            known_customer=known,
        )


@dataclass
class Merchant:
    router: Router
    greeting: bytes
    connections: list[AudioSocketCall] = field(default_factory=list)
    heard: bytearray = field(default_factory=bytearray)


@pytest.fixture
async def merchant(settings: Settings) -> AsyncIterator[Merchant]:
    m = Merchant(Router(), await voice.speak("Thanks for calling Example Store back."))

    async def media(conn: AudioSocketCall, call: PlacedCall | None) -> None:
        assert call is None
        m.connections.append(conn)

        async def listen() -> None:
            async for pcm in conn.audio():
                m.heard.extend(pcm)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(listen())
            conn.play(m.greeting)
            await asyncio.sleep(len(m.greeting) / 16000 + 4.0)
            await conn.hangup()
            task.cancel()

    async with Telephony(settings, media, m.router):
        yield m


async def test_a_known_customer_calls_back(
    merchant: Merchant, simulator: CustomerSimulator
) -> None:
    call = await simulator.call_merchant(
        "+15557654321",
        Scenario(steps=(Pause(0.3), Say(text="Hi, you called me earlier about my order."))),
    )
    await call.wait_done(20)
    assert len(merchant.router.seen) == 1
    seen = merchant.router.seen[0]
    assert seen.caller_id.lstrip("+") == "15557654321"
    assert seen.dialed.lstrip("+") == "15550100000"
    assert len(merchant.connections) == 1
    assert not call.hung_up_by_customer
    assert analysis.find(merchant.greeting, call.heard_pcm()).correlation > 0.7
    said = call.said[0].pcm
    assert analysis.find(said, bytes(merchant.heard)).correlation > 0.7


async def test_routing_failure_still_answers(
    settings: Settings, simulator: CustomerSimulator
) -> None:
    class Broken:
        async def route(self, call: InboundCall) -> InboundRoute:
            raise RuntimeError("database is down")

    answered: list[AudioSocketCall] = []

    async def media(conn: AudioSocketCall, call: PlacedCall | None) -> None:
        answered.append(conn)
        await conn.hangup()

    async with Telephony(settings, media, Broken()) as tel:
        call = await simulator.call_merchant("+15557650000", Scenario(steps=(Pause(5.0),)))
        await call.wait_done(15)
        assert tel.agi.failures == 1
    assert len(answered) == 1
