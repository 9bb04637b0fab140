"""The AudioSocket server: Asterisk connects here with each call's audio.

Each connection becomes an :class:`AudioSocketCall`. It reads messages into a
bounded queue of caller audio (dropping the oldest frame when the consumer falls
behind, and counting it), delivers DTMF, and writes the agent's audio through a
:class:`~agent.audio.pacer.Pacer` that keeps the stream flowing in real time.
One connection's errors end that connection only; the server goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import traceback
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from agent.audio.frames import TELEPHONE_RATE, frame_bytes
from agent.audio.pacer import Clock, MonotonicClock, Pacer
from agent.telephony.audiosocket_codec import (
    SAMPLE_RATES,
    AudioSocketProtocolError,
    Decoder,
    Kind,
    Message,
    encode_audio,
    encode_hangup,
)

log = logging.getLogger(__name__)

READ_SIZE = 4096
WRITE_TIMEOUT_S = 2.0
DTMF_QUEUE = 64
# Time left to a handler after its call closed (or to finish playing out) before
# the connection is cut on stop().
STOP_GRACE_S = 2.0


class EndReason(enum.Enum):
    """Why an AudioSocket call ended."""

    CALLER_HANGUP = "caller_hangup"  # Asterisk sent a hang-up message
    CALLER_EOF = "caller_eof"  # Asterisk closed the socket (the caller hung up)
    AGENT_HANGUP = "agent_hangup"
    ERROR_FROM_ASTERISK = "error_from_asterisk"
    PROTOCOL_ERROR = "protocol_error"
    TIMEOUT = "timeout"  # Asterisk stopped taking our audio for WRITE_TIMEOUT_S
    SERVER_STOP = "server_stop"
    HANDLER_ERROR = "handler_error"


Handler = Callable[["AudioSocketCall"], Awaitable[None]]


class _ConnectionClosed(Exception):
    """The pacer's sink found the connection closed."""


