from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.speech import weights


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    parts = []
    blob = b""
    for i in range(3):
        part = tmp_path / f"part{i:02d}.bin"
        data = bytes([i]) * (1000 + i)
        part.write_bytes(data)
        parts.append(part)
        blob += data
    monkeypatch.setattr(weights, "llm_parts", lambda: parts)
    monkeypatch.setattr(weights, "LLM_SIZE", len(blob))
    monkeypatch.setattr(weights, "LLM_SHA256", hashlib.sha256(blob).hexdigest())
    return blob


def test_prepare_joins_the_parts_once_with_progress(tmp_path: Path, fake_parts: bytes) -> None:
    seen: list[tuple[int, int]] = []
    path = weights.prepare_llm(tmp_path / "models", lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == fake_parts
    assert seen[-1] == (len(fake_parts), len(fake_parts))
    mtime = path.stat().st_mtime_ns
    assert weights.prepare_llm(tmp_path / "models") == path
    assert path.stat().st_mtime_ns == mtime
    assert weights.packaged_llm(tmp_path / "models") == path


def test_a_bad_checksum_leaves_nothing(
    tmp_path: Path, fake_parts: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "LLM_SHA256", "0" * 64)
    with pytest.raises(weights.WeightsError, match="checksum"):
        weights.prepare_llm(tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_or_damaged_llm_says_how_to_fix(tmp_path: Path, fake_parts: bytes) -> None:
    with pytest.raises(weights.WeightsError, match="cartline models prepare"):
        weights.packaged_llm(tmp_path)
    (tmp_path / weights.LLM_FILE).write_bytes(b"short")
    with pytest.raises(weights.WeightsError, match="wrong size"):
        weights.packaged_llm(tmp_path)


def test_packaged_weights_are_installed_and_intact() -> None:
    assert weights.sha256_of(weights.packaged_whisper() / "model.bin") == weights.WHISPER_SHA256
    assert weights.sha256_of(weights.packaged_voice()) == weights.VOICE_SHA256
    assert len(weights.llm_parts()) == 22


def test_an_uninstalled_package_is_a_clear_error() -> None:
    with pytest.raises(weights.WeightsError, match="not installed"):
        weights._package_dir("no_such_model_package", "no-such-model-package")
