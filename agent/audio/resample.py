"""Sample-rate conversion at the edges of the pipeline (soxr, streaming).

Telephone audio is 8 kHz; Whisper and the VAD want 16 kHz; the Piper voice
speaks at its own rate (22,050 Hz). Each direction of a call keeps one
streaming resampler so chunk boundaries leave no clicks.
"""

from __future__ import annotations

import numpy as np
import soxr


class Resampler:
    """Converts a stream of 16-bit mono PCM from one rate to another."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._same = in_rate == out_rate
        self._stream = (
            None
            if self._same
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
        )

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        """Resamples a chunk; ``last`` flushes what the filter still holds."""
        if self._stream is None:
            return pcm
        usable = len(pcm) - len(pcm) % 2
        samples = np.frombuffer(pcm[:usable], dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        return np.asarray(out, dtype="<i2").tobytes()


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Resamples one whole clip."""
    if in_rate == out_rate:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    out = soxr.resample(samples, in_rate, out_rate, quality="HQ")
    return np.asarray(out, dtype="<i2").tobytes()
