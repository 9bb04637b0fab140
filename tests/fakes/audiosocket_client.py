"""A fake Asterisk AudioSocket() client over a real TCP socket."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from agent.telephony.audiosocket_codec import (
    Decoder,
    Kind,
    Message,
    encode_audio,
    encode_dtmf,
    encode_hangup,
    encode_uuid,
)


class FakeAsterisk:
    def __init__(self, port: int, call: uuid.UUID | None = None) -> None:
        self.port = port
        self.uuid = call or uuid.uuid4()
        self.received: list[Message] = []
        self._decoder = Decoder()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, send_uuid: bool = True) -> FakeAsterisk:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        if send_uuid:
            self.send(encode_uuid(self.uuid))
        return self

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def audio(self, pcm: bytes, kind: Kind = Kind.SLIN_8K) -> None:
        self.send(encode_audio(pcm, kind))

    def dtmf(self, digits: str) -> None:
        for d in digits:
            self.send(encode_dtmf(d))

    def hangup(self) -> None:
        self.send(encode_hangup())

    async def read_until(self, predicate: object, timeout_s: float = 5.0) -> list[Message]:
        """Reads messages until ``predicate(received)`` is true or the socket closes."""
        assert self.reader is not None
        check = predicate  # a callable taking the list of received messages
        async with asyncio.timeout(timeout_s):
            while not check(self.received):  # type: ignore[operator]
                data = await self.reader.read(4096)
                if not data:
                    break
                self.received += self._decoder.feed(data)
        return self.received

    async def closed_by_server(self, timeout_s: float = 5.0) -> bool:
        assert self.reader is not None
        async with asyncio.timeout(timeout_s):
            while data := await self.reader.read(4096):
                self.received += self._decoder.feed(data)
        await self.close()
        return True

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
