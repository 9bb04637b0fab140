"""Speech-to-text with faster-whisper (CTranslate2), on its own worker thread."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from agent.config import WhisperSettings
from agent.speech.protocols import Transcript
from agent.speech.weights import PACKAGED, WeightsError, packaged_whisper
from agent.speech.worker import CpuTurns, ModelWorker, Urgency


def whisper_folder(settings: WhisperSettings) -> Path:
    if settings.model == PACKAGED:
        return packaged_whisper()
    folder = Path(settings.model)
    if not (folder / "model.bin").exists():
        raise WeightsError(
            f"speech.stt.model: {folder} is not a CTranslate2 Whisper folder (no model.bin); "
            'use "packaged" or a folder converted with ct2-transformers-converter'
        )
    return folder


class WhisperStt:
    """Transcribes caller turns. Loaded once; one call at a time on its thread."""

    def __init__(self, settings: WhisperSettings, turns: CpuTurns | None = None) -> None:
        # Never ask a model hub for anything: the weights are local.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel

        self._settings = settings
        self._model = WhisperModel(
            str(whisper_folder(settings)),
            device="cpu",
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            local_files_only=True,
        )
        self._worker = ModelWorker("whisper", Urgency.HEARING, turns)

    def _run(self, pcm16k: bytes) -> Transcript:
        started = time.perf_counter()
        audio = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768.0
        segments, _ = self._model.transcribe(
            audio,
            language=self._settings.language,
            beam_size=self._settings.beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        # The segments iterator is lazy: consume it here, on the worker thread.
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, len(audio) / 16000, time.perf_counter() - started)

    async def transcribe(self, pcm16k: bytes) -> Transcript:
        return await self._worker.run(lambda: self._run(pcm16k))

    async def warm_up(self) -> None:
        await self.transcribe(bytes(16000))
