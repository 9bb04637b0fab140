"""``cartline models prepare|list``: the speech models' weights."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent.config import LlamaSettings, Settings, load_settings
from agent.progress import ProgressBar
from agent.speech import weights
from agent.speech.llama import gguf_path
from agent.speech.piper import voice_path
from agent.speech.whisper import whisper_folder


def add_commands(sub: Any) -> None:
    models = sub.add_parser("models", help="prepare or list the speech models' weights")
    models.add_argument("action", choices=["prepare", "list"])
    models.add_argument("--no-checksum", action="store_true", help="list without hashing files")
    models.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    models_dir = settings.speech.models_dir
    if args.action == "prepare":
        llm = settings.speech.llm
        if isinstance(llm, LlamaSettings) and llm.model == weights.PACKAGED:
            path = weights.prepare_llm(models_dir, ProgressBar("joining the LLM's 22 parts"))
            print(f"LLM ready: {path}")
        for role, where in _locations(settings):
            print(f"{role}: {where}")
        return 0
    code = 0
    for info in describe(settings, checksum=not args.no_checksum):
        if info.problem:
            code = 1
            print(f"{info.role:4} {info.source:9} PROBLEM: {info.problem}")
            continue
        size = f"{info.size / 2**20:8.1f} MB" if info.size is not None else ""
        print(f"{info.role:4} {info.source:9} {size}  {info.sha256 or ''}  {info.path}")
    return code


def _locations(settings: Settings) -> list[tuple[str, str]]:
    out = []
    for info in describe(settings, checksum=False):
        out.append((info.role, info.problem or str(info.path)))
    return out


def describe(settings: Settings, checksum: bool = True) -> list[weights.ModelInfo]:
    """Where each role's weights are, their size and sha256, or what is wrong."""
    sp = settings.speech
    rows: list[weights.ModelInfo] = []

    def add(role: str, source: str, locate: Any, hash_file: Any = None) -> None:
        try:
            path = Path(locate())
        except weights.WeightsError as exc:
            rows.append(weights.ModelInfo(role, source, None, None, None, str(exc)))
            return
        target = hash_file(path) if hash_file else path
        size = (
            sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size
        )
        digest = weights.sha256_of(target) if checksum else None
        rows.append(weights.ModelInfo(role, source, path, size, digest))

    add("vad", "packaged", _silero)
    add("stt", sp.stt.model if sp.stt.model == weights.PACKAGED else "file",
        lambda: whisper_folder(sp.stt), lambda p: p / "model.bin")  # fmt: skip
    if isinstance(sp.llm, LlamaSettings):
        llm = sp.llm
        add("llm", llm.model if llm.model == weights.PACKAGED else "file",
            lambda: gguf_path(llm, sp.models_dir))  # fmt: skip
    else:
        rows.append(weights.ModelInfo("llm", "endpoint", None, None, None, None))
    add("tts", sp.tts.voice if sp.tts.voice == weights.PACKAGED else "file",
        lambda: voice_path(sp.tts))  # fmt: skip
    return rows


def _silero() -> Path:
    from agent.speech.vad import silero_path

    return silero_path()
