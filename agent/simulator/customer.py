"""The customer simulator: plays the customers behind the merchant's SIP trunk.

A second Asterisk (rendered from ``dialplan/simulator``) answers every call the
merchant places over the trunk. For each call its dialplan asks this simulator
over FastAGI what the customer does (answer, busy, no answer, reject, after how
much ringing), then hands the answered call's audio to this simulator over
AudioSocket, where a :class:`Scenario` is played and everything heard is
recorded with monotonic timestamps. The simulator can also call the merchant
(an inbound call), with the caller ID it is given.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoramisk import fast_agi

from agent.config import SimulatorSettings
from agent.simulator import voice
from agent.simulator.scenario import (
    Answer,
    AwaitReply,
    Dtmf,
    Hangup,
    Pause,
    Say,
    Scenario,
    ScenarioBook,
)
from agent.telephony.ami import Ami, AmiEvent
from agent.telephony.audiosocket import AudioSocketCall, AudioSocketServer

log = logging.getLogger(__name__)
FRAME_S = 0.02


@dataclass(frozen=True)
class HeardFrame:
    """One frame of audio the customer heard, with the time it arrived."""

    at: float
    pcm: bytes


@dataclass(frozen=True)
class SaidLine:
    """A line the customer spoke: when it started and ended, and its audio."""

    label: str
    started_at: float
    ended_at: float
    pcm: bytes
    cut_short: bool = False


@dataclass(frozen=True)
class TextMessage:
    """A text message (SIP MESSAGE) a customer's phone received."""

    at: float
    to: str
    sender: str
    body: str


