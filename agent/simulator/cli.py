"""``cartline call``: one real call through Asterisk to a simulated customer.

It starts what is not running yet (Cartline's Asterisk, the simulator's), places
the call over SIP and RTP, plays the agent's lines to the customer and the
customer's lines to the agent, prints the call's events as they happen, and ends
with what each side heard of the other. What it started, it stops, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from agent.app import Telephony
from agent.config import Settings, load_settings
from agent.simulator import analysis, voice
from agent.simulator.customer import CustomerSimulator
from agent.simulator.lab import pbx_login, simulator_login
from agent.simulator.scenario import Pause, Say, Scenario, ScenarioBook
from agent.telephony import asterisk
from agent.telephony.audiosocket import AudioSocketCall
from agent.telephony.dialer import PlacedCall
from agent.telephony.dialplan import pbx_instance, render_pbx, render_simulator, simulator_instance

AGENT_LINES = (
    "Hi, this is the Cartline demo calling for Example Store, about the items left in your cart.",
    "Thanks, I will text you the link. Goodbye!",
)
CUSTOMER_LINE = "Oh, hi. Yes, I left some running shoes in my cart. Is the discount still on?"
SHOWN_EVENTS = {
    "Newchannel",
    "DialBegin",
    "DialState",
    "DialEnd",
    "OriginateResponse",
    "UserEvent",
    "Hangup",
    "DTMFEnd",
}


def add_commands(sub: Any) -> None:
    call = sub.add_parser("call", help="place one real call to the customer simulator (the demo)")
    call.add_argument("number", nargs="?", default="+15551230001", help="the customer's number")
    call.add_argument("--no-amd", action="store_true", help="skip answering-machine detection")
    call.set_defaults(func=cmd_call)


def ensure_running(settings: Settings) -> list[tuple[Any, str]]:
    """Starts the instances that are not running; returns the ones it started."""
    started = []
    state = settings.state_dir
    plan = [
        (pbx_instance(settings), render_pbx, pbx_login(settings)),
        (simulator_instance(settings), render_simulator, simulator_login(settings)),
    ]
    for instance, render, login in plan:
        if asterisk.read_pid(state, instance) is None:
            render(settings)
            pid = asterisk.start(instance, state, login, settings.asterisk.start_timeout_s)
            print(f"started Asterisk {instance.name} (pid {pid})")
            started.append((instance, instance.name))
    return started


def cmd_call(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    started = ensure_running(settings)
    try:
        return asyncio.run(_demo_call(settings, args.number, amd=not args.no_amd))
    finally:
        for instance, name in reversed(started):
            asterisk.stop(instance, settings.state_dir, settings.asterisk.stop_timeout_s)
            print(f"stopped Asterisk {name}")


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def stamp(self, what: str) -> None:
        print(f"  {time.monotonic() - self.t0:6.2f} s  {what}")


async def _demo_call(settings: Settings, number: str, *, amd: bool) -> int:
    clock = _Clock()
    cache = settings.state_dir / "voice-cache"
    out_dir = settings.state_dir / "demo"
    agent_pcm = [await voice.speak(line, cache) for line in AGENT_LINES]
    agent_heard: list[bytes] = []
    agent_connected: list[float] = []
    book = ScenarioBook()
    book.add(
        number,
        Scenario(
            ring_s=1.0,
            steps=(
                Say(text="Hello?", label="hello"),
                Pause(7.5),
                Say(text=CUSTOMER_LINE, label="question"),
                Pause(15.0),
            ),
            name="demo",
        ),
    )

    async def agent(conn: AudioSocketCall, call: PlacedCall | None) -> None:
        clock.stamp("agent: audio connected, speaking")
        agent_connected.append(time.monotonic())

        async def listen() -> None:
            async for pcm in conn.audio():
                agent_heard.append(pcm)

        async with asyncio.TaskGroup() as tg:
            listener = tg.create_task(listen())
            conn.play(agent_pcm[0])
            await asyncio.sleep(len(agent_pcm[0]) / 16000 + 7.0)
            clock.stamp("agent: saying goodbye")
            conn.play(agent_pcm[1])
            await asyncio.sleep(len(agent_pcm[1]) / 16000 + 0.3)
            clock.stamp("agent: hanging up")
            await conn.hangup()
            listener.cancel()

    async with (
        CustomerSimulator(settings.simulator, book, cache_dir=cache) as sim,
        Telephony(settings, agent) as tel,
    ):
        print(f"calling the simulated customer over the trunk ({settings.trunk.name})")
        placed = await tel.dialer.place(number, amd=amd)
        printer = asyncio.create_task(_print_events(tel, placed, clock))
        outcome = await placed.wait_done(90)
        customer = await sim.wait_call(number, 5)
        with contextlib.suppress(TimeoutError):
            await customer.wait_done(5)
        await printer

    print("\nwhat happened")
    print(f"  outcome:      {outcome.status.value}, answered={outcome.answered}")
    print(f"  hang-up:      cause {outcome.hangup_cause} ({outcome.hangup_cause_text}),"
          f" by {outcome.hung_up_by.value}")  # fmt: skip
    if outcome.amd is not None:
        print(f"  AMD:          {outcome.amd.value} ({outcome.amd_cause})")
    heard_by_customer = customer.heard_pcm()
    heard_by_agent = b"".join(agent_heard)
    for i, pcm in enumerate(agent_pcm):
        m = analysis.find(pcm, heard_by_customer)
        print(f"  customer heard agent line {i + 1}: correlation {m.correlation:.3f}")
    for line in customer.said:
        when = f"at {line.started_at - clock.t0:5.2f} s"
        if agent_connected and line.ended_at < agent_connected[0]:
            print(f"  customer said {line.label!r} {when}, during answering-machine detection")
            continue
        m = analysis.find(line.pcm, heard_by_agent)
        print(f"  customer said {line.label!r} {when}; agent heard it: correlation "
              f"{m.correlation:.3f}")  # fmt: skip
    voice.write_wav(out_dir / "customer-heard.wav", heard_by_customer)
    voice.write_wav(out_dir / "agent-heard.wav", heard_by_agent)
    print(f"  what each side heard: {out_dir}/customer-heard.wav, agent-heard.wav")
    return 0 if outcome.answered else 1


async def _print_events(tel: Telephony, placed: PlacedCall, clock: _Clock) -> None:
    seen = 0
    while True:
        over = placed.done.is_set()
        for event in placed.events[seen:]:
            if event.name in SHOWN_EVENTS:
                clock.stamp(_describe(event.name, event.fields))
        seen = len(placed.events)
        if over:
            return
        await asyncio.sleep(0.05)


def _describe(name: str, f: Any) -> str:
    if name == "UserEvent":
        kind = f.get("UserEvent", "")
        wanted = ("AMDSTATUS", "AMDCAUSE", "CAUSE", "END")
        extra = ", ".join(f"{k}={v}" for k, v in f.items() if k.upper() in wanted)
        return f"UserEvent {kind} {extra}"
    keys = ("ChannelStateDesc", "DialStatus", "Response", "Reason", "Cause", "Cause-txt", "Digit")
    detail = ", ".join(f"{k}={f[k]}" for k in keys if k in f)
    return f"{name} {detail}"
