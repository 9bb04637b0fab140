"""Sealing: AES-GCM with named keys; a sealed recording is unreadable without its key."""

from __future__ import annotations

import base64
import io
import os
import wave
from pathlib import Path

import pytest

from agent.privacy.crypto import (
    ENV_KEYS,
    RECORDING_CONTEXT,
    TRANSCRIPT_CONTEXT,
    DataKeyError,
    DataKeys,
    add_key,
    ensure_keys,
    file_sealed_with,
    load_keys,
    parse_keys,
    sealed_with,
)


def _keys(*ids: str) -> DataKeys:
    return DataKeys({i: bytes([n]) * 32 for n, i in enumerate(ids, 1)}, ids[-1])


def _wav(path: Path) -> bytes:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(os.urandom(16000))
    return path.read_bytes()


def test_seal_and_open_round_trip_bound_to_context() -> None:
    keys = _keys("k1")
    blob = keys.seal(b"hello, Dana", TRANSCRIPT_CONTEXT)
    assert b"Dana" not in blob
    assert sealed_with(blob) == "k1"
    assert keys.open(blob, TRANSCRIPT_CONTEXT) == b"hello, Dana"
    with pytest.raises(DataKeyError, match="does not open"):
        keys.open(blob, RECORDING_CONTEXT)


def test_altered_or_foreign_data_does_not_open() -> None:
    keys = _keys("k1")
    blob = bytearray(keys.seal(b"secret", TRANSCRIPT_CONTEXT))
    blob[-1] ^= 1
    with pytest.raises(DataKeyError, match="does not open"):
        keys.open(bytes(blob), TRANSCRIPT_CONTEXT)
    with pytest.raises(DataKeyError, match="not configured"):
        _keys("other").open(keys.seal(b"x", "c"), "c")
    with pytest.raises(DataKeyError, match="not sealed"):
        keys.open(b"RIFF....WAVE", "c")


def test_sealed_recording_has_no_wav_header_and_opens_to_the_original(tmp_path: Path) -> None:
    keys = _keys("k1")
    original = _wav(tmp_path / "call.wav")
    sealed = keys.seal_file(tmp_path / "call.wav", RECORDING_CONTEXT)
    assert sealed.name == "call.wav.enc"
    assert not (tmp_path / "call.wav").exists()
    data = sealed.read_bytes()
    assert not data.startswith(b"RIFF") and b"WAVE" not in data[:64]
    assert file_sealed_with(sealed) == "k1"
    opened = keys.open_file(sealed, RECORDING_CONTEXT)
    assert opened == original
    with wave.open(io.BytesIO(opened)) as w:
        assert w.getframerate() == 8000


def test_rotation_keeps_old_data_readable_and_reseals_it(tmp_path: Path) -> None:
    old = _keys("k1")
    (tmp_path / "a.wav").write_bytes(b"RIFF-audio")
    sealed = old.seal_file(tmp_path / "a.wav", RECORDING_CONTEXT)
    both = DataKeys({"k1": bytes([1]) * 32, "k2": bytes([2]) * 32}, "k2")
    assert both.open_file(sealed, RECORDING_CONTEXT) == b"RIFF-audio"
    assert both.reseal_file(sealed, RECORDING_CONTEXT)
    assert file_sealed_with(sealed) == "k2"
    assert not both.reseal_file(sealed, RECORDING_CONTEXT)
    assert (
        DataKeys({"k2": bytes([2]) * 32}, "k2").open_file(sealed, RECORDING_CONTEXT)
        == b"RIFF-audio"
    )


def test_key_file_made_private_and_last_key_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_KEYS, raising=False)
    path = tmp_path / "keys" / "data.keys"
    with pytest.raises(DataKeyError, match="keygen"):
        load_keys(path)
    first = ensure_keys(path).active
    assert path.stat().st_mode & 0o777 == 0o600
    second = add_key(path)
    keys = load_keys(path)
    assert keys.active == second and set(keys.ids) == {first, second}
    path.chmod(0o644)
    with pytest.raises(DataKeyError, match="chmod 600"):
        load_keys(path)


def test_keys_from_the_environment_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = base64.b64encode(bytes(32)).decode()
    monkeypatch.setenv(ENV_KEYS, f"a:{key},b:{key}")
    assert load_keys(tmp_path / "missing").active == "b"
    with pytest.raises(DataKeyError, match="base64"):
        parse_keys("a not-base64!", "test")
    with pytest.raises(DataKeyError, match="32 bytes"):
        parse_keys(f"a {base64.b64encode(b'short').decode()}", "test")
