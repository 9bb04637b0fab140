"""The speech models of a process, loaded once and shared by every call."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from agent.audio.resample import resample
from agent.config import LlamaSettings, SpeechSettings
from agent.speech.protocols import Llm, Stt, Tts, Vad
from agent.speech.worker import CpuTurns, StopFlag

log = logging.getLogger(__name__)
TELEPHONE_RATE = 8000
FIXED_LINES = 64  # the most short lines kept ready (a handful per campaign)


@dataclass
class Speech:
    """VAD, STT, LLM and TTS together."""

    vad: Vad
    stt: Stt
    llm: Llm
    tts: Tts
    _fixed: dict[str, bytes] = field(default_factory=dict, repr=False)

    async def render_fixed(self, text: str) -> bytes:
        """:meth:`render`, kept for the process: for short lines every call says alike."""
        pcm = self._fixed.get(text)
        if pcm is None:
            pcm = await self.render(text)
            if len(self._fixed) < FIXED_LINES:
                self._fixed[text] = pcm
        return pcm

    async def render(self, text: str) -> bytes:
        """All of ``text`` as 8 kHz telephone PCM (for fixed lines such as the greeting)."""
        out = b""
        async for chunk in self.tts.synthesize(text, StopFlag()):
            out += resample(chunk.pcm, chunk.rate, TELEPHONE_RATE)
        return out


async def load_speech(settings: SpeechSettings, system_prompt: str) -> Speech:
    """Loads the configured models and warms each one up, so the first call is fast."""
    from agent.speech.llama import LlamaLlm, OpenAiLlm
    from agent.speech.piper import PiperTts
    from agent.speech.vad import SileroVad
    from agent.speech.whisper import WhisperStt

    started = time.perf_counter()
    turns = CpuTurns() if settings.cpu_turns else None
    stt = WhisperStt(settings.stt, turns)
    tts = PiperTts(settings.tts, turns)
    llm: LlamaLlm | OpenAiLlm
    if isinstance(settings.llm, LlamaSettings):
        llm = LlamaLlm(settings.llm, settings.models_dir, turns)
    else:
        llm = OpenAiLlm(settings.llm)
    speech = Speech(SileroVad(), stt, llm, tts)
    await stt.warm_up()
    await tts.warm_up()
    await llm.warm_up(system_prompt)
    log.info("speech models loaded and warm in %.1f s", time.perf_counter() - started)
    return speech
