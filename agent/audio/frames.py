"""Telephone audio frames: 16-bit signed-linear mono PCM in 20 ms frames.

At 8 kHz a frame is 320 bytes, at 16 kHz 640 bytes. Audio from Asterisk is not
always whole frames (the last frame of a playback can be 204 bytes), so nothing
here assumes it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FRAME_MS = 20
SAMPLE_WIDTH = 2
TELEPHONE_RATE = 8000
# RMS of a full-scale square wave: the 0 dBFS reference.
_FULL_SCALE = 32768.0
SILENCE_DBFS = -math.inf


def frame_bytes(sample_rate: int = TELEPHONE_RATE, frame_ms: int = FRAME_MS) -> int:
    """Bytes in one frame: 320 at 8 kHz, 640 at 16 kHz for 20 ms."""
    return sample_rate * frame_ms // 1000 * SAMPLE_WIDTH


def silence(n_bytes: int) -> bytes:
    """Digital silence of the given length."""
    return bytes(n_bytes)


def duration_ms(n_bytes: int, sample_rate: int = TELEPHONE_RATE) -> float:
    """Playing time of ``n_bytes`` of PCM."""
    return n_bytes / SAMPLE_WIDTH / sample_rate * 1000


def samples(pcm: bytes) -> npt.NDArray[np.int16]:
    """The samples of little-endian PCM16 (a trailing odd byte is ignored)."""
    usable = len(pcm) - len(pcm) % SAMPLE_WIDTH
    return np.frombuffer(pcm[:usable], dtype="<i2")


def rms_dbfs(pcm: bytes) -> float:
    """Level of PCM16 in dB relative to full scale; ``-inf`` for silence or no samples."""
    x = samples(pcm)
    if x.size == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
    if rms == 0.0:
        return SILENCE_DBFS
    return 20 * math.log10(rms / _FULL_SCALE)


def sounding_end(pcm: bytes, rate: int = TELEPHONE_RATE, floor: int = 600) -> int:
    """Bytes of ``pcm`` up to the end of its last 10 ms block louder than ``floor`` (0 if none).

    What lies after is the trailing quiet a synthesized line ends with.
    """
    block = rate // 100
    x = np.abs(samples(pcm).astype(np.int32))
    loud = [i for i in range(0, len(x), block) if x[i : i + block].max(initial=0) > floor]
    return min(len(x), loud[-1] + block) * SAMPLE_WIDTH if loud else 0
