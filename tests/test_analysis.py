from __future__ import annotations

import numpy as np
import pytest

from agent.simulator.analysis import find, level_dbfs
from agent.simulator.voice import tone


def _noise(n: int, seed: int, scale: float = 3000.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype("<i2")


def test_finds_a_scaled_copy_at_its_offset() -> None:
    ref = _noise(8000, 1)
    rec = np.concatenate([np.zeros(2400), ref // 2, _noise(1000, 2, 20)]).astype("<i2")
    match = find(ref.tobytes(), rec.tobytes())
    assert match.correlation > 0.99
    assert match.offset_s == pytest.approx(0.3, abs=1e-3)


def test_unrelated_audio_does_not_match() -> None:
    match = find(_noise(8000, 1).tobytes(), _noise(16000, 3).tobytes())
    assert match.correlation < 0.2


def test_too_short_recording() -> None:
    assert find(_noise(800, 1).tobytes(), _noise(400, 2).tobytes()).correlation == 0.0


def test_levels() -> None:
    assert level_dbfs(bytes(320)) == float("-inf")
    assert level_dbfs(tone(440, 1.0, dbfs=-12)) == pytest.approx(-15.0, abs=0.2)
