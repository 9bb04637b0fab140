"""Text-to-speech with Piper, on its own worker thread, one chunk per sentence."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

from agent.config import PiperSettings
from agent.speech.protocols import SpeechChunk
from agent.speech.weights import PACKAGED, WeightsError, packaged_voice
from agent.speech.worker import CpuTurns, ModelWorker, StopFlag, Urgency


def voice_path(settings: PiperSettings) -> Path:
    path = packaged_voice() if settings.voice == PACKAGED else Path(settings.voice)
    if not path.exists():
        raise WeightsError(f"speech.tts.voice: {path} does not exist")
    if not Path(f"{path}.json").exists():
        raise WeightsError(f"speech.tts.voice: {path}.json (the voice's config) is missing")
    return path


class PiperTts:
    """Speaks text with one Piper voice, loaded once."""

    def __init__(self, settings: PiperSettings, turns: CpuTurns | None = None) -> None:
        from piper import PiperVoice, SynthesisConfig

        path = voice_path(settings)
        self._voice = PiperVoice.load(path, config_path=f"{path}.json")
        self._config = SynthesisConfig(length_scale=settings.length_scale)
        self.rate = int(self._voice.config.sample_rate)
        self._worker = ModelWorker("piper", Urgency.VOICE, turns)

    def _chunks(self, text: str) -> Iterator[SpeechChunk]:
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            yield SpeechChunk(chunk.audio_int16_bytes, chunk.sample_rate)

    def synthesize(self, text: str, stop: StopFlag) -> AsyncGenerator[SpeechChunk, None]:
        return self._worker.stream(lambda: self._chunks(text), stop)

    async def warm_up(self) -> None:
        async for _ in self.synthesize("Hello.", StopFlag()):
            pass
