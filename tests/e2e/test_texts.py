"""Text messages through the real Asterisk: the checkout link out, STOP, HELP and START in."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from agent.app import Server
from agent.campaigns.settings import MerchantSettings
from agent.campaigns.sms import NoConsent
from agent.config import Settings
from agent.simulator.customer import CustomerSimulator, TextMessage
from agent.speech.models import Speech
from agent.store.repository import on_do_not_call
from agent.store.tables import Contact
from tests.e2e.shop import checkout_payload, deliver
from tests.e2e.test_campaign_calls import NUMBER, campaign_settings, eventually

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def server(settings: Settings, speech: Speech, tmp_path: Path) -> AsyncIterator[Server]:
    # A long delay: this test is about texts, so no call is placed meanwhile.
    configured = campaign_settings(settings, tmp_path / "t.db", delay_min=600).model_copy(
        update={"merchant": MerchantSettings(name="Trail Shop", phone="+1 212 555 0199")}
    )
    srv = Server(configured, speech)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def _next_message(
    simulator: CustomerSimulator, seen: int, timeout_s: float = 10
) -> TextMessage:
    """The first message to NUMBER after the first ``seen`` of them."""
    key = NUMBER.lstrip("+")
    async with asyncio.timeout(timeout_s):
        while True:
            mine = [m for m in simulator.messages if m.to.lstrip("+") == key]
            if len(mine) > seen:
                return mine[seen]
            await asyncio.sleep(0.05)


def _count(simulator: CustomerSimulator) -> int:
    return sum(m.to.lstrip("+") == NUMBER.lstrip("+") for m in simulator.messages)


async def test_checkout_link_then_stop_help_and_start_over_the_trunk(
    server: Server, simulator: CustomerSimulator
) -> None:
    url = f"http://{server.settings.web.host}:{server.settings.web.port}"
    from_store = checkout_payload("tok-sms-1", NUMBER, dt.datetime.now(dt.UTC))
    await deliver(url, "checkouts/create", from_store)
    await eventually(
        server,
        lambda s: s.exec(select(Contact).where(col(Contact.phone_e164) == NUMBER)).first(),
        lambda c: c is not None,
        timeout_s=10,
    )
    t = server.settings.trunk
    merchant = f"sip:{server.settings.simulator.merchant_number}@{t.sip_bind_host}:{t.sip_port}"

    # The shopper agreed to texts at checkout (Shopify's SMS consent): the link goes out.
    await server.text_sender.send(NUMBER, "Your cart: https://shop.example/c/1", purpose="link")
    link = await _next_message(simulator, 0)
    assert link.body == "Your cart: https://shop.example/c/1 Reply STOP to opt out."

    await simulator.send_message(NUMBER, "STOP", merchant)
    confirm = await _next_message(simulator, 1)
    assert confirm.body.startswith("Trail Shop: you are unsubscribed")
    assert await server.db.run(lambda s: on_do_not_call(s, NUMBER))  # calls stop too
    with pytest.raises(NoConsent):
        await server.text_sender.send(NUMBER, "One more thing", purpose="follow-up")

    await simulator.send_message(NUMBER, "Stop", merchant)  # confirmed once only
    await simulator.send_message(NUMBER, "HELP", merchant)
    help_reply = await _next_message(simulator, 2)
    assert "Trail Shop" in help_reply.body and "+1 212 555 0199" in help_reply.body
    await asyncio.sleep(1.0)
    assert _count(simulator) == 3  # the second STOP got no answer

    await simulator.send_message(NUMBER, "START", merchant)
    again = await _next_message(simulator, 3)
    assert "subscribed again" in again.body
    assert not await server.db.run(lambda s: on_do_not_call(s, NUMBER))
    await server.text_sender.send(NUMBER, "Welcome back", purpose="follow-up")
    assert (await _next_message(simulator, 4)).body.startswith("Welcome back")
