from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from agent.simulator import analysis, voice


def _write(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


async def test_wav_lines_are_read_at_8k(tmp_path: Path) -> None:
    narrow = voice.tone(440, 0.5)
    _write(tmp_path / "a.wav", narrow, 8000)
    assert await voice.read_wav(tmp_path / "a.wav") == narrow
    _write(tmp_path / "b.wav", voice.tone(440, 0.5, rate=16000), 16000)
    converted = await voice.read_wav(tmp_path / "b.wav")
    assert len(converted) == pytest.approx(len(narrow), abs=8)
    assert analysis.find(narrow[800:4000], converted).correlation > 0.95


async def test_text_lines_are_spoken_and_cached(tmp_path: Path) -> None:
    pcm = await voice.speak("Hello there", tmp_path)
    assert 0.4 < len(pcm) / 16000 < 3.0 and analysis.level_dbfs(pcm) > -40
    assert len(await asyncio.to_thread(lambda: list(tmp_path.iterdir()))) == 1
    assert await voice.speak("Hello there", tmp_path) == pcm


async def test_a_missing_wav_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(voice.VoiceError, match="cannot read"):
        await voice.read_wav(tmp_path / "nope.wav")
