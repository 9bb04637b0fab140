"""`cartline serve` killed with SIGKILL mid-campaign: nobody is called twice, no job is lost."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from sqlmodel import select

from agent.config import Settings, dump_settings
from agent.simulator.customer import CustomerSimulator
from agent.simulator.scenario import Pause, Say, Scenario
from agent.store.db import Database
from agent.store.tables import AttemptStatus, CallAttempt, CallJob, JobState
from tests.e2e.shop import checkout_payload, deliver
from tests.e2e.test_campaign_calls import campaign_settings

pytestmark = pytest.mark.asterisk
NUMBERS = ["+12125550161", "+12125550162", "+12125550163"]
LATE = "+12125550164"


class ServeProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "-c", str(self.config), "-v", "serve"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def wait_ready(url: str, proc: ServeProcess, timeout_s: float = 180) -> None:
    async with asyncio.timeout(timeout_s), aiohttp.ClientSession() as session:
        while True:
            assert proc.proc is not None and proc.proc.poll() is None, proc.log.read_text()[-3000:]
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.5)


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Iterator[tuple[ServeProcess, Settings]]:
    cfg = campaign_settings(
        settings,
        tmp_path / "c.db",
        delay_min=0,
        retry={"interrupted_min": 60, "busy_min": 60, "no_answer_min": 60},
    )
    cfg = cfg.model_copy(
        update={"scheduler": cfg.scheduler.model_copy(update={"voice_slots": 3, "server_id": "k"})}
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(dump_settings(cfg)))
    proc = ServeProcess(path, tmp_path / "serve.log")
    try:
        yield proc, cfg
    finally:
        proc.stop()


async def test_sigkill_mid_campaign_then_restart(
    serve: tuple[ServeProcess, Settings], simulator: CustomerSimulator
) -> None:
    proc, cfg = serve
    long_call = Scenario(steps=(Say(text="Hello?"), Pause(40.0)), max_call_s=45, name="long")
    for n in NUMBERS:
        simulator.book.add(n, long_call)
    simulator.book.add(LATE, Scenario(steps=(Say(text="Hello?"), Pause(2.0)), max_call_s=4))
    url = f"http://{cfg.web.host}:{cfg.web.port}"
    proc.start()
    await wait_ready(url, proc)
    now = dt.datetime.now(dt.UTC)
    for i, n in enumerate([*NUMBERS, LATE]):
        await deliver(url, "checkouts/create", checkout_payload(f"tok-kill-{i}", n, now))
    # Three slots: the first three are called and stay on the line; the fourth waits.
    for n in NUMBERS:
        call = await simulator.wait_call(n, timeout_s=30)
        async with asyncio.timeout(20):
            # The simulator has no event for "connected"; its calls are few, so poll.
            while call.connected_at is None:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    proc.kill()

    proc.start()
    await wait_ready(url, proc)
    late = await simulator.wait_call(LATE, timeout_s=30)
    await late.wait_done(30)
    await asyncio.sleep(3)  # a few scheduler polls: nothing else may be dialled

    calls_per_number = {
        n: sum(c.number.lstrip("+") == n.lstrip("+") for c in simulator.calls)
        for n in [*NUMBERS, LATE]
    }
    assert calls_per_number == dict.fromkeys([*NUMBERS, LATE], 1)
    db = Database(cfg.database_url)
    try:
        jobs = db.call(lambda s: list(s.exec(select(CallJob)).all()))
        attempts = db.call(lambda s: list(s.exec(select(CallAttempt)).all()))
    finally:
        db.close()
    assert len(jobs) == 4
    interrupted = [a for a in attempts if a.status == AttemptStatus.INTERRUPTED]
    assert len(interrupted) == 3
    pending = [j for j in jobs if j.state == JobState.PENDING]
    assert len(pending) == 3  # the killed calls are kept, to be retried after the spacing
    assert all(j.due_at > now + dt.timedelta(minutes=30) for j in pending)
    assert [j.result for j in jobs if j.state == JobState.DONE] == ["answered"]