class AudioSocketCall:
    """One call's audio connection, both ways.

    Caller audio comes from :meth:`audio`, digits from :meth:`dtmf`; the agent's
    audio goes to :meth:`play`. Created by :class:`AudioSocketServer` only.
    """

    def __init__(
        self,
        call_uuid: uuid.UUID,
        writer: asyncio.StreamWriter,
        *,
        clock: Clock,
        inbound_queue_frames: int,
        lead_frames: int,
        outbound_kind: Kind | None,
    ) -> None:
        self.uuid = call_uuid
        self._writer = writer
        self._inbound: deque[bytes] = deque(maxlen=inbound_queue_frames)
        self._audio_ready = asyncio.Event()
        self._digits: deque[str] = deque()
        self._dtmf_ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._outbound_kind = outbound_kind
        rate = TELEPHONE_RATE if outbound_kind is None else SAMPLE_RATES[outbound_kind]
        self.pacer = Pacer(self._send_frame, clock, frame_bytes(rate), lead_frames)
        self.end_reason: EndReason | None = None
        self.inbound_sample_rate: int | None = None
        self.frames_in = 0
        self.dropped_frames = 0
        self.dtmf_dropped = 0
        self.error_code: int | None = None
        self._write_lock = asyncio.Lock()

    # -- what the agent uses --------------------------------------------------------

    async def audio(self) -> AsyncIterator[bytes]:
        """Caller audio payloads in order (not always whole frames) until the call ends.

        One consumer at a time. When it falls more than ``inbound_queue_frames``
        behind, the oldest frames are dropped and counted in ``dropped_frames``.
        """
        while True:
            while self._inbound:
                yield self._inbound.popleft()
            if self._closed.is_set():
                return
            self._audio_ready.clear()
            await self._audio_ready.wait()

    async def dtmf(self) -> AsyncIterator[str]:
        """DTMF digits the caller pressed, one string per digit, until the call ends.

        One consumer at a time; digits pressed before it started are kept (up to 64).
        """
        while True:
            while self._digits:
                yield self._digits.popleft()
            if self._closed.is_set():
                return
            self._dtmf_ready.clear()
            await self._dtmf_ready.wait()

    def play(self, pcm: bytes) -> None:
        """Queues the agent's audio: signed-linear 16-bit at ``outbound_sample_rate``."""
        self.pacer.push(pcm)

    def clear_playout(self) -> int:
        """Drops queued agent audio not yet written (barge-in); returns ms dropped."""
        return self.pacer.clear()

    @property
    def queued_ms(self) -> float:
        """Agent audio queued and not yet written."""
        return self.pacer.queued_ms

    async def finish_playout(self) -> None:
        """Waits until the queued agent audio has been written, or the call closed."""
        await self.pacer.wait_idle()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def hangup(self) -> None:
        """Ends the call from the agent's side at once: a hang-up message, then close.

        Audio still queued is not played; await :meth:`finish_playout` first to keep it.
        """
        if self._closed.is_set():
            return
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(WRITE_TIMEOUT_S), self._write_lock:
                self._writer.write(encode_hangup())
                await self._writer.drain()
        self._close(EndReason.AGENT_HANGUP)

    async def wait_closed(self) -> None:
        """Returns once the call has ended, for whatever reason (see ``end_reason``)."""
        await self._closed.wait()

    @property
    def frames_out(self) -> int:
        """Frames written to Asterisk, silence included."""
        return self.pacer.frames_sent

    @property
    def outbound_kind(self) -> Kind:
        """The audio kind the agent's audio is sent as."""
        return Kind.SLIN_8K if self._outbound_kind is None else self._outbound_kind

    @property
    def outbound_sample_rate(self) -> int:
        return SAMPLE_RATES[self.outbound_kind]

    # -- the connection's machinery ---------------------------------------------------

    async def _send_frame(self, frame: bytes) -> None:
        if self._closed.is_set():
            raise _ConnectionClosed
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S), self._write_lock:
                self._writer.write(encode_audio(frame, self.outbound_kind))
                await self._writer.drain()
        except OSError:
            self._close(EndReason.CALLER_EOF)
            raise _ConnectionClosed from None
        except TimeoutError:
            self._close(EndReason.TIMEOUT)
            raise _ConnectionClosed from None

    def _receive(self, message: Message) -> None:
        if message.is_audio:
            if self.inbound_sample_rate is None:
                self.inbound_sample_rate = SAMPLE_RATES[message.kind]
                if self._outbound_kind is None:
                    # Answer in the caller's own format (the channel driver's codec).
                    self._outbound_kind = message.kind
                    self.pacer.set_frame_bytes(frame_bytes(self.inbound_sample_rate))
            self.frames_in += 1
            if len(self._inbound) == self._inbound.maxlen:
                self.dropped_frames += 1
            self._inbound.append(message.payload)
            self._audio_ready.set()
        elif message.kind is Kind.DTMF:
            if len(self._digits) >= DTMF_QUEUE:
                self.dtmf_dropped += 1
                return
            self._digits.append(message.payload.decode("ascii", "replace"))
            self._dtmf_ready.set()
        elif message.kind is Kind.HANGUP:
            self._close(EndReason.CALLER_HANGUP)
        elif message.kind is Kind.ERROR:
            self.error_code = message.payload[0] if message.payload else None
            self._close(EndReason.ERROR_FROM_ASTERISK)
        # A second UUID message carries nothing new; ignore it.

    def _close(self, reason: EndReason) -> None:
        if self._closed.is_set():
            return
        self.end_reason = reason
        self._closed.set()
        self._audio_ready.set()
        self._dtmf_ready.set()
        # Nothing queued can be heard any more; this also releases finish_playout().
        self.pacer.clear()
        self._writer.close()


