"""Telephone audio helpers."""

from __future__ import annotations

from agent.audio.frames import sounding_end
from tests.fakes.speech import tone


def test_sounding_end_leaves_out_the_trailing_quiet() -> None:
    line = bytes(800) + tone(0.3) + bytes(1600)  # 50 ms quiet, 300 ms tone, 100 ms quiet
    end = sounding_end(line)
    assert abs(end - (800 + len(tone(0.3)))) <= 160  # within one 10 ms block
    assert sounding_end(bytes(1600)) == 0
    assert sounding_end(tone(0.2)) == len(tone(0.2))
