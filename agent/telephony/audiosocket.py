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
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from agent.audio.frames import frame_bytes
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


class EndReason(enum.Enum):
    """Why an AudioSocket connection ended."""

    CALLER_HANGUP = "caller_hangup"  # Asterisk sent a hang-up message
    CALLER_EOF = "caller_eof"  # Asterisk closed the socket (the caller hung up)
    AGENT_HANGUP = "agent_hangup"
    ERROR_FROM_ASTERISK = "error_from_asterisk"
    PROTOCOL_ERROR = "protocol_error"
    TIMEOUT = "timeout"  # no call id arrived in time
    SERVER_STOP = "server_stop"
    HANDLER_ERROR = "handler_error"


Handler = Callable[["AudioSocketCall"], Awaitable[None]]


class _ConnectionClosed(Exception):
    """The pacer's sink found the connection closed."""


class AudioSocketCall:
    """One call's audio connection, both ways."""

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
        self._dtmf: asyncio.Queue[str] = asyncio.Queue(maxsize=64)
        self._closed = asyncio.Event()
        self._outbound_kind = outbound_kind
        self.pacer = Pacer(self._send_frame, clock, lead_frames=lead_frames)
        self.end_reason: EndReason | None = None
        self.inbound_sample_rate: int | None = None
        self.frames_in = 0
        self.dropped_frames = 0
        self.dtmf_dropped = 0
        self.error_code: int | None = None
        self._lock = asyncio.Lock()

    # -- what the agent uses --------------------------------------------------------

    async def audio(self) -> AsyncIterator[bytes]:
        """Caller audio frames in order, until the call ends."""
        while True:
            while self._inbound:
                yield self._inbound.popleft()
            if self._closed.is_set():
                return
            self._audio_ready.clear()
            closed = asyncio.ensure_future(self._closed.wait())
            ready = asyncio.ensure_future(self._audio_ready.wait())
            try:
                await asyncio.wait((closed, ready), return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
                ready.cancel()

    async def dtmf(self) -> AsyncIterator[str]:
        """DTMF digits the caller pressed, until the call ends."""
        while True:
            if self._closed.is_set() and self._dtmf.empty():
                return
            getter = asyncio.ensure_future(self._dtmf.get())
            closed = asyncio.ensure_future(self._closed.wait())
            try:
                await asyncio.wait((getter, closed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                yield getter.result()

    def play(self, pcm: bytes) -> None:
        """Queues the agent's audio (signed-linear at the call's outbound rate)."""
        self.pacer.push(pcm)

    def clear_playout(self) -> int:
        """Drops queued agent audio not yet written (barge-in); returns ms dropped."""
        return self.pacer.clear()

    @property
    def queued_ms(self) -> float:
        return self.pacer.queued_ms

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def hangup(self) -> None:
        """Ends the call from the agent's side: a hang-up message, then close."""
        if self._closed.is_set():
            return
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(WRITE_TIMEOUT_S), self._lock:
                self._writer.write(encode_hangup())
                await self._writer.drain()
        self._close(EndReason.AGENT_HANGUP)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def frames_out(self) -> int:
        return self.pacer.frames_sent

    # -- the connection's machinery ---------------------------------------------------

    @property
    def outbound_kind(self) -> Kind:
        return self._outbound_kind or Kind.SLIN_8K

    async def _send_frame(self, frame: bytes) -> None:
        if self._closed.is_set():
            raise _ConnectionClosed
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S), self._lock:
                self._writer.write(encode_audio(frame, self.outbound_kind))
                await self._writer.drain()
        except (OSError, TimeoutError):
            self._close(EndReason.CALLER_EOF)
            raise _ConnectionClosed from None

    def _receive(self, message: Message) -> None:
        if message.is_audio:
            if self.inbound_sample_rate is None:
                self.inbound_sample_rate = SAMPLE_RATES[message.kind]
                if self._outbound_kind is None:
                    # Answer in the caller's own format.
                    self._outbound_kind = message.kind
                    self.pacer.set_frame_size(frame_bytes(self.inbound_sample_rate))
            self.frames_in += 1
            if len(self._inbound) == self._inbound.maxlen:
                self.dropped_frames += 1
            self._inbound.append(message.payload)
            self._audio_ready.set()
        elif message.kind is Kind.DTMF:
            try:
                self._dtmf.put_nowait(message.payload.decode("ascii", "replace"))
            except asyncio.QueueFull:
                self.dtmf_dropped += 1
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
        self._writer.close()


class AudioSocketServer:
    """Accepts AudioSocket connections and runs ``handler(call)`` for each."""

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
        self._handler = handler
        self.host = host
        self.port = port
        self._clock = clock or MonotonicClock()
        self._queue_frames = inbound_queue_frames
        self._uuid_timeout_s = uuid_timeout_s
        self._lead = lead_frames
        self._outbound_kind = outbound_kind
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls: dict[uuid.UUID, AudioSocketCall] = {}
        self.rejected_connections = 0
        self._stopping = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, grace_s: float = 2.0) -> None:
        """Ends every call (handlers see the call close) and stops listening."""
        if self._server is not None:
            self._server.close()
        self._stopping = True
        for call in list(self.calls.values()):
            call._close(EndReason.SERVER_STOP)
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=grace_s)
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
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # asyncio's stream server logs a cancelled connection task as an
            # error; a connection cut short by stop() is expected.
            if not self._stopping:
                raise
        except Exception:
            log.exception("AudioSocket connection failed")
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = Decoder()
        try:
            first, rest = await asyncio.wait_for(
                self._read_uuid(reader, decoder), self._uuid_timeout_s
            )
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
            first,
            writer,
            clock=self._clock,
            inbound_queue_frames=self._queue_frames,
            lead_frames=self._lead,
            outbound_kind=self._outbound_kind,
        )
        self.calls[call.uuid] = call
        log.info("AudioSocket call %s connected", call.uuid)
        try:
            for message in rest:
                call._receive(message)
            await self._run(call, reader, decoder)
        finally:
            self.calls.pop(call.uuid, None)
            log.info(
                "AudioSocket call %s ended: %s (in %d, dropped %d, out %d)",
                call.uuid,
                call.end_reason.value if call.end_reason else "?",
                call.frames_in,
                call.dropped_frames,
                call.frames_out,
            )

    @staticmethod
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
            except Exception:
                log.exception("AudioSocket call %s: the call handler failed", call.uuid)
                call._close(EndReason.HANDLER_ERROR)
            else:
                # The handler is done with the call: end it rather than idle on.
                await call.hangup()

        async def pace() -> None:
            with contextlib.suppress(_ConnectionClosed):
                await call.pacer.run()

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(read()), tg.create_task(pace()), tg.create_task(handle())]
            await call.wait_closed()
            for task in tasks[:2]:
                task.cancel()
