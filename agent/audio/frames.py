"""Telephone audio frames: 16-bit signed-linear mono PCM in 20 ms frames."""

from __future__ import annotations

FRAME_MS = 20
SAMPLE_WIDTH = 2
TELEPHONE_RATE = 8000


def frame_bytes(sample_rate: int = TELEPHONE_RATE, frame_ms: int = FRAME_MS) -> int:
    """Bytes in one frame: 320 at 8 kHz, 640 at 16 kHz for 20 ms."""
    return sample_rate * frame_ms // 1000 * SAMPLE_WIDTH


def silence(n_bytes: int) -> bytes:
    """Digital silence of the given length."""
    return bytes(n_bytes)


def duration_ms(n_bytes: int, sample_rate: int = TELEPHONE_RATE) -> float:
    """Playing time of ``n_bytes`` of PCM."""
    return n_bytes / SAMPLE_WIDTH / sample_rate * 1000
