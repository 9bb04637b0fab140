"""The AudioSocket wire format: kind (1 byte), length (2 bytes, big endian), payload.

Pure functions and an incremental decoder; no I/O. Asterisk first sends the call's
UUID (16 raw bytes), then audio, DTMF (one ASCII byte each), and an error or
hang-up message at the end; when the caller hangs up it just closes the socket.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum

# The largest real frame is 20 ms at 192 kHz (7,680 bytes); anything far beyond
# that is a peer that does not speak AudioSocket.
MAX_PAYLOAD = 16 * 1024
UUID_BYTES = 16


class Kind(IntEnum):
    """Message kinds of Asterisk's AudioSocket protocol."""

    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    SLIN_8K = 0x10
    SLIN_12K = 0x11
    SLIN_16K = 0x12
    SLIN_24K = 0x13
    SLIN_32K = 0x14
    SLIN_44K = 0x15
    SLIN_48K = 0x16
    SLIN_96K = 0x17
    SLIN_192K = 0x18
    ERROR = 0xFF


SAMPLE_RATES: dict[Kind, int] = {
    Kind.SLIN_8K: 8000,
    Kind.SLIN_12K: 12000,
    Kind.SLIN_16K: 16000,
    Kind.SLIN_24K: 24000,
    Kind.SLIN_32K: 32000,
    Kind.SLIN_44K: 44100,
    Kind.SLIN_48K: 48000,
    Kind.SLIN_96K: 96000,
    Kind.SLIN_192K: 192000,
}
AUDIO_KINDS = frozenset(SAMPLE_RATES)


class AudioSocketProtocolError(Exception):
    """The peer sent bytes that are not valid AudioSocket."""


@dataclass(frozen=True)
class Message:
    """One decoded AudioSocket message."""

    kind: Kind
    payload: bytes = b""

    @property
    def is_audio(self) -> bool:
        return self.kind in AUDIO_KINDS


def sample_rate(kind: Kind) -> int:
    """Sample rate of an audio kind, in Hz."""
    try:
        return SAMPLE_RATES[kind]
    except KeyError:
        raise ValueError(f"{kind!r} is not an audio kind") from None


def kind_for_rate(sample_rate: int) -> Kind:
    """The signed-linear kind for a sample rate."""
    for kind, rate in SAMPLE_RATES.items():
        if rate == sample_rate:
            return kind
    raise ValueError(f"AudioSocket has no signed-linear kind for {sample_rate} Hz")


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    """One message on the wire."""
    if len(payload) > 0xFFFF:
        raise ValueError("an AudioSocket payload holds at most 65535 bytes")
    return bytes((kind,)) + len(payload).to_bytes(2, "big") + payload


def encode_audio(pcm: bytes, kind: Kind = Kind.SLIN_8K) -> bytes:
    """An audio message; ``pcm`` is signed-linear 16-bit at the kind's rate."""
    if kind not in AUDIO_KINDS:
        raise ValueError(f"{kind!r} is not an audio kind")
    return encode(kind, pcm)


def encode_uuid(call: uuid.UUID) -> bytes:
    """The first message of a connection: the call's UUID."""
    return encode(Kind.UUID, call.bytes)


def encode_dtmf(digit: str) -> bytes:
    """One DTMF digit."""
    if len(digit) != 1 or digit not in "0123456789*#ABCD":
        raise ValueError("a DTMF message carries one digit: 0-9, *, #, A-D")
    return encode(Kind.DTMF, digit.encode("ascii"))


def encode_hangup() -> bytes:
    """Asks the other side to end the call."""
    return encode(Kind.HANGUP)


def encode_error(code: int = 0) -> bytes:
    """An error message carrying one code byte."""
    return encode(Kind.ERROR, bytes((code,)))


class Decoder:
    """Turns a byte stream into messages, whatever the read boundaries.

    After it has raised :class:`AudioSocketProtocolError` the stream cannot be
    resynchronised: the connection should be closed.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buffer = bytearray()
        self._max = max_payload
        self.odd_bytes_dropped = 0

    def feed(self, data: bytes) -> list[Message]:
        """Adds bytes; returns every message now complete. Raises on invalid input."""
        self._buffer += data
        out: list[Message] = []
        buf = self._buffer
        pos = 0
        while len(buf) > pos:
            raw_kind = buf[pos]
            try:
                kind = Kind(raw_kind)
            except ValueError:
                raise AudioSocketProtocolError(f"unknown message kind 0x{raw_kind:02x}") from None
            if len(buf) - pos < 3:
                break
            length = int.from_bytes(buf[pos + 1 : pos + 3], "big")
            if length > self._max:
                raise AudioSocketProtocolError(f"message of {length} bytes exceeds {self._max}")
            if len(buf) - pos - 3 < length:
                break
            payload = bytes(buf[pos + 3 : pos + 3 + length])
            pos += 3 + length
            out.append(self._check(kind, payload))
        del buf[:pos]
        return out

    def _check(self, kind: Kind, payload: bytes) -> Message:
        if kind is Kind.UUID and len(payload) != UUID_BYTES:
            raise AudioSocketProtocolError(f"a UUID message holds 16 bytes, not {len(payload)}")
        if kind is Kind.DTMF and len(payload) != 1:
            raise AudioSocketProtocolError("a DTMF message holds one byte")
        if kind in AUDIO_KINDS and len(payload) % 2:
            # Half a sample is useless; keep the whole samples.
            self.odd_bytes_dropped += 1
            payload = payload[:-1]
        return Message(kind, payload)

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole message."""
        return len(self._buffer)
