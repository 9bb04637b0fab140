"""A real pair of Asterisk instances for the end-to-end tests.

Cartline's Asterisk and the customer simulator's run from the Asterisk root
that scripts/install-asterisk made, on free ports and under instance names of
their own, so a test run does not collide with a running Cartline or another
run. They start once per test session and are stopped by PID at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.config import Settings, parse_settings
from agent.simulator.customer import CustomerSimulator
from agent.telephony import asterisk
from agent.telephony.dialplan import (
    Instance,
    pbx_instance,
    render_pbx,
    render_simulator,
    simulator_instance,
)

pytestmark = pytest.mark.asterisk


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        # A SIP port must be free for UDP; the others for TCP. Ask for both.
        port = _free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        ports.add(port)
    return sorted(ports)


def e2e_settings(state_dir: Path) -> Settings:
    p = _free_ports(8)
    rtp = 20000 + (os.getpid() % 100) * 200
    tag = f"t{os.getpid() % 100000}"
    return parse_settings(
        {
            "asterisk": {
                "root": os.environ.get("CARTLINE_ASTERISK_ROOT", "/opt/cartline/asterisk-root"),
                "instance": tag,
                "start_timeout_s": 20,
            },
            "ami": {"port": p[0], "secret": "e2e-secret", "reconnect_s": 0.5},
            "audiosocket": {"port": p[1], "uuid_timeout_s": 2},
            "fastagi": {"port": p[2]},
            "trunk": {
                "port": p[3],
                "sip_port": p[4],
                "rtp_port_start": rtp,
                "rtp_port_end": rtp + 99,
                "ring_timeout_s": 4,
            },
            "simulator": {
                "instance": f"{tag}-sim",
                "sip_port": p[3],
                "ami_port": p[5],
                "audiosocket_port": p[6],
                "fastagi_port": p[7],
                "rtp_port_start": rtp + 100,
                "rtp_port_end": rtp + 199,
            },
            "state_dir": str(state_dir),
        }
    )


def login(settings: Settings, simulator: bool = False) -> asterisk.AmiLogin:
    if simulator:
        s = settings.simulator
        return asterisk.AmiLogin(
            "127.0.0.1", s.ami_port, s.ami_username, s.ami_secret.get_secret_value()
        )
    a = settings.ami
    return asterisk.AmiLogin(a.host, a.port, a.username, a.secret.get_secret_value())


def _cleanup(instance: Instance) -> None:
    for inner in (instance.etc_dir, instance.run_dir, instance.log_dir, instance.db_dir):
        shutil.rmtree(instance.host(inner), ignore_errors=True)
    shutil.rmtree(
        instance.host(instance.etc_dir).with_name(instance.name + ".new"), ignore_errors=True
    )


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Both Asterisk instances running, with the settings that reach them."""
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests run Asterisk in its root with chroot: run them as root")
    cfg = e2e_settings(tmp_path_factory.mktemp("cartline-state"))
    if not (cfg.asterisk.root / "usr/sbin/asterisk").exists():
        pytest.fail(f"no Asterisk at {cfg.asterisk.root}: run scripts/install-asterisk")
    pbx, sim = render_pbx(cfg), render_simulator(cfg)
    try:
        asterisk.start(pbx, cfg.state_dir, login(cfg), 20)
        asterisk.start(sim, cfg.state_dir, login(cfg, simulator=True), 20)
        yield cfg
    finally:
        for inst in (pbx, sim):
            asterisk.stop(inst, cfg.state_dir)
            _cleanup(inst)


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