class AudioSocketServer:
    """Accepts AudioSocket connections and runs ``handler(call)`` for each.

    A connection must send its UUID within ``uuid_timeout_s``. The agent's audio
    is sent as ``outbound_kind``, or when that is None in the kind of the first
    caller audio (8 kHz until some arrives). When the handler returns, queued
    audio is played out and the call is hung up; when it raises, the call ends
    with ``HANDLER_ERROR``. Port 0 picks a free port, readable from ``port``.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 9092,
        *,
        clock: Clock | None = None,
        inbound_queue_frames: int = 50,
        uuid_timeout_s: float = 5.0,
        lead_frames: int = 2,
        outbound_kind: Kind | None = None,
    ) -> None:
        if inbound_queue_frames < 1:
            raise ValueError("inbound_queue_frames must be at least 1")
        if outbound_kind is not None and outbound_kind not in SAMPLE_RATES:
            raise ValueError(f"{outbound_kind!r} is not an audio kind")
        self._handler = handler
        self.host = host
        self.port = port
        self._clock = clock or MonotonicClock()
        self._queue_frames = inbound_queue_frames
        self._uuid_timeout_s = uuid_timeout_s
        self._lead = lead_frames
        self._outbound_kind = outbound_kind
        self._server: asyncio.Server | None = None
        # Every connection's task; None until its UUID has arrived.
        self._connections: dict[asyncio.Task[None], AudioSocketCall | None] = {}
        self.calls: dict[uuid.UUID, AudioSocketCall] = {}
        self.rejected_connections = 0
        self._stopping = False

    async def start(self) -> None:
        """Listens; with port 0 the chosen port is in ``port`` afterwards."""
        self._stopping = False
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stops listening and ends every call; handlers get ``grace_s`` to return."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task, call in list(self._connections.items()):
            if call is None:
                task.cancel()
            else:
                call._close(EndReason.SERVER_STOP)
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AudioSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - asyncio runs this callback in a task
            writer.close()
            return
        self._connections[task] = None
        try:
            await self._serve(task, reader, writer)
        except asyncio.CancelledError:
            # asyncio's stream server logs a cancelled connection task as an
            # error; a connection cut short by stop() is expected.
            if not self._stopping:
                raise
        except Exception as exc:
            log.error("AudioSocket connection failed: %s", _describe(exc))
        finally:
            del self._connections[task]
            writer.close()

    async def _serve(
        self, task: asyncio.Task[None], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        decoder = Decoder()
        try:
            async with asyncio.timeout(self._uuid_timeout_s):
                call_uuid, rest = await _read_uuid(reader, decoder)
        except TimeoutError:
            self.rejected_connections += 1
            log.info(
                "AudioSocket connection sent no call id in %.1f s; closed", self._uuid_timeout_s
            )
            return
        except (AudioSocketProtocolError, ConnectionError) as exc:
            self.rejected_connections += 1
            log.info("AudioSocket connection closed before a call id: %s", exc)
            return
        call = AudioSocketCall(
            call_uuid,
            writer,
            clock=self._clock,
            inbound_queue_frames=self._queue_frames,
            lead_frames=self._lead,
            outbound_kind=self._outbound_kind,
        )
        self._connections[task] = call
        self.calls[call.uuid] = call
        log.info("AudioSocket call %s connected", call.uuid)
        try:
            for message in rest:
                call._receive(message)
            await self._run(call, reader, decoder)
        finally:
            if self.calls.get(call.uuid) is call:
                del self.calls[call.uuid]
            log.info(
                "AudioSocket call %s ended: %s (in %d, dropped %d, out %d, late %d)",
                call.uuid,
                call.end_reason.value if call.end_reason else "cancelled",
                call.frames_in,
                call.dropped_frames,
                call.frames_out,
                call.pacer.late_frames,
            )

    async def _run(
        self, call: AudioSocketCall, reader: asyncio.StreamReader, decoder: Decoder
    ) -> None:
        async def read() -> None:
            while not call.closed:
                try:
                    data = await reader.read(READ_SIZE)
                except OSError:
                    data = b""
                if not data:
                    call._close(EndReason.CALLER_EOF)
                    return
                try:
                    messages = decoder.feed(data)
                except AudioSocketProtocolError as exc:
                    log.warning("AudioSocket call %s: %s", call.uuid, exc)
                    call._close(EndReason.PROTOCOL_ERROR)
                    return
                for message in messages:
                    call._receive(message)

        async def handle() -> None:
            try:
                await self._handler(call)
            except Exception as exc:
                log.error("AudioSocket call %s: the handler failed: %s", call.uuid, _describe(exc))
                call._close(EndReason.HANDLER_ERROR)
                return
            # The handler is done with the call: let its last words out, then end it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(call.queued_ms / 1000 + WRITE_TIMEOUT_S):
                    await call.finish_playout()
            await call.hangup()

        async def pace() -> None:
            with contextlib.suppress(_ConnectionClosed):
                await call.pacer.run()

        async with asyncio.TaskGroup() as tg:
            reading = tg.create_task(read())
            pacing = tg.create_task(pace())
            tg.create_task(handle())
            await call.wait_closed()
            # The handler sees the call closed and returns in its own time.
            reading.cancel()
            pacing.cancel()


async def _read_uuid(
    reader: asyncio.StreamReader, decoder: Decoder
) -> tuple[uuid.UUID, list[Message]]:
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            raise ConnectionError("closed by the peer")
        messages = decoder.feed(data)
        if messages:
            if messages[0].kind is not Kind.UUID:
                raise AudioSocketProtocolError("the first message must be the call id")
            return uuid.UUID(bytes=messages[0].payload), messages[1:]


def _describe(exc: BaseException) -> str:
    """The exception's type and where it was raised, without its message.

    Messages can quote what the caller said; the type and place are enough to
    find the bug and hold no customer data.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {last.filename}:{last.lineno} in {last.name}"
