"""`cartline serve` stopping with a call live: after the drain time the call goes to a person."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select

from agent.app import Server
from agent.config import Settings
from agent.conversation.script import ScriptSettings
from agent.simulator.customer import CustomerSimulator
from agent.simulator.scenario import Pause, Say, Scenario
from agent.speech.models import Speech
from agent.store.db import Database
from agent.store.tables import AttemptStatus, CallAttempt, Outcome
from tests.e2e.shop import checkout_payload, deliver
from tests.e2e.test_campaign_calls import NUMBER, campaign_settings

pytestmark = pytest.mark.asterisk
TEAM = "+12125550177"


async def _until(done: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if done():
                return
            await asyncio.sleep(0.1)


async def test_a_live_call_is_handed_to_a_person_when_the_server_stops(
    settings: Settings, speech: Speech, simulator: CustomerSimulator, tmp_path: Path
) -> None:
    configured = campaign_settings(
        settings, tmp_path / "h.db", script=ScriptSettings(transfer_to=TEAM)
    )
    # A customer who listens in silence: the call is still going when the server stops.
    simulator.book.add(
        NUMBER, Scenario(steps=(Say(text="Hello?"), Pause(40.0)), max_call_s=45, name="listens")
    )
    simulator.book.add(TEAM, Scenario(steps=(Say(text="Store team, Alex speaking."), Pause(5.0))))
    server = Server(configured, speech)
    await server.start()
    stopped = False
    try:
        url = f"http://{configured.web.host}:{configured.web.port}"
        await deliver(
            url, "checkouts/create", checkout_payload("tok-hand-1", NUMBER, dt.datetime.now(dt.UTC))
        )
        customer = await simulator.wait_call(NUMBER, timeout_s=30)
        await _until(lambda: customer.connected_at is not None, 20)
        # Past answering-machine detection: the agent is on the line.
        await _until(lambda: bool(server.placer.live), 20)
        await asyncio.sleep(3.0)
        await server.stop(drain_s=1.0, hand_over=True)
        stopped = True
        team = await simulator.wait_call(TEAM, timeout_s=15)
        await _until(lambda: team.connected_at is not None, 15)
    finally:
        if not stopped:
            await server.stop(drain_s=1)
    db = Database(configured.database_url)
    with db.session() as s:
        attempt = s.exec(select(CallAttempt)).one()
        outcome = s.exec(select(Outcome)).one()
    db.close()
    assert attempt.status == AttemptStatus.ANSWERED and attempt.ended_at is not None
    assert outcome.code == "transferred"
