"""`cartline demo --short`, as a user runs it: its own Asterisk pair, real calls, a summary.

The demo starts Cartline's Asterisk and the simulator's (on private ports, so
it never meets the other tests' pair), runs the shortened cast through them
with the real default models, prints its summary and keeps the dashboard up
with a demo sign-in. The test checks the summary, signs in with what the
terminal printed, then sends Ctrl-C and checks that everything the demo
started has stopped.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from agent.simulator.lab import RTP_PORTS_PER_INSTANCE, lab_config

pytestmark = pytest.mark.asterisk
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = re.compile(r"The dashboard: (http://\S+)/\s+sign in as (\S+) with the password (\S+)")


def _config(state: Path) -> dict[str, Any]:
    cfg = lab_config(state, tag=f"demo{os.getpid() % 100000}")
    # Another RTP range than the session's own lab, which keeps running beside it.
    start = 20000 + ((os.getpid() + 10) % 20) * 2 * RTP_PORTS_PER_INSTANCE
    cfg["trunk"].update(rtp_port_start=start, rtp_port_end=start + RTP_PORTS_PER_INSTANCE - 1)
    cfg["simulator"].update(
        rtp_port_start=start + RTP_PORTS_PER_INSTANCE,
        rtp_port_end=start + 2 * RTP_PORTS_PER_INSTANCE - 1,
    )
    return cfg


class Terminal:
    """The demo's output, line by line, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def _read(self, timeout_s: float) -> Iterator[str]:
        """The lines as they come, until the output ends or the time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                return
            print(line)
            self.lines.append(line)
            yield line

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        for line in self._read(timeout_s):
            found = pattern.search(line)
            if found:
                return found
        raise AssertionError(
            f"the demo never printed {pattern.pattern!r}; it printed:\n{self.text}"
        )

    def drain(self, timeout_s: float) -> None:
        """Reads what is left, up to the end of the output."""
        for _ in self._read(timeout_s):
            pass

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _start_demo(config: Path, report: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/cartline"), "-c", str(config), "demo", "--short"]
        + ["--json-out", str(report), "--timeout-min", "10"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_the_shortened_demo_reaches_every_expected_outcome(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path / "state")))
    report = tmp_path / "summary.json"
    proc = _start_demo(config, report)
    terminal = Terminal(proc)
    try:
        found = terminal.wait_for(DASHBOARD, timeout_s=720)
        url, email, password = found.groups()
        summary = json.loads(report.read_text())
        assert summary["as_expected"], f"{summary}\n{terminal.text}"
        assert summary["customers"] == 5
        assert summary["outcomes"]["opted_out"] == 1
        assert summary["outcomes"]["voicemail"] == 1
        assert summary["outcomes"]["not called: no_consent"] == 1
        assert summary["do_not_call"] == ["priya"]
        # Maya bought after the texted link: her order is credited to the call.
        assert Decimal(summary["recovered"]) == Decimal("158.95")
        # Leo was busy, then answered the retry.
        assert summary["calls"] == 5
        assert "Summary" in terminal.text and "recovered revenue: 158.95 USD" in terminal.text

        # The printed sign-in opens the dashboard (no second factor on the demo's loopback).
        # The dashboard is on an IP address: a cookie jar takes its cookie only when told to.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as web:
            async with web.post(
                f"{url}/login", data={"email": email, "password": password, "next": "/"}
            ) as resp:
                assert resp.status == 200, await resp.text()
                page = await resp.text()
            assert "158.95" in page, "the overview shows the recovered revenue"
            async with web.get(f"{url}/api/v1/campaigns") as resp:
                assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    terminal.drain(timeout_s=10)
    if proc.stdout is not None:
        proc.stdout.close()
    assert code == 0, terminal.text
    # Everything it started is gone, by PID.
    pids = [int(p) for p in re.findall(r"started Asterisk \S+ \(pid (\d+)\)", terminal.text)]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
