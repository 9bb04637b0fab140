"""The AudioSocket codec: exact bytes, round trips in any chunking, every error."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from agent.telephony.audiosocket_codec import (
    AUDIO_KINDS,
    MAX_PAYLOAD,
    SAMPLE_RATES,
    AudioSocketProtocolError,
    Decoder,
    Kind,
    Message,
    encode,
    encode_audio,
    encode_dtmf,
    encode_error,
    encode_hangup,
    encode_uuid,
    kind_for_rate,
    sample_rate,
)

CALL = uuid.UUID("6f1c8e2a-0d5b-4c1e-9a7f-3b2d1c0e9f8a")


def test_encodings_are_the_bytes_asterisk_sends() -> None:
    assert encode_uuid(CALL) == b"\x01\x00\x10" + CALL.bytes
    assert encode_hangup() == b"\x00\x00\x00"
    assert encode_dtmf("#") == b"\x03\x00\x01#"
    assert encode_error(2) == b"\xff\x00\x01\x02"
    assert encode_audio(b"\x01\x02" * 160) == b"\x10\x01\x40" + b"\x01\x02" * 160
    assert encode_audio(bytes(640), Kind.SLIN_16K)[:3] == b"\x12\x02\x80"


def test_sample_rates_of_the_audio_kinds() -> None:
    assert [int(k) for k in sorted(AUDIO_KINDS)] == list(range(0x10, 0x19))
    assert sample_rate(Kind.SLIN_8K) == 8000
    assert sample_rate(Kind.SLIN_16K) == 16000
    assert sample_rate(Kind.SLIN_44K) == 44100
    assert sample_rate(Kind.SLIN_192K) == 192000
    for kind, rate in SAMPLE_RATES.items():
        assert kind_for_rate(rate) is kind
    with pytest.raises(ValueError):
        sample_rate(Kind.DTMF)
    with pytest.raises(ValueError):
        kind_for_rate(11025)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: encode_dtmf("12"),
        lambda: encode_dtmf("x"),
        lambda: encode_audio(b"", Kind.DTMF),
        lambda: encode(Kind.SLIN_8K, bytes(0x10000)),
    ],
)
def test_encoders_refuse_what_cannot_be_sent(bad: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        bad()


def stream() -> tuple[bytes, list[Message]]:
    data = (
        encode_uuid(CALL)
        + encode_audio(bytes(range(256)) + bytes(64))
        + encode_dtmf("5")
        + encode_audio(bytes(204))  # a short last frame, as Asterisk sends
        + encode_audio(bytes(640), Kind.SLIN_16K)
        + encode_error(7)
        + encode_hangup()
    )
    expected = [
        Message(Kind.UUID, CALL.bytes),
        Message(Kind.SLIN_8K, bytes(range(256)) + bytes(64)),
        Message(Kind.DTMF, b"5"),
        Message(Kind.SLIN_8K, bytes(204)),
        Message(Kind.SLIN_16K, bytes(640)),
        Message(Kind.ERROR, b"\x07"),
        Message(Kind.HANGUP),
    ]
    return data, expected


def test_several_messages_in_one_read() -> None:
    data, expected = stream()
    decoder = Decoder()
    assert decoder.feed(data) == expected
    assert decoder.pending == 0


def test_byte_by_byte() -> None:
    data, expected = stream()
    decoder = Decoder()
    out: list[Message] = []
    for i in range(len(data)):
        got = decoder.feed(data[i : i + 1])
        out += got
        # A message comes out exactly when its last byte arrives, not before.
        assert bool(got) == (decoder.pending == 0)
    assert out == expected and decoder.pending == 0


@pytest.mark.parametrize("cut", [1, 2, 3, 10, 19, 20, 21, 100, 341])
def test_split_at_any_point(cut: int) -> None:
    data, expected = stream()
    decoder = Decoder()
    first = decoder.feed(data[:cut])
    assert first == expected[: len(first)]
    assert first + decoder.feed(data[cut:]) == expected


def test_message_is_frozen() -> None:
    message = Message(Kind.DTMF, b"1")
    with pytest.raises(AttributeError):
        message.payload = b"2"  # type: ignore[misc]
    assert message.is_audio is False and Message(Kind.SLIN_24K, b"").is_audio


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x77\x00\x00", "unknown message kind 0x77"),
        (b"\x02", "unknown message kind 0x02"),  # caught on its first byte
        (encode_hangup() + b"\x20\x00", "unknown message kind 0x20"),
        (b"\x01\x00\x04abcd", "16 bytes"),
        (b"\x01\x00\x11" + bytes(17), "16 bytes"),
        (b"\x01\x00\x00", "16 bytes"),
        (b"\x03\x00\x02ab", "one byte"),
        (b"\x03\x00\x00", "one byte"),
        (b"\x10\xff\xff", "exceeds"),
        (b"\x12" + (MAX_PAYLOAD + 1).to_bytes(2, "big"), "exceeds"),
    ],
)
def test_invalid_input(data: bytes, match: str) -> None:
    with pytest.raises(AudioSocketProtocolError, match=match):
        Decoder().feed(data)
    # The same bytes one at a time are refused just the same.
    decoder = Decoder()
    with pytest.raises(AudioSocketProtocolError, match=match):
        for i in range(len(data)):
            decoder.feed(data[i : i + 1])


def test_largest_allowed_payload_passes() -> None:
    pcm = bytes(MAX_PAYLOAD)
    assert Decoder().feed(encode_audio(pcm, Kind.SLIN_192K)) == [Message(Kind.SLIN_192K, pcm)]


def test_odd_audio_length_keeps_whole_samples_and_counts() -> None:
    decoder = Decoder()
    assert decoder.feed(encode(Kind.SLIN_8K, b"abc")) == [Message(Kind.SLIN_8K, b"ab")]
    assert decoder.feed(encode(Kind.SLIN_8K, b"x")) == [Message(Kind.SLIN_8K, b"")]
    assert decoder.odd_bytes_dropped == 2
