"""Settings of the local speech models and of turn-taking (``speech:`` in config.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WhisperSettings(_Section):
    """Speech-to-text with faster-whisper."""

    kind: Literal["whisper"] = "whisper"
    # "packaged" (Whisper tiny.en from PyPI) or a folder holding a CTranslate2 model.
    model: str = "packaged"
    compute_type: str = "int8"
    beam_size: int = Field(1, ge=1, le=10)
    cpu_threads: int = Field(2, ge=1, le=64)
    language: str = "en"


class LlamaSettings(_Section):
    """The dialogue model, run in-process by llama.cpp."""

    kind: Literal["llama"] = "llama"
    # "packaged" (Qwen2.5-Coder-1.5B-Instruct Q4_K_M from PyPI) or a .gguf file.
    model: str = "packaged"
    n_ctx: int = Field(2048, ge=256)
    threads: int = Field(2, ge=1, le=256)
    gpu_layers: int = Field(0, ge=-1)
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(120, ge=8, le=2048)
    # Memory for saved model states, so a call's next turn resumes where it left
    # off even when other calls used the model in between (0 turns it off). A
    # state is the call's KV cache: about 28 KB a token with the packaged model.
    state_cache_mb: int = Field(128, ge=0)


class OpenAiLlmSettings(_Section):
    """The dialogue model behind an OpenAI-compatible HTTP endpoint (llama.cpp's server)."""

    kind: Literal["openai"]
    url: str = Field(pattern=r"^https?://")
    model: str = "default"
    api_key: SecretStr | None = None
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(120, ge=8, le=2048)
    timeout_s: float = Field(10.0, gt=0)


class PiperSettings(_Section):
    """Text-to-speech with Piper."""

    kind: Literal["piper"] = "piper"
    # "packaged" (en_US-joe-medium from PyPI) or a voice .onnx with its .onnx.json beside it.
    voice: str = "packaged"
    length_scale: float = Field(1.0, gt=0.3, lt=3.0)


class TurnSettings(_Section):
    """Turn-taking: when the caller has finished, when a caller interrupts."""

    vad_threshold: float = Field(0.5, gt=0, lt=1)
    min_speech_ms: int = Field(160, ge=40)
    # Silence after which the caller has probably finished: transcription starts.
    likely_over_ms: int = Field(150, ge=60)
    # Silence after which the caller has finished: the agent answers.
    end_silence_ms: int = Field(550, ge=100)
    # Speech over the agent shorter than this ("mm-hm") does not interrupt it.
    barge_in_ms: int = Field(400, ge=100)
    # A plan still being decided this long after the caller's turn ended: the agent
    # says one of the script's acknowledgements ("Okay.") first. None: never.
    acknowledge_after_ms: int | None = Field(100, ge=0)
    reprompt_after_s: float = Field(7.0, gt=0)
    hang_up_after_s: float = Field(20.0, gt=0)

    @model_validator(mode="after")
    def _order(self) -> TurnSettings:
        if self.likely_over_ms > self.end_silence_ms:
            raise ValueError("likely_over_ms must not exceed end_silence_ms")
        if self.reprompt_after_s >= self.hang_up_after_s:
            raise ValueError("reprompt_after_s must be shorter than hang_up_after_s")
        return self


class SpeechSettings(_Section):
    """Local speech models: each loaded once per process and shared by every call."""

    models_dir: Path = Path("models")
    stt: WhisperSettings = WhisperSettings()
    llm: Annotated[LlamaSettings | OpenAiLlmSettings, Field(discriminator="kind")] = LlamaSettings()
    tts: PiperSettings = PiperSettings()
    turn: TurnSettings = TurnSettings()
    # The models take turns on the CPU, the most urgent work first (the agent's
    # words, then a caller's transcript, then decisions, then reading ahead),
    # instead of computing at once and slowing each other down. Off suits a
    # machine with cores enough for every model's threads at once.
    cpu_turns: bool = True
