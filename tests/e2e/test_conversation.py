"""Real conversations: the default models, a real Asterisk, the customer simulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from agent.app import Telephony
from agent.audio.resample import resample
from agent.campaigns.calling import default_policy
from agent.config import Settings
from agent.conversation.calls import Conversations
from agent.conversation.events import BargeIn, Said, TurnTimings
from agent.simulator import analysis
from agent.simulator.customer import CustomerSimulator, SimulatedCall
from agent.simulator.scenario import Hangup, Pause, Say, Scenario
from agent.speech.models import Speech

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def agent(
    speech: Speech, settings: Settings
) -> AsyncIterator[tuple[Telephony, Conversations]]:
    policy = default_policy(settings.campaigns[0], settings.merchant, speech.llm)
    handler = Conversations(speech, policy, settings.speech.turn)
    async with Telephony(settings, handler) as tel:
        yield tel, handler


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


async def heard_text(speech: Speech, call: SimulatedCall, after: float) -> str:
    pcm = b"".join(f.pcm for f in call.heard if f.at >= after)
    return (await speech.stt.transcribe(resample(pcm, 8000, 16000))).text


async def test_the_agent_understands_and_answers(
    agent: tuple[Telephony, Conversations], simulator: CustomerSimulator, speech: Speech
) -> None:
    tel, handler = agent
    line = "Hi, I left some running shoes in my cart. Can you send me the link?"
    greeting_s = len(await speech.render(handler.policy.greeting())) / 16000
    simulator.book.add(
        "15550020001",
        Scenario(
            steps=(
                Pause(greeting_s + 0.8),
                Say(pcm=await speech.render(line), label="question"),
                Pause(9.0),
                Hangup(),
            )
        ),
    )
    placed, session = await handler.place(tel, "15550020001", amd=False)
    await placed.wait_done(60)
    customer = await simulator.wait_call("15550020001")

    # The greeting reached the customer's ear promptly after the answer.
    assert customer.connected_at is not None
    first_loud = next(f.at for f in customer.heard if analysis.level_dbfs(f.pcm) > -45)
    assert first_loud - customer.connected_at < 1.0

    caller_lines = [e.text for e in session.events if isinstance(e, Said) and e.who == "caller"]
    assert len(caller_lines) == 1
    assert len(words(caller_lines[0]) & words(line)) >= 0.7 * len(words(line))

    timings = [e for e in session.events if isinstance(e, TurnTimings)]
    # A bound against a hung pipeline, not a speed check (that is scripts/bench-latency):
    # on two shared cores one turn took 8.5 s while other work ran.
    assert len(timings) == 1 and timings[0].response_s < 20.0

    # What the customer heard after its question is intelligible speech.
    said = customer.said[0]
    reply = await heard_text(speech, customer, said.ended_at)
    assert len(words(reply)) >= 3, reply


async def test_barge_in_through_asterisk_stops_the_audio(
    agent: tuple[Telephony, Conversations], simulator: CustomerSimulator, speech: Speech
) -> None:
    tel, handler = agent
    interruption = await speech.render("Sorry, wait, wait. I have a question.")
    simulator.book.add(
        "15550020002",
        Scenario(steps=(Pause(2.0), Say(pcm=interruption), Pause(6.0), Hangup())),
    )
    placed, session = await handler.place(tel, "15550020002", amd=False)
    await placed.wait_done(60)
    customer = await simulator.wait_call("15550020002")
    barge = [e for e in session.events if isinstance(e, BargeIn)]
    assert barge, "the caller talked over the greeting"
    decided = barge[0].at
    # The agent's greeting stopped at the customer's ear soon after the decision.
    spoken_by_customer = customer.said[0]
    agent_audio = [
        f.at
        for f in customer.heard
        if decided - 1.0 < f.at < spoken_by_customer.ended_at and analysis.level_dbfs(f.pcm) > -45
    ]
    assert agent_audio and max(agent_audio) - decided < 0.25
    assert barge[0].heard and len(barge[0].heard) < len(handler.policy.greeting())
