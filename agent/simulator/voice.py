"""The simulated customer's voice: lines from text (espeak-ng), WAV files or tones.

Everything comes out as 8 kHz signed 16-bit mono PCM, the telephone rate the
simulator's AudioSocket carries. espeak-ng and sox are Debian packages that
scripts/test and scripts/demo install; they are needed only by the simulator.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import math
import shutil
import wave
from pathlib import Path

from agent.errors import CartlineError

RATE = 8000


class VoiceError(CartlineError):
    """A customer line could not be produced."""


def tone(freq_hz: float, seconds: float, dbfs: float = -12.0, rate: int = RATE) -> bytes:
    """A sine tone as 16-bit PCM (the voicemail beep, test signals)."""
    amp = 32767 * 10 ** (dbfs / 20)
    n = int(seconds * rate)
    samples = array.array(
        "h", (int(amp * math.sin(2 * math.pi * freq_hz * i / rate)) for i in range(n))
    )
    return samples.tobytes()


async def _run(*argv: str, stdin: bytes | None = None) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise VoiceError(f"{argv[0]} failed: {err.decode(errors='replace').strip()[:200]}")
    return out


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise VoiceError(
            f"{tool} is not installed (apt-get install {tool}); the simulator needs it"
        )
    return path


async def to_8k(wav_bytes: bytes) -> bytes:
    """Any WAV (bytes) to raw 8 kHz mono 16-bit PCM, with sox."""
    return await _run(
        _need("sox"), "-q", "-t", "wav", "-", "-r", str(RATE), "-c", "1", "-b", "16",
        "-e", "signed-integer", "-t", "raw", "-",
        stdin=wav_bytes,
    )  # fmt: skip


async def speak(text: str, cache_dir: Path | None = None, voice: str = "en-us") -> bytes:
    """Synthesises a line with espeak-ng; cached by text when a folder is given."""
    key = hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()[:24]
    cached = cache_dir / f"{key}.s16" if cache_dir else None
    if cached is not None:
        hit = await asyncio.to_thread(_read_if_exists, cached)
        if hit is not None:
            return hit
    wav_bytes = await _run(_need("espeak-ng"), "-v", voice, "-s", "160", "--stdout", text)
    pcm = await to_8k(wav_bytes)
    if cached is not None:
        await asyncio.to_thread(_write_file, cached, pcm)
    return pcm


def _read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _read_wav_8k(path: Path) -> tuple[bytes | None, bytes]:
    """(PCM if the file is already 8 kHz mono 16-bit, else None; the file's bytes)."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2):
                return w.readframes(w.getnframes()), b""
    except (wave.Error, EOFError):
        pass
    except OSError as exc:
        raise VoiceError(f"cannot read {path}: {exc.strerror}") from None
    return None, path.read_bytes()


async def read_wav(path: Path) -> bytes:
    """A WAV file as 8 kHz mono PCM (converted with sox when it is another format)."""
    pcm, raw = await asyncio.to_thread(_read_wav_8k, path)
    return pcm if pcm is not None else await to_8k(raw)


def write_wav(path: Path, pcm: bytes, rate: int = RATE) -> None:
    """Writes 16-bit mono PCM as a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
