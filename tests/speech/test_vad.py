"""The real Silero VAD as a call streams it: a first word after a long silence is heard."""

from __future__ import annotations

import pytest

from agent.audio.resample import Resampler
from agent.simulator.voice import speak
from agent.speech.protocols import VAD_WINDOW_SAMPLES
from agent.speech.vad import SileroVad

WINDOW = VAD_WINDOW_SAMPLES * 2


def _probabilities(vad: SileroVad, pcm8k: bytes) -> list[float]:
    stream = vad.stream()
    audio = Resampler(8000, 16000).process(pcm8k)
    return [
        stream.probability(audio[i : i + WINDOW]) for i in range(0, len(audio) - WINDOW, WINDOW)
    ]


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


async def test_the_first_words_after_a_long_silence_score_as_after_a_short_one(
    vad: SileroVad,
) -> None:
    line = await speak("Stop calling me. Take me off your list.")
    onset_windows = 20  # the first 0.64 s of the line
    scores: dict[float, float] = {}
    # 1.5 s and 15 s put the line at the same place in a 32 ms window (that alone moves
    # the onset's score by about 0.2).
    for silence_s in (1.5, 15):
        lead = b"\x00\x00" * int(8000 * silence_s)
        probs = _probabilities(vad, lead + line)
        start = len(lead) * 2 // WINDOW
        scores[silence_s] = sorted(probs[start : start + onset_windows])[onset_windows // 2]
    # Without the state being rested, 15 s of silence left the onset's median at 0.40,
    # against 0.54 after 1.5 s.
    assert scores[15] >= scores[1.5] - 0.05


def test_silence_stays_silence(vad: SileroVad) -> None:
    assert max(_probabilities(vad, b"\x00\x00" * 8000 * 5)) < 0.1
