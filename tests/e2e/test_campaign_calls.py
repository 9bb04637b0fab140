"""The campaign engine end to end: a store webhook in, real calls out through Asterisk."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import Session, col, select

from agent.app import Server
from agent.campaigns.attempts import transcript_turns
from agent.campaigns.settings import (
    CampaignSettings,
    IntakeSettings,
    RetrySettings,
    SchedulerSettings,
    StoreSettings,
)
from agent.config import Settings
from agent.privacy.crypto import RECORDING_CONTEXT
from agent.simulator.customer import CustomerSimulator
from agent.simulator.scenario import Answer, Hangup, Pause, Say, Scenario
from agent.speech.models import Speech
from agent.store.tables import (
    AttemptStatus,
    Attribution,
    CallAttempt,
    CallJob,
    JobState,
    Outcome,
    Recording,
    Transcript,
)
from tests.e2e.shop import SECRET, checkout_payload, deliver, order_payload

pytestmark = pytest.mark.asterisk
T = TypeVar("T")
NUMBER = "+12125550142"  # a New York number: the calling window is New York's


def campaign_settings(settings: Settings, db_path: Path, **campaign: Any) -> Settings:
    c: dict[str, Any] = {
        "name": "checkout-recovery",
        "delay_min": 0.05,
        "min_spacing_min": 0,
        "retry": RetrySettings(busy_min=0.05, no_answer_min=0.05),
        "window_start": dt.time(0, 0),
        "window_end": dt.time(23, 59, 59),
    }
    c.update(campaign)
    return settings.model_copy(
        update={
            "campaigns": (CampaignSettings(**c),),
            "intake": IntakeSettings(shopify_secret=SECRET),
            "store": StoreSettings(url=f"sqlite:///{db_path}"),
            "scheduler": SchedulerSettings(poll_s=0.3, voice_slots=2, server_id="e2e"),
        }
    )


@pytest.fixture
async def server(settings: Settings, speech: Speech, tmp_path: Path) -> AsyncIterator[Server]:
    srv = Server(campaign_settings(settings, tmp_path / "c.db"), speech)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop(drain_s=5)


async def eventually(
    srv: Server, query: Callable[[Session], T], done: Callable[[T], bool], timeout_s: float
) -> T:
    async with asyncio.timeout(timeout_s):
        while True:
            value = await srv.db.run(query)
            if done(value):
                return value
            await asyncio.sleep(0.3)


async def test_webhook_call_busy_retry_answer_and_recovered_revenue(
    server: Server, simulator: CustomerSimulator
) -> None:
    simulator.book.add_sequence(
        NUMBER,
        Scenario(answer=Answer.BUSY, name="busy"),
        Scenario(steps=(Say(text="Hello?"), Pause(4.0), Hangup()), name="answers"),
    )
    url = f"http://{server.settings.web.host}:{server.settings.web.port}"
    abandoned = dt.datetime.now(dt.UTC)
    answer = await deliver(
        url, "checkouts/create", checkout_payload("tok-e2e-1", NUMBER, abandoned)
    )
    assert answer["accepted"] and not answer["duplicate"]

    def attempts(s: Session) -> list[CallAttempt]:
        return list(s.exec(select(CallAttempt).order_by(col(CallAttempt.id))).all())

    done = await eventually(
        server,
        attempts,
        lambda rows: len(rows) == 2 and rows[1].ended_at is not None,
        timeout_s=90,
    )
    busy, answered = done
    assert busy.status == AttemptStatus.BUSY
    assert answered.status == AttemptStatus.ANSWERED
    # The delay was honoured: no call before it.
    assert busy.started_at >= abandoned + dt.timedelta(seconds=3)
    assert len(simulator.calls) == 2
    job = await server.db.run(lambda s: s.exec(select(CallJob)).one())
    outcome = await server.db.run(lambda s: s.exec(select(Outcome)).one())
    # The model's verdict on "Hello?" varies; whatever it is closes the job with it.
    assert outcome.attempt_id == answered.id
    assert (job.state, job.result, job.attempts) == (JobState.DONE, outcome.code, 2)
    # Encryption at rest: the recording and the transcript are sealed as the call ends.
    keys = server.placer.keys
    assert keys is not None
    recording = await server.db.run(lambda s: s.exec(select(Recording)).one())
    sealed = Path(recording.path)
    on_disk = await asyncio.to_thread(sealed.read_bytes)
    assert sealed.name.endswith(".wav.enc") and on_disk[:4] == b"CLE1"
    plain = sealed.with_name(sealed.name.removesuffix(".enc"))
    assert not await asyncio.to_thread(plain.exists)
    assert keys.open(on_disk, RECORDING_CONTEXT)[:4] == b"RIFF"
    transcript = await server.db.run(lambda s: s.exec(select(Transcript)).one())
    assert transcript.sealed is not None and transcript.turns == []
    assert transcript_turns(transcript, keys)[0]["speaker"] == "agent"

    ordered = dt.datetime.now(dt.UTC)
    await deliver(url, "orders/create", order_payload(9001, "tok-e2e-1", ordered, "182.50"))
    [credit] = await eventually(
        server, lambda s: list(s.exec(select(Attribution)).all()), bool, timeout_s=10
    )
    assert (credit.amount, credit.currency, credit.attempt_id) == (
        Decimal("182.50"),
        "USD",
        answered.id,
    )
