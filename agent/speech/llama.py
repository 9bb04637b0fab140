"""The dialogue model: llama.cpp in-process, or an OpenAI-compatible endpoint.

In-process, the model is loaded once and shared by every call; its calls run
one at a time on its worker thread. llama.cpp keeps the KV cache of the last
prompt, so a call's next turn only evaluates what is new since the last one.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from typing import Any

from agent.config import LlamaSettings, OpenAiLlmSettings
from agent.speech.protocols import ChatMessage
from agent.speech.weights import PACKAGED, WeightsError, packaged_llm
from agent.speech.worker import ModelWorker, StopFlag


def gguf_path(settings: LlamaSettings, models_dir: Path) -> Path:
    if settings.model == PACKAGED:
        return packaged_llm(models_dir)
    path = Path(settings.model)
    if not path.exists():
        raise WeightsError(f"speech.llm.model: {path} does not exist")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise WeightsError(f"speech.llm.model: {path} is not a GGUF file")
    return path


class LlamaLlm:
    def __init__(self, settings: LlamaSettings, models_dir: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_cache import LlamaRAMCache

        self._settings = settings
        self._llm: Any = Llama(
            model_path=str(gguf_path(settings, models_dir)),
            n_ctx=settings.n_ctx,
            n_threads=settings.threads,
            n_gpu_layers=settings.gpu_layers,
            verbose=False,
        )
        if settings.state_cache_mb:
            self._llm.set_cache(LlamaRAMCache(capacity_bytes=settings.state_cache_mb << 20))
        self._worker = ModelWorker("llama")

    def _tokens(self, messages: Sequence[ChatMessage], stop: StopFlag) -> Iterator[str]:
        stream = self._llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            temperature=self._settings.temperature,
            max_tokens=self._settings.max_tokens,
            stream=True,
        )
        for part in stream:
            if stop.is_set:
                break
            delta: dict[str, Any] = part["choices"][0].get("delta", {})
            text = delta.get("content")
            if text:
                yield text

    def stream_reply(
        self, messages: Sequence[ChatMessage], stop: StopFlag
    ) -> AsyncGenerator[str, None]:
        return self._worker.stream(lambda: self._tokens(messages, stop), stop)

    async def warm_up(self, system_prompt: str) -> None:
        """Evaluates the system prompt once so the first call finds it cached."""
        async for _ in self.stream_reply(
            [ChatMessage("system", system_prompt), ChatMessage("user", "Hello?")], StopFlag()
        ):
            pass


class OpenAiLlm:
    """A chat-completions endpoint (llama.cpp's server on a GPU box, for example)."""

    def __init__(self, settings: OpenAiLlmSettings) -> None:
        self._settings = settings
        self._worker = ModelWorker("llm-http")

    def _tokens(self, messages: Sequence[ChatMessage], stop: StopFlag) -> Iterator[str]:
        s = self._settings
        body = json.dumps(
            {
                "model": s.model,
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "temperature": s.temperature,
                "max_tokens": s.max_tokens,
                "stream": True,
            }
        ).encode()
        request = urllib.request.Request(
            s.url.rstrip("/") + "/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {s.api_key.get_secret_value()}"} if s.api_key else {}),
        )
        with urllib.request.urlopen(request, timeout=s.timeout_s) as response:
            for raw in response:
                if stop.is_set:
                    break
                line = raw.decode().strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                delta = json.loads(line[5:])["choices"][0].get("delta", {})
                if delta.get("content"):
                    yield str(delta["content"])

    def stream_reply(
        self, messages: Sequence[ChatMessage], stop: StopFlag
    ) -> AsyncGenerator[str, None]:
        return self._worker.stream(lambda: self._tokens(messages, stop), stop)

    async def warm_up(self, system_prompt: str) -> None:
        return None
