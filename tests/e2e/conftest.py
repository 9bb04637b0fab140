"""A real pair of Asterisk instances for the end-to-end tests.

Cartline's Asterisk and the customer simulator's run from the Asterisk root
that scripts/install-asterisk made, on free ports and under instance names of
their own, so a test run does not collide with a running Cartline or another
run. They start once per test session and are stopped by PID at the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from agent.campaigns.calling import opening_prompt
from agent.config import Settings
from agent.simulator.customer import CustomerSimulator
from agent.simulator.lab import Lab, lab_settings
from agent.speech.models import Speech, load_speech
from agent.speech.weights import prepare_llm
from agent.telephony.dialplan import Instance, pbx_instance, simulator_instance

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Both Asterisk instances running on free ports, for the whole session."""
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests run Asterisk in its root with chroot: run them as root")
    with Lab(lab_settings(tmp_path_factory.mktemp("cartline-state"))) as running:
        yield running


@pytest.fixture(scope="session")
def settings(lab: Lab) -> Settings:
    return lab.settings


@pytest.fixture
def pbx(settings: Settings) -> Instance:
    return pbx_instance(settings)


@pytest.fixture
def sim_instance(settings: Settings) -> Instance:
    return simulator_instance(settings)


@pytest.fixture
async def simulator(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CustomerSimulator]:
    cache = tmp_path_factory.getbasetemp() / "voice-cache"
    sim = CustomerSimulator(settings.simulator, cache_dir=cache)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture(scope="session")
def speech(settings: Settings) -> Speech:
    """The real default models, loaded once for every end-to-end test that talks."""
    # The models hold no event-loop state, so one load serves every test's loop.
    prepare_llm(settings.speech.models_dir)
    prompt = opening_prompt(settings.campaigns[0], settings.merchant)
    return asyncio.run(load_speech(settings.speech, prompt))
