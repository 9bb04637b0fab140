"""A private pair of Asterisk instances (Cartline's and the simulator's) on free ports.

Tests and benchmarks use it so they never collide with a running Cartline or
with each other: each lab has its own instance names, ports and state folder,
and stops its instances by PID when it closes.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.config import Settings, parse_settings
from agent.errors import AsteriskError
from agent.telephony import asterisk
from agent.telephony.dialplan import Instance, render_pbx, render_simulator

RTP_PORTS_PER_INSTANCE = 400


def free_ports(count: int) -> list[int]:
    """Ports free for both TCP and UDP on 127.0.0.1 (SIP needs UDP, the rest TCP)."""
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        ports.add(port)
    return sorted(ports)


def lab_settings(state_dir: Path, tag: str | None = None) -> Settings:
    """Settings for a private lab: fresh ports, its own instance names and state."""
    return parse_settings(lab_config(state_dir, tag))


def lab_config(state_dir: Path, tag: str | None = None) -> dict[str, Any]:
    """The configuration (as config.yaml would hold it) of a private lab."""
    p = free_ports(9)
    tag = tag or f"lab{os.getpid() % 100000}"
    # RTP ranges are not probed; spread them by PID so parallel labs rarely meet.
    rtp = 20000 + (os.getpid() % 20) * 2 * RTP_PORTS_PER_INSTANCE
    return {
        "asterisk": {
            "root": os.environ.get("CARTLINE_ASTERISK_ROOT", "/opt/cartline/asterisk-root"),
            "instance": tag,
            "start_timeout_s": 20,
        },
        "ami": {"port": p[0], "secret": "lab-secret", "reconnect_s": 1},
        "audiosocket": {"port": p[1], "uuid_timeout_s": 2},
        "fastagi": {"port": p[2]},
        "trunk": {
            "port": p[3],
            "sip_port": p[4],
            "rtp_port_start": rtp,
            "rtp_port_end": rtp + RTP_PORTS_PER_INSTANCE - 1,
            "ring_timeout_s": 4,
            "max_channels": 100,
        },
        "simulator": {
            "instance": f"{tag}-sim",
            "sip_port": p[3],
            "ami_port": p[5],
            "audiosocket_port": p[6],
            "fastagi_port": p[7],
            "rtp_port_start": rtp + RTP_PORTS_PER_INSTANCE,
            "rtp_port_end": rtp + 2 * RTP_PORTS_PER_INSTANCE - 1,
        },
        "web": {"port": p[8]},
        "state_dir": str(state_dir),
    }


def pbx_login(settings: Settings) -> asterisk.AmiLogin:
    a = settings.ami
    return asterisk.AmiLogin(a.host, a.port, a.username, a.secret.get_secret_value())


def simulator_login(settings: Settings) -> asterisk.AmiLogin:
    s = settings.simulator
    secret = s.ami_secret.get_secret_value()
    return asterisk.AmiLogin("127.0.0.1", s.ami_port, s.ami_username, secret)


class Lab:
    """Starts both instances on enter, stops them (by PID) and removes their folders on exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pbx: Instance | None = None
        self.simulator: Instance | None = None

    def start(self) -> None:
        cfg = self.settings
        if not (cfg.asterisk.root / "usr/sbin/asterisk").exists() and cfg.asterisk.chrooted:
            raise AsteriskError(f"no Asterisk at {cfg.asterisk.root}: run scripts/install-asterisk")
        self.pbx, self.simulator = render_pbx(cfg), render_simulator(cfg)
        asterisk.start(self.pbx, cfg.state_dir, pbx_login(cfg), cfg.asterisk.start_timeout_s)
        asterisk.start(
            self.simulator, cfg.state_dir, simulator_login(cfg), cfg.asterisk.start_timeout_s
        )

    def stop(self) -> None:
        for inst in (self.pbx, self.simulator):
            if inst is None:
                continue
            asterisk.stop(inst, self.settings.state_dir)
            for inner in (inst.etc_dir, inst.run_dir, inst.log_dir, inst.db_dir, inst.cache_dir):
                shutil.rmtree(inst.host(inner), ignore_errors=True)

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
