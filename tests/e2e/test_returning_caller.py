"""A customer called by a campaign calls the merchant back: recognised, and helped in context."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from agent.app import Server
from agent.audio.resample import resample
from agent.config import Settings
from agent.simulator.customer import CustomerSimulator
from agent.simulator.scenario import AwaitReply, Pause, Say, Scenario
from agent.speech.models import Speech
from agent.store.tables import CallAttempt
from tests.e2e.shop import checkout_payload, deliver
from tests.e2e.test_campaign_calls import NUMBER, campaign_settings, eventually

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def server(settings: Settings, speech: Speech, tmp_path: Path) -> AsyncIterator[Server]:
    srv = Server(campaign_settings(settings, tmp_path / "r.db"), speech)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop(drain_s=5)


async def test_a_customer_calling_back_is_recognised_and_gets_the_link(
    server: Server, simulator: CustomerSimulator, speech: Speech
) -> None:
    # The campaign's call: the customer answers, then has to go.
    simulator.book.add(
        NUMBER, Scenario(steps=(Say(text="Hello?"), Pause(6.0)), max_call_s=8, name="goes")
    )
    url = f"http://{server.settings.web.host}:{server.settings.web.port}"
    now = dt.datetime.now(dt.UTC)
    await deliver(url, "checkouts/create", checkout_payload("tok-back-1", NUMBER, now))
    await eventually(
        server,
        lambda s: s.exec(select(CallAttempt)).first(),
        lambda a: a is not None and a.ended_at is not None,
        timeout_s=90,
    )
    first = await simulator.wait_call(NUMBER)
    await first.wait_done(30)

    # Later the customer calls the merchant's number back.
    ask = await speech.render("Hi, you called me about my cart. Can you text me the link?")
    back = await simulator.call_merchant(
        NUMBER,
        Scenario(
            steps=(
                AwaitReply(silence_s=1.0, timeout_s=20.0),
                Say(pcm=ask, label="ask"),
                AwaitReply(silence_s=1.5, timeout_s=40.0),
                Pause(2.0),
            ),
            max_call_s=70,
            name="calls-back",
        ),
    )
    await back.wait_done(90)
    # What the agent said first: the returning caller's greeting, not the campaign's opener.
    first_words = back.heard_between(back.connected_at or 0.0, back.said[0].started_at)
    heard = await speech.stt.transcribe(resample(first_words, 8000, 16000))
    print(f"the caller heard: {heard.text!r}")
    assert "calling us back" in heard.text.lower() or "call us back" in heard.text.lower()
    texts = [m for m in simulator.messages if m.to.lstrip("+") == NUMBER.lstrip("+")]
    assert texts, "the returning caller got the checkout link by text"
    assert "/checkouts/" in texts[-1].body