@dataclass
class SimulatedCall:
    """Everything that happened on one simulated customer's call."""

    id: str
    number: str
    scenario: Scenario
    inbound: bool = False
    channel: str | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    end_reason: str = ""
    heard: list[HeardFrame] = field(default_factory=list)
    said: list[SaidLine] = field(default_factory=list)
    dtmf_sent: list[tuple[float, str]] = field(default_factory=list)
    hung_up_by_customer: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _audio: dict[int, bytes] = field(default_factory=dict, repr=False)

    def heard_pcm(self) -> bytes:
        """What the customer heard, frames joined in order of arrival."""
        return b"".join(f.pcm for f in self.heard)

    def heard_between(self, start: float, end: float) -> bytes:
        return b"".join(f.pcm for f in self.heard if start <= f.at < end)

    async def wait_done(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self.done.wait()


class CustomerSimulator:
    """Runs the Python side of the simulator: its FastAGI, AudioSocket and AMI."""

    def __init__(
        self,
        settings: SimulatorSettings,
        book: ScenarioBook | None = None,
        *,
        cache_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.book = book or ScenarioBook()
        self.cache_dir = cache_dir
        self.clock = clock
        self.calls: list[SimulatedCall] = []
        self.messages: list[TextMessage] = []
        self._background: set[asyncio.Task[None]] = set()
        self._by_id: dict[str, SimulatedCall] = {}
        self._new_call = asyncio.Condition()
        self._prepared: dict[str, asyncio.Task[None]] = {}
        self._ami: Ami | None = None
        self._audiosocket: AudioSocketServer | None = None
        self._agi: asyncio.Server | None = None

    async def start(self) -> None:
        s = self.settings
        self._ami = Ami("127.0.0.1", s.ami_port, s.ami_username, s.ami_secret.get_secret_value())
        await self._ami.connect(timeout_s=10)
        self._ami.add_listener(self._on_ami_event)
        self._audiosocket = AudioSocketServer(self._on_audio, "127.0.0.1", s.audiosocket_port)
        await self._audiosocket.start()
        app = fast_agi.Application(loop=asyncio.get_running_loop())
        app.add_route("incoming", self._on_agi)
        app.add_route("outgoing", self._on_agi_outgoing)
        self._agi = await asyncio.start_server(app.handler, "127.0.0.1", s.fastagi_port)

    async def stop(self) -> None:
        for task in [*self._prepared.values(), *self._background]:
            task.cancel()
        if self._agi is not None:
            self._agi.close()
            await self._agi.wait_closed()
        if self._audiosocket is not None:
            await self._audiosocket.stop()
        if self._ami is not None:
            await self._ami.close()

    async def __aenter__(self) -> CustomerSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- looking up calls -------------------------------------------------------

    async def wait_call(self, number: str, timeout_s: float = 10.0) -> SimulatedCall:
        """The first call (in either direction) for ``number``, waiting for it if needed."""
        key = number.lstrip("+")

        def find() -> SimulatedCall | None:
            return next((c for c in self.calls if c.number.lstrip("+") == key), None)

        async with asyncio.timeout(timeout_s), self._new_call:
            await self._new_call.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    async def _register(self, call: SimulatedCall) -> None:
        self.calls.append(call)
        self._by_id[call.id] = call
        self._prepared[call.id] = asyncio.create_task(self._prepare(call))
        async with self._new_call:
            self._new_call.notify_all()

    async def _prepare(self, call: SimulatedCall) -> None:
        """Synthesises the scenario's lines while the phone rings."""
        for i, step in enumerate(call.scenario.steps):
            if isinstance(step, Say):
                if step.pcm is not None:
                    call._audio[i] = step.pcm
                elif step.wav is not None:
                    call._audio[i] = await voice.read_wav(step.wav)
                elif step.text is not None:
                    call._audio[i] = await voice.speak(step.text, self.cache_dir)

    def _on_ami_event(self, event: AmiEvent) -> None:
        if event.name == "Hangup":
            # A call that ends before its audio reached the simulator (hung up
            # while answering) has no AudioSocket connection to report its end.
            channel = event.get("Channel")
            for call in self.calls:
                if call.channel == channel and call.connected_at is None and not call.done.is_set():
                    call.ended_at = self.clock()
                    call.end_reason = (
                        f"hung up before the audio connected (cause {event.get('Cause')})"
                    )
                    call.done.set()
            return
        if event.name == "UserEvent" and event.get("UserEvent") == "SimMessage":
            body = base64.b64decode(event.get("Body")).decode(errors="replace")
            message = TextMessage(self.clock(), event.get("To"), event.get("From"), body)
            self.messages.append(message)
            task = asyncio.get_running_loop().create_task(self._notify())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _notify(self) -> None:
        async with self._new_call:
            self._new_call.notify_all()

    async def wait_message(self, number: str, timeout_s: float = 10.0) -> TextMessage:
        """The first text message to ``number``, waiting for it if needed."""
        key = number.lstrip("+")

        def find() -> TextMessage | None:
            return next((m for m in self.messages if m.to.lstrip("+") == key), None)

        async with asyncio.timeout(timeout_s), self._new_call:
            await self._new_call.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    # -- FastAGI: what does this phone do? ----------------------------------------

    async def _on_agi(self, request: Any) -> None:
        number = await _get_var(request, "SIM_NUMBER")
        name = await _get_var(request, "SIM_SCENARIO")
        scenario = self.book.find(number, name or None)
        call = SimulatedCall(id=str(uuid.uuid4()), number=number, scenario=scenario)
        call.channel = request.headers.get("agi_channel")
        await self._register(call)
        if scenario.answer is not Answer.ANSWER:
            call.end_reason = scenario.answer.value
            call.ended_at = self.clock()
            call.done.set()
        await _set_var(request, "SIM_UUID", call.id)
        await _set_var(request, "SIM_RING_S", f"{scenario.ring_s:g}")
        await _set_var(request, "SIM_ACTION", scenario.answer.value)

    async def _on_agi_outgoing(self, request: Any) -> None:
        # The simulator's own call to the merchant: learn its channel (for DTMF).
        call = self._by_id.get(await _get_var(request, "SIM_UUID"))
        if call is not None:
            call.channel = request.headers.get("agi_channel")

    # -- calling the merchant -----------------------------------------------------

    async def call_merchant(
        self, caller_id: str, scenario: Scenario, to: str | None = None
    ) -> SimulatedCall:
        """Places an inbound call to the merchant with ``caller_id`` as the customer's number."""
        assert self._ami is not None, "start() the simulator first"
        call = SimulatedCall(str(uuid.uuid4()), caller_id, scenario, inbound=True)
        await self._register(call)
        await self._ami.originate(
            channel=f"PJSIP/{to or self.settings.merchant_number}@merchant",
            context="sim-outgoing",
            exten="s",
            call_id=f"sim-{call.id}",
            variables={"SIM_UUID": call.id},
            caller_id=caller_id,
            timeout_ms=30_000,
        )
        return call

    async def send_message(self, sender: str, body: str, merchant_uri: str) -> None:
        """Texts the merchant from ``sender`` (a SIP MESSAGE over the trunk).

        ``merchant_uri`` is the merchant's number at its SIP address, like
        ``sip:+15550100000@127.0.0.1:5061``.
        """
        assert self._ami is not None, "start() the simulator first"
        await self._ami.message_send(
            f"pjsip:merchant/{merchant_uri}", f"sip:{sender}@customer.invalid", body
        )

    # -- the call's audio -----------------------------------------------------------

    async def _on_audio(self, conn: AudioSocketCall) -> None:
        call = self._by_id.get(str(conn.uuid))
        if call is None:
            log.warning("simulator: audio for an unknown call %s", conn.uuid)
            await conn.hangup()
            return
        call.connected_at = self.clock()
        try:
            await self._prepared[call.id]
            async with asyncio.TaskGroup() as tg:
                listener = tg.create_task(self._listen(call, conn))
                await self._play(call, conn)
                if not conn.closed:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._remaining(call)):
                            await conn.wait_closed()
                    if not conn.closed:
                        call.hung_up_by_customer = True
                        await conn.hangup()
                await conn.wait_closed()
                listener.cancel()
        finally:
            call.ended_at = self.clock()
            call.end_reason = call.end_reason or str(conn.end_reason)
            call.done.set()

    def _remaining(self, call: SimulatedCall) -> float:
        assert call.connected_at is not None
        return max(0.0, call.scenario.max_call_s - (self.clock() - call.connected_at))

    async def _listen(self, call: SimulatedCall, conn: AudioSocketCall) -> None:
        async for pcm in conn.audio():
            call.heard.append(HeardFrame(self.clock(), pcm))

    async def _play(self, call: SimulatedCall, conn: AudioSocketCall) -> None:
        for i, step in enumerate(call.scenario.steps):
            if conn.closed:
                return
            if isinstance(step, Say):
                await self._say(call, conn, call._audio[i], step)
                if step.hangup_after_s is not None:
                    call.hung_up_by_customer = True
                    await conn.hangup()
                    return
            elif isinstance(step, Pause):
                await _sleep_unless_closed(conn, step.seconds)
            elif isinstance(step, Dtmf):
                await self._press(call, step)
            elif isinstance(step, Hangup):
                call.hung_up_by_customer = True
                await conn.hangup()
                return
            elif isinstance(step, AwaitReply):
                await self._await_reply(call, conn, step)

    async def _await_reply(
        self, call: SimulatedCall, conn: AudioSocketCall, step: AwaitReply
    ) -> None:
        started = self.clock()
        heard_from = len(call.heard)
        speech_seen = False
        while not conn.closed and self.clock() - started < step.timeout_s:
            await asyncio.sleep(0.05)
            recent = call.heard[heard_from:]
            loud = [f.at for f in recent if _loud(f.pcm)]
            if loud:
                speech_seen = True
            heard_s = loud[-1] - loud[0] if loud else 0.0
            quiet_s = step.silence_s if heard_s > step.short_s else step.after_short_s
            if speech_seen and self.clock() - loud_last(loud, recent) >= quiet_s:
                return

    async def _say(self, call: SimulatedCall, conn: AudioSocketCall, pcm: bytes, step: Say) -> None:
        if step.hangup_after_s is not None:
            pcm = pcm[: int(step.hangup_after_s * 8000) * 2]
        started = self.clock() + conn.queued_ms / 1000
        conn.play(pcm)
        duration = len(pcm) / 16000
        await _sleep_unless_closed(conn, max(0.0, started + duration - self.clock()))
        call.said.append(
            SaidLine(
                label=step.label or (step.text or "")[:40],
                started_at=started,
                ended_at=started + duration,
                pcm=pcm,
                cut_short=step.hangup_after_s is not None,
            )
        )

    async def _press(self, call: SimulatedCall, step: Dtmf) -> None:
        assert self._ami is not None
        if call.channel is None:
            log.warning("simulator: no channel known for call %s; cannot send DTMF", call.id)
            return
        for digit in step.digits:
            await self._ami.action(
                {"Action": "PlayDTMF", "Channel": call.channel, "Digit": digit, "Duration": "120"}
            )
            call.dtmf_sent.append((self.clock(), digit))
            await asyncio.sleep(step.gap_s)


def _loud(pcm: bytes, threshold: int = 600) -> bool:
    samples = memoryview(pcm).cast("h") if len(pcm) % 2 == 0 else memoryview(pcm[:-1]).cast("h")
    return any(abs(x) > threshold for x in samples[::4])


def loud_last(loud: list[float], recent: list[HeardFrame]) -> float:
    """When the agent was last heard (its last loud frame, else the last frame)."""
    if loud:
        return loud[-1]
    return recent[-1].at if recent else 0.0


async def _sleep_unless_closed(conn: AudioSocketCall, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await conn.wait_closed()


async def _get_var(request: Any, name: str) -> str:
    result = await request.send_command(f"GET VARIABLE {name}")
    value = result.get("result", ("0", ""))
    if isinstance(value, tuple) and value[0] == "1":
        return str(value[1])
    return ""


async def _set_var(request: Any, name: str, value: str) -> None:
    await request.send_command(f'SET VARIABLE {name} "{value}"')
