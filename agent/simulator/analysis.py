"""How well one side of a call heard the other: cross-correlation of PCM audio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Match:
    """Where ``reference`` was found in a recording, and how closely it matched.

    ``correlation`` is the normalised cross-correlation at the best lag: 1.0 for
    an exact copy (any gain), near 0 for unrelated audio. ``offset_s`` is where
    the reference starts in the recording.
    """

    correlation: float
    offset_s: float


def _samples(pcm: bytes) -> npt.NDArray[np.float64]:
    usable = len(pcm) - len(pcm) % 2
    return np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float64)


def find(reference: bytes, recording: bytes, rate: int = 8000) -> Match:
    """Finds ``reference`` inside ``recording`` (both 16-bit mono PCM at ``rate``)."""
    ref, rec = _samples(reference), _samples(recording)
    n = len(ref)
    if n == 0 or len(rec) < n:
        return Match(0.0, 0.0)
    ref = ref - ref.mean()
    size = 1 << int(np.ceil(np.log2(len(rec) + n)))
    raw = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = len(rec) - n + 1
    raw = raw[:lags]
    # Energy of each window of the recording, from a running sum of squares.
    sq = np.concatenate(([0.0], np.cumsum(rec * rec)))
    sums = np.concatenate(([0.0], np.cumsum(rec)))
    window_sum = sums[n:] - sums[:lags]
    window_energy = sq[n:] - sq[:lags] - window_sum * window_sum / n
    denom = np.sqrt(np.maximum(window_energy, 1e-9) * float(ref @ ref))
    corr = raw / denom
    best = int(np.argmax(corr))
    return Match(float(corr[best]), best / rate)


def level_dbfs(pcm: bytes) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    x = _samples(pcm)
    if len(x) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(x * x)))
    return 20 * float(np.log10(rms / 32768)) if rms > 0 else float("-inf")
