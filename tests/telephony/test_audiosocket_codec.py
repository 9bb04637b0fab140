from __future__ import annotations

import uuid

import pytest

from agent.telephony.audiosocket_codec import (
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
)


def test_encodings() -> None:
    call = uuid.UUID("6f1c8e2a-0d5b-4c1e-9a7f-3b2d1c0e9f8a")
    assert encode_uuid(call) == b"\x01\x00\x10" + call.bytes
    assert encode_hangup() == b"\x00\x00\x00"
    assert encode_dtmf("#") == b"\x03\x00\x01#"
    assert encode_error(2) == b"\xff\x00\x01\x02"
    assert encode_audio(b"\x01\x02" * 160) == b"\x10\x01\x40" + b"\x01\x02" * 160
    assert encode_audio(bytes(640), Kind.SLIN_16K)[:3] == b"\x12\x02\x80"
    assert kind_for_rate(16000) is Kind.SLIN_16K
    with pytest.raises(ValueError):
        encode_dtmf("12")
    with pytest.raises(ValueError):
        encode_audio(b"", Kind.DTMF)
    with pytest.raises(ValueError):
        kind_for_rate(11025)


def test_round_trip_in_any_chunking() -> None:
    call = uuid.uuid4()
    stream = (
        encode_uuid(call)
        + encode_audio(bytes(range(256)) + bytes(64))
        + encode_dtmf("5")
        + encode_audio(bytes(204))  # a short last frame, as Asterisk sends
        + encode_hangup()
    )
    expected = [
        Message(Kind.UUID, call.bytes),
        Message(Kind.SLIN_8K, bytes(range(256)) + bytes(64)),
        Message(Kind.DTMF, b"5"),
        Message(Kind.SLIN_8K, bytes(204)),
        Message(Kind.HANGUP),
    ]
    assert Decoder().feed(stream) == expected
    decoder = Decoder()
    out = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == expected and decoder.pending == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x77\x00\x00", "unknown message kind 0x77"),
        (b"\x01\x00\x04abcd", "16 bytes"),
        (b"\x03\x00\x02ab", "one byte"),
        (b"\x10\xff\xff", "exceeds"),
    ],
)
def test_invalid_input(data: bytes, match: str) -> None:
    with pytest.raises(AudioSocketProtocolError, match=match):
        Decoder().feed(data)


def test_odd_audio_length_keeps_whole_samples() -> None:
    decoder = Decoder()
    assert decoder.feed(encode(Kind.SLIN_8K, b"abc")) == [Message(Kind.SLIN_8K, b"ab")]
    assert decoder.odd_bytes_dropped == 1
