"""Telephony benchmark: N simultaneous calls through a real Asterisk pair.

For each N, Cartline's side (a child process: AMI, AudioSocket server, pacer)
places N calls to the customer simulator (this process) and streams a tone on
each for the call's length while the simulated customers talk back. Printed per
N: frames delivered vs expected in each direction, the outbound frame timing
jitter at the server (deviation of each send from the 20 ms grid) and at the
customer's ear, and the server's CPU and RSS per call. The last line is one
JSON object with all figures.

    scripts/bench-telephony [--calls 1,10,50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agent.app import Telephony
from agent.config import Settings, parse_settings
from agent.simulator.customer import CustomerSimulator, SimulatedCall
from agent.simulator.lab import Lab, lab_settings
from agent.simulator.scenario import Hangup, Pause, Say, Scenario
from agent.simulator.voice import tone
from agent.telephony.audiosocket import AudioSocketCall
from agent.telephony.dialer import PlacedCall

FRAME_S = 0.02


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _reveal(value: object) -> str:
    # The child needs the real AMI secret, which model_dump_json masks.
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _grid_jitter_ms(times: list[float]) -> list[float]:
    """Deviation of each timestamp from the best-fitting 20 ms grid, in ms."""
    if len(times) < 10:
        return []
    times = times[5:]  # the pacer's lead frames go out together at the start
    t0 = times[0]
    offsets = [(t - t0) - round((t - t0) / FRAME_S) * FRAME_S for t in times]
    median = statistics.median(offsets)
    return [abs(o - median) * 1000 for o in offsets]


# -- the server side (child process) -------------------------------------------------


async def serve(settings: Settings, calls: int, seconds: float) -> dict[str, Any]:
    send_times: dict[str, list[float]] = {}
    frames_in: dict[str, int] = {}
    signal = tone(440, seconds)

    async def media(conn: AudioSocketCall, call: PlacedCall | None) -> None:
        key = str(conn.uuid)
        stamps = send_times.setdefault(key, [])
        conn.pacer.on_frame = stamps.append
        frames_in[key] = 0

        async def listen() -> None:
            async for _ in conn.audio():
                frames_in[key] += 1

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(listen())
            conn.play(signal)
            await asyncio.sleep(seconds)
            await conn.hangup()
            task.cancel()

    async with Telephony(settings, media) as tel:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        rss_before = _rss_bytes()
        cpu_before = time.process_time()
        started = time.monotonic()
        placed = [
            await tel.dialer.place(f"1555900{i:04d}", amd=False, record=False) for i in range(calls)
        ]
        outcomes = await asyncio.gather(*(p.wait_done(seconds + 60) for p in placed))
        cpu_s = time.process_time() - cpu_before
        elapsed = time.monotonic() - started
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    jitter = [j for stamps in send_times.values() for j in _grid_jitter_ms(stamps)]
    return {
        "answered": sum(o.answered for o in outcomes),
        "cpu_s_per_call": cpu_s / calls,
        "cpu_percent_of_core_per_call": 100 * cpu_s / calls / elapsed,
        "rss_mb_base": rss_before / 2**20,
        "rss_mb_per_call": max(0, peak_rss - rss_before) / calls / 2**20,
        "server_frames_in": sum(frames_in.values()),
        "server_frames_expected": int(calls * seconds / FRAME_S),
        "send_jitter_ms": {
            "p50": _percentile(jitter, 0.5),
            "p99": _percentile(jitter, 0.99),
            "max": max(jitter, default=float("nan")),
        },
    }


# -- the customer side and the measurements (parent process) ------------------------------


async def run_customers(
    settings: Settings, calls: int, seconds: float, cache: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    line = tone(300, seconds + 2)
    sim = CustomerSimulator(settings.simulator, cache_dir=cache)
    for i in range(calls):
        sim.book.add(
            f"1555900{i:04d}",
            Scenario(steps=(Say(pcm=line), Pause(10), Hangup()), max_call_s=seconds + 20),
        )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        json.dumps(settings.model_dump(), default=_reveal),
        str(calls),
        str(seconds),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    await sim.start()
    try:
        assert (await child.stdout.readline()).strip() == b"ready"
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        result = json.loads((await child.stdout.read()).decode().strip().splitlines()[-1])
        await child.wait()
    finally:
        await sim.stop()
    heard = [c for c in sim.calls if c.connected_at is not None]
    return result, _customer_figures(heard, seconds)


def _customer_figures(calls: list[SimulatedCall], seconds: float) -> dict[str, Any]:
    expected = 0
    delivered = 0
    jitter: list[float] = []
    for call in calls:
        expected += int(seconds / FRAME_S)
        # Frames of the agent's tone: those heard during the agent's speaking time.
        assert call.connected_at is not None
        window = [f for f in call.heard if f.at < call.connected_at + seconds]
        delivered += sum(1 for f in window if any(f.pcm))
        jitter += _grid_jitter_ms([f.at for f in window])
    return {
        "frames_expected": expected,
        "frames_delivered": delivered,
        "arrival_jitter_ms": {
            "p50": _percentile(jitter, 0.5),
            "p99": _percentile(jitter, 0.99),
            "max": max(jitter, default=float("nan")),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="1,10,50")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        settings = parse_settings(json.loads(args.serve[0]))
        result = asyncio.run(serve(settings, int(args.serve[1]), float(args.serve[2])))
        print(json.dumps(result), flush=True)
        return 0

    figures: dict[str, Any] = {"seconds": args.seconds, "cpu_count": os.cpu_count(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="cartline-bench-") as tmp:
        settings = lab_settings(Path(tmp), tag=f"bench{os.getpid() % 10000}")
        with Lab(settings):
            for n in (int(x) for x in args.calls.split(",")):
                server, customer = asyncio.run(
                    run_customers(settings, n, args.seconds, Path(tmp) / "voice")
                )
                run = {"calls": n, **server, **customer}
                figures["runs"][str(n)] = run
                print(
                    f"{n:3d} calls: answered {server['answered']}, frames to customers "
                    f"{customer['frames_delivered']}/{customer['frames_expected']}, to server "
                    f"{server['server_frames_in']}/{server['server_frames_expected']}, "
                    f"send jitter p50/p99/max {_fmt(server['send_jitter_ms'])} ms, "
                    f"arrival jitter {_fmt(customer['arrival_jitter_ms'])} ms, "
                    f"CPU {server['cpu_percent_of_core_per_call']:.2f} % of a core per call, "
                    f"RSS +{server['rss_mb_per_call']:.2f} MB per call",
                    flush=True,
                )
    print(json.dumps(figures))
    return 0


def _fmt(j: dict[str, float]) -> str:
    return f"{j['p50']:.2f}/{j['p99']:.2f}/{j['max']:.2f}"


if __name__ == "__main__":
    sys.exit(main())
