"""The AudioSocket server over real sockets, driven by a fake Asterisk client."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from agent.telephony.audiosocket import AudioSocketCall, AudioSocketServer, EndReason
from agent.telephony.audiosocket_codec import Kind, Message, encode_audio, encode_uuid
from tests.fakes.audiosocket_client import FakeAsterisk

Handler = Callable[[AudioSocketCall], Awaitable[None]]
MakeHarness = Callable[..., Awaitable["Harness"]]


class Harness:
    """A server on port 0 whose calls run ``handler`` (by default: wait for the end)."""

    def __init__(self, **server_args: Any) -> None:
        self.handler: Handler | None = None
        self.calls: list[AudioSocketCall] = []
        self.finished = 0
        self._changed = asyncio.Condition()
        args: dict[str, Any] = {"uuid_timeout_s": 0.5} | server_args
        self.server = AudioSocketServer(self._handle, "127.0.0.1", 0, **args)

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
async def make_harness() -> AsyncIterator[MakeHarness]:
    before = asyncio.all_tasks()
    made: list[Harness] = []

    async def make(**server_args: Any) -> Harness:
        h = Harness(**server_args)
        await h.server.start()
        made.append(h)
        return h

    yield make
    for h in made:
        await h.server.stop()
    leaked = asyncio.all_tasks() - before - {asyncio.current_task()}
    assert not [t for t in leaked if not t.done()], "tasks left running after stop()"


@pytest.fixture
async def harness(make_harness: MakeHarness) -> Harness:
    return await make_harness()


def frame(i: int, size: int = 320) -> bytes:
    return bytes([i % 256, 1]) * (size // 2)


def audio(msgs: list[Message]) -> list[bytes]:
    """The non-silent audio payloads among received messages."""
    return [m.payload for m in msgs if m.is_audio and any(m.payload)]


async def eventually(check: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Polls ``check``, for state the server offers no event for."""
    for _ in range(int(timeout_s / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def echo(call: AudioSocketCall) -> None:
    async for pcm in call.audio():
        call.play(pcm)


async def test_audio_both_ways_in_order(harness: Harness) -> None:
    harness.handler = echo
    client = await harness.client()
    for i in range(1, 51):
        client.audio(frame(i))
    got = await client.read_until(lambda r: len(audio(r)) >= 50)
    assert audio(got)[:50] == [frame(i) for i in range(1, 51)]
    assert all(m.kind is Kind.SLIN_8K and len(m.payload) == 320 for m in got)
    call = harness.calls[0]
    assert call.uuid == client.uuid and call.frames_in == 50 and call.dropped_frames == 0
    assert call.frames_out >= 50 and call.inbound_sample_rate == 8000
    assert harness.server.calls == {client.uuid: call}
    await client.close()


async def test_silence_flows_at_once_while_the_agent_says_nothing(harness: Harness) -> None:
    client = await harness.client()
    got = await client.read_until(lambda r: len(r) >= 10, timeout_s=1)
    assert [m.kind for m in got[:10]] == [Kind.SLIN_8K] * 10
    assert all(m.payload == bytes(320) for m in got[:10])
    assert harness.calls[0].pacer.silence_frames >= 10
    await client.close()


async def test_uuid_split_across_reads_with_audio_behind_it(harness: Harness) -> None:
    harness.handler = echo
    client = await FakeAsterisk(harness.server.port).connect(send_uuid=False)
    first = encode_uuid(client.uuid)
    client.send(first[:5])
    await asyncio.sleep(0.05)
    client.send(first[5:] + encode_audio(frame(9)))
    got = await client.read_until(lambda r: frame(9) in audio(r))
    assert harness.calls[0].uuid == client.uuid and frame(9) in audio(got)
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
    assert digits == ["1", "2", "*", "#"]


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
    await eventually(lambda: not harness.server.calls)


async def test_agent_hangup_sends_the_hangup_message(harness: Harness) -> None:
    async def hang_up(call: AudioSocketCall) -> None:
        await call.hangup()

    harness.handler = hang_up
    client = await harness.client()
    await client.closed_by_server()
    await harness.handled()
    assert client.received[-1].kind is Kind.HANGUP
    assert harness.calls[0].end_reason is EndReason.AGENT_HANGUP


async def test_a_returning_handler_is_heard_out_then_hung_up(harness: Harness) -> None:
    async def goodbye(call: AudioSocketCall) -> None:
        call.play(b"".join(frame(i) for i in range(1, 11)))

    harness.handler = goodbye
    client = await harness.client()
    await client.closed_by_server()
    assert audio(client.received) == [frame(i) for i in range(1, 11)]
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
    harness.handler = echo
    good = await harness.client()
    bad = await harness.client()
    for i in range(1, 11):
        good.audio(frame(i))
    await bad.read_until(lambda r: len(r) >= 1)  # its call is up
    bad.send(b"\x42\x00\x03abc")
    await bad.closed_by_server()
    await harness.handled()
    for i in range(11, 21):
        good.audio(frame(i))
    got = await good.read_until(lambda r: len(audio(r)) >= 20)
    assert audio(got)[:20] == [frame(i) for i in range(1, 21)]
    reasons = {c.uuid: c.end_reason for c in harness.calls}
    assert reasons == {bad.uuid: EndReason.PROTOCOL_ERROR, good.uuid: None}
    await good.close()


@pytest.mark.parametrize("opening", [b"", encode_audio(frame(1)), b"\x42\x00\x00"])
async def test_a_client_without_a_call_id_is_closed_and_harms_no_one(
    harness: Harness, opening: bytes
) -> None:
    harness.handler = echo
    good = await harness.client()
    stranger = await FakeAsterisk(harness.server.port).connect(send_uuid=False)
    stranger.send(opening)
    good.audio(frame(3))
    await good.read_until(lambda r: frame(3) in audio(r))
    assert await stranger.closed_by_server(2)
    assert stranger.received == []
    assert harness.server.rejected_connections == 1
    good.audio(frame(4))
    await good.read_until(lambda r: frame(4) in audio(r))
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
    await eventually(lambda: bool(harness.calls) and harness.calls[0].frames_in == 80)
    call = harness.calls[0]
    assert call.dropped_frames == 30
    release.set()
    await asyncio.wait_for(call.wait_closed(), 2)
    assert got == [frame(i) for i in range(30, 80)]
    await client.close()


async def test_sixteen_khz_calls_are_answered_in_kind(harness: Harness) -> None:
    harness.handler = echo
    client = await harness.client()
    wide = frame(7, 640)
    client.audio(wide, Kind.SLIN_16K)
    got = await client.read_until(lambda r: wide in audio(r))
    call = harness.calls[0]
    assert call.inbound_sample_rate == 16000
    assert call.outbound_kind is Kind.SLIN_16K and call.outbound_sample_rate == 16000
    seen = len(got)
    got = await client.read_until(lambda r: len(r) >= seen + 3)
    after = got[got.index(Message(Kind.SLIN_16K, wide)) :]
    assert len(after) >= 4
    assert all(m.kind is Kind.SLIN_16K and len(m.payload) == 640 for m in after)
    await client.close()


async def test_a_configured_outbound_kind_is_used_from_the_start(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness(outbound_kind=Kind.SLIN_16K)
    client = await harness.client()
    got = await client.read_until(lambda r: len(r) >= 3)
    assert all(m.kind is Kind.SLIN_16K and m.payload == bytes(640) for m in got)
    client.audio(frame(1))
    await client.read_until(lambda r: len(r) >= 8)
    assert harness.calls[0].inbound_sample_rate == 8000
    assert {m.kind for m in client.received} == {Kind.SLIN_16K}
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


async def test_a_failing_handler_ends_its_call_only_and_logs_no_data(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(call: AudioSocketCall) -> None:
        raise RuntimeError("the caller said 4111 1111 1111 1111")

    harness.handler = broken
    caplog.set_level(logging.INFO, logger="agent.telephony.audiosocket")
    client = await harness.client()
    await client.closed_by_server()
    await harness.handled()
    assert harness.calls[0].end_reason is EndReason.HANDLER_ERROR
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failure) == 1
    assert str(client.uuid) in failure[0].getMessage() and "RuntimeError" in caplog.text
    assert "4111" not in caplog.text and failure[0].exc_info is None
    harness.handler = None
    other = await harness.client()
    await other.read_until(lambda r: len(r) >= 3)
    assert not harness.calls[1].closed
    await other.close()


async def test_stop_ends_every_call_and_every_connection(make_harness: MakeHarness) -> None:
    harness = await make_harness(uuid_timeout_s=30)
    clients = [await harness.client() for _ in range(3)]
    waiting = await FakeAsterisk(harness.server.port).connect(send_uuid=False)
    for client in clients:
        await client.read_until(lambda r: len(r) >= 1)
    started = time.monotonic()
    await harness.server.stop()
    # The connection still waiting for its call id is cut at once, not after a timeout.
    assert time.monotonic() - started < 1.0
    assert [c.end_reason for c in harness.calls] == [EndReason.SERVER_STOP] * 3
    assert harness.server.calls == {}
    for client in [*clients, waiting]:
        assert await client.closed_by_server(1)


async def test_the_server_is_an_async_context_manager() -> None:
    calls: list[uuid.UUID] = []

    async def note(call: AudioSocketCall) -> None:
        calls.append(call.uuid)
        await call.hangup()

    async with AudioSocketServer(note, "127.0.0.1", 0) as server:
        assert server.port != 0
        client = await FakeAsterisk(server.port).connect()
        await client.closed_by_server()
    assert calls == [client.uuid]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)
