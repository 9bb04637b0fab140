"""The AudioSocket server over real sockets, driven by a fake Asterisk client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from agent.telephony.audiosocket import AudioSocketCall, AudioSocketServer, EndReason
from agent.telephony.audiosocket_codec import Kind, Message
from tests.fakes.audiosocket_client import FakeAsterisk

Handler = Callable[[AudioSocketCall], Awaitable[None]]


class Harness:
    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.calls: list[AudioSocketCall] = []
        self.finished = 0
        self._changed = asyncio.Condition()
        self.server = AudioSocketServer(self._handle, "127.0.0.1", 0, uuid_timeout_s=0.5)

    async def _handle(self, call: AudioSocketCall) -> None:
        self.calls.append(call)
        try:
            if self.handler is not None:
                await self.handler(call)
            else:
                await call.wait_closed()
        finally:
            self.finished += 1
            async with self._changed:
                self._changed.notify_all()

    async def handled(self, count: int = 1) -> None:
        """Waits until ``count`` call handlers have returned."""
        async with asyncio.timeout(3), self._changed:
            await self._changed.wait_for(lambda: self.finished >= count)

    async def client(self) -> FakeAsterisk:
        return await FakeAsterisk(self.server.port).connect()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.server.start()
    yield h
    await h.server.stop()
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not [t for t in leaked if "audiosocket" in repr(t.get_coro())]


def frame(i: int) -> bytes:
    return bytes([i % 256, 1]) * 160


def audio(msgs: list[Message]) -> list[bytes]:
    return [m.payload for m in msgs if m.is_audio and any(m.payload)]


async def test_audio_both_ways_in_order(harness: Harness) -> None:
    async def echo(call: AudioSocketCall) -> None:
        async for pcm in call.audio():
            call.play(pcm)

    harness.handler = echo
    client = await harness.client()
    for i in range(1, 51):
        client.audio(frame(i))
    got = await client.read_until(lambda r: len(audio(r)) >= 50)
    assert audio(got)[:50] == [frame(i) for i in range(1, 51)]
    call = harness.calls[0]
    assert call.uuid == client.uuid and call.frames_in == 50 and call.dropped_frames == 0
    await client.close()


async def test_silence_flows_while_the_agent_says_nothing(harness: Harness) -> None:
    client = await harness.client()
    got = await client.read_until(lambda r: len(r) >= 10)
    assert all(m.kind is Kind.SLIN_8K and m.payload == bytes(320) for m in got[:10])
    await client.close()


async def test_dtmf_is_delivered(harness: Harness) -> None:
    digits: list[str] = []

    async def collect(call: AudioSocketCall) -> None:
        async for d in call.dtmf():
            digits.append(d)

    harness.handler = collect
    client = await harness.client()
    client.dtmf("12*#")
    client.hangup()
    await client.closed_by_server()
    await harness.handled()
    assert "".join(digits) == "12*#"


@pytest.mark.parametrize(
    ("how", "reason"), [("eof", EndReason.CALLER_EOF), ("hangup", EndReason.CALLER_HANGUP)]
)
async def test_caller_hangs_up(harness: Harness, how: str, reason: EndReason) -> None:
    client = await harness.client()
    client.audio(frame(1))
    await client.read_until(lambda r: len(r) >= 2)
    if how == "eof":
        await client.close()
    else:
        client.hangup()
    await asyncio.wait_for(harness.calls[0].wait_closed(), 2)
    assert harness.calls[0].end_reason is reason
    await harness.handled()
    await client.close()
    await asyncio.sleep(0.05)
    assert harness.server.calls == {}


async def test_agent_hangup_sends_the_hangup_message(harness: Harness) -> None:
    async def hang_up(call: AudioSocketCall) -> None:
        await call.hangup()

    harness.handler = hang_up
    client = await harness.client()
    await client.closed_by_server()
    await harness.handled()
    assert client.received[-1].kind is Kind.HANGUP
    assert harness.calls[0].end_reason is EndReason.AGENT_HANGUP


async def test_error_message_from_asterisk(harness: Harness) -> None:
    client = await harness.client()
    client.send(b"\xff\x00\x01\x02")
    await client.closed_by_server()
    await harness.handled()
    assert harness.calls[0].end_reason is EndReason.ERROR_FROM_ASTERISK
    assert harness.calls[0].error_code == 2


async def test_malformed_bytes_end_only_that_connection(harness: Harness) -> None:
    async def echo(call: AudioSocketCall) -> None:
        async for pcm in call.audio():
            call.play(pcm)

    harness.handler = echo
    good = await harness.client()
    bad = await harness.client()
    await bad.read_until(lambda r: len(r) >= 1)  # its call is up
    bad.send(b"\x42\x00\x03abc")
    await bad.closed_by_server()
    await harness.handled()
    for i in range(1, 21):
        good.audio(frame(i))
    got = await good.read_until(lambda r: len(audio(r)) >= 20)
    assert audio(got)[:20] == [frame(i) for i in range(1, 21)]
    reasons = {c.uuid: c.end_reason for c in harness.calls}
    assert reasons[bad.uuid] is EndReason.PROTOCOL_ERROR and reasons[good.uuid] is None
    await good.close()


async def test_a_silent_client_is_closed_and_harms_no_one(harness: Harness) -> None:
    silent = await FakeAsterisk(harness.server.port).connect(send_uuid=False)
    good = await harness.client()
    good.audio(frame(3))
    await good.read_until(lambda r: len(r) >= 1)
    assert await silent.closed_by_server(2)
    assert harness.server.rejected_connections == 1
    assert len(harness.calls) == 1 and not harness.calls[0].closed
    await good.close()


async def test_overflow_drops_the_oldest_frames(harness: Harness) -> None:
    release = asyncio.Event()
    got: list[bytes] = []

    async def slow(call: AudioSocketCall) -> None:
        await release.wait()
        async for pcm in call.audio():
            got.append(pcm)
            if len(got) == 50:
                return

    harness.handler = slow
    client = await harness.client()
    for i in range(80):
        client.audio(frame(i))
    await asyncio.sleep(0.2)
    call = harness.calls[0]
    assert call.frames_in == 80 and call.dropped_frames == 30
    release.set()
    await asyncio.wait_for(call.wait_closed(), 2)
    assert got[0] == frame(30) and got[-1] == frame(79)
    await client.close()


async def test_sixteen_khz_calls_are_answered_in_kind(harness: Harness) -> None:
    async def echo(call: AudioSocketCall) -> None:
        async for pcm in call.audio():
            call.play(pcm)

    harness.handler = echo
    client = await harness.client()
    wide = bytes([7, 1]) * 320
    client.audio(wide, Kind.SLIN_16K)
    got = await client.read_until(lambda r: any(m.payload == wide for m in r))
    assert harness.calls[0].inbound_sample_rate == 16000
    later = got[-3:]
    assert all(m.kind is Kind.SLIN_16K and len(m.payload) == 640 for m in later)
    await client.close()


async def test_short_frames_are_accepted(harness: Harness) -> None:
    lengths: list[int] = []

    async def collect(call: AudioSocketCall) -> None:
        async for pcm in call.audio():
            lengths.append(len(pcm))

    harness.handler = collect
    client = await harness.client()
    client.audio(bytes(320))
    client.audio(bytes(204))
    client.hangup()
    await client.closed_by_server()
    await harness.handled()
    assert lengths == [320, 204]


async def test_a_failing_handler_ends_its_call_only(harness: Harness) -> None:
    async def broken(call: AudioSocketCall) -> None:
        raise RuntimeError("bug in a call handler")

    harness.handler = broken
    client = await harness.client()
    await client.closed_by_server()
    await harness.handled()
    assert harness.calls[0].end_reason is EndReason.HANDLER_ERROR
    harness.handler = None
    other = await harness.client()
    await other.read_until(lambda r: len(r) >= 3)
    assert not harness.calls[1].closed
    await other.close()


async def test_stop_ends_every_call(harness: Harness) -> None:
    clients = [await harness.client() for _ in range(3)]
    await asyncio.sleep(0.05)
    await harness.server.stop()
    assert {c.end_reason for c in harness.calls} == {EndReason.SERVER_STOP}
    for client in clients:
        await client.close()
