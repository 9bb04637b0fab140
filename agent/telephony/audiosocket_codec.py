"""The AudioSocket wire format: kind (1 byte), length (2 bytes, big endian), payload.

Pure functions and an incremental decoder; no I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum

MAX_PAYLOAD = 16 * 1024


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


def kind_for_rate(sample_rate: int) -> Kind:
    for kind, rate in SAMPLE_RATES.items():
        if rate == sample_rate:
            return kind
    raise ValueError(f"AudioSocket has no signed-linear kind for {sample_rate} Hz")


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError("an AudioSocket payload holds at most 65535 bytes")
    return bytes((kind,)) + len(payload).to_bytes(2, "big") + payload


def encode_audio(pcm: bytes, kind: Kind = Kind.SLIN_8K) -> bytes:
    if kind not in AUDIO_KINDS:
        raise ValueError(f"{kind!r} is not an audio kind")
    return encode(kind, pcm)


def encode_uuid(call: uuid.UUID) -> bytes:
    return encode(Kind.UUID, call.bytes)


def encode_dtmf(digit: str) -> bytes:
    if len(digit) != 1 or digit not in "0123456789*#ABCD":
        raise ValueError("a DTMF message carries one digit: 0-9, *, #, A-D")
    return encode(Kind.DTMF, digit.encode("ascii"))


def encode_hangup() -> bytes:
    return encode(Kind.HANGUP)


def encode_error(code: int = 0) -> bytes:
    return encode(Kind.ERROR, bytes((code,)))


class Decoder:
    """Turns a byte stream into messages, whatever the read boundaries."""

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
        while len(buf) - pos >= 3:
            raw_kind = buf[pos]
            length = int.from_bytes(buf[pos + 1 : pos + 3], "big")
            try:
                kind = Kind(raw_kind)
            except ValueError:
                raise AudioSocketProtocolError(f"unknown message kind 0x{raw_kind:02x}") from None
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
        if kind is Kind.UUID and len(payload) != 16:
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
