"""The dialogue model: llama.cpp in-process, or an OpenAI-compatible endpoint.

In-process, the model is loaded once and shared by every call; its calls run
one at a time on its worker thread. llama.cpp keeps the KV cache of the last
prompt, so a call's next turn only evaluates what is new since the last one.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncGenerator, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent.config import LlamaSettings, OpenAiLlmSettings
from agent.speech.grammar import ahead, continuation, settled_json
from agent.speech.protocols import ChatMessage
from agent.speech.weights import PACKAGED, WeightsError, packaged_llm
from agent.speech.worker import PAUSE, CpuTurns, ModelWorker, Pause, StopFlag, Urgency


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


FREE_STRING_TOKENS = 60  # a spoken sentence or two; longer fails the schema's maxLength
READ_TOKENS = 16  # prompt tokens read in one CPU turn: 0.2 to 0.4 s on 2 cores (BENCHMARKS.md)


class LlamaLlm:
    def __init__(
        self, settings: LlamaSettings, models_dir: Path, turns: CpuTurns | None = None
    ) -> None:
        from llama_cpp import Llama

        self._settings = settings
        self._llm: Any = Llama(
            model_path=str(gguf_path(settings, models_dir)),
            n_ctx=settings.n_ctx,
            n_threads=settings.threads,
            n_gpu_layers=settings.gpu_layers,
            verbose=False,
        )
        if settings.state_cache_mb:
            self._llm.set_cache(_state_cache(settings.state_cache_mb << 20))
            # Also what create_completion calls when a completion runs to its end.
            self._llm.save_state = lambda: _slim_state(self._llm)  # type: ignore[method-assign]
        # On a GPU the model's work leaves the CPU to the other models.
        on_cpu = turns if settings.gpu_layers == 0 else None
        self._worker = ModelWorker("llama", Urgency.DECISION, on_cpu)
        self._formatter = _chat_formatter(self._llm)

    def _tokens(
        self, messages: Sequence[ChatMessage], stop: StopFlag, **extra: Any
    ) -> Iterator[str | Pause]:
        if self._formatter is not None:
            yield from self._read(self._prompt(messages))
        options: dict[str, Any] = {
            "temperature": self._settings.temperature,
            "max_tokens": self._settings.max_tokens,
        }
        stream = self._llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            stream=True,
            **(options | extra),
        )
        try:
            for part in stream:
                if stop.is_set:
                    break
                delta: dict[str, Any] = part["choices"][0].get("delta", {})
                text = delta.get("content")
                if text:
                    yield text
        finally:
            self._remember()

    def _remember(self) -> None:
        """Saves the model's state in the state cache, if there is one (on the worker thread).

        llama-cpp-python saves only after a completion ran to its end; a choice
        stops as soon as it is settled, and a warm-up after its first token.
        """
        cache = self._llm.cache
        if cache is None or not self._llm.n_tokens:
            return
        key = tuple(self._llm.input_ids[: self._llm.n_tokens].tolist())
        if key not in cache.cache_state:  # a completion that ran to its end saved it already
            cache[key] = self._llm.save_state()

    def stream_reply(
        self, messages: Sequence[ChatMessage], stop: StopFlag, *, background: bool = False
    ) -> AsyncGenerator[str, None]:
        urgency = Urgency.BACKGROUND if background else None
        return self._worker.stream(lambda: self._tokens(messages, stop), stop, urgency=urgency)

    async def choose(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], stop: StopFlag
    ) -> str:
        """One JSON object under ``schema``: a grammar makes any other token impossible.

        Greedy, so the same words lead to the same choice. Where the schema
        allows (see :mod:`agent.speech.grammar`), the fixed opening goes into
        the prompt and the answer ends as soon as only one ending is left.
        """
        key = json.dumps(schema, sort_keys=True)
        rest = _continuation(key) if self._formatter is not None else None

        def written() -> Iterator[str | Pause]:
            if stop.is_set:  # before the prompt is evaluated, which takes longest
                yield ""
                return
            if rest is None:
                text = ""
                pieces = self._tokens(messages, stop, grammar=_grammar(key), temperature=0.0)
            else:
                text = rest.opening
                pieces = self._continue(messages, rest.opening, rest.grammar, schema, stop)
            try:
                for piece in pieces:
                    if isinstance(piece, Pause):
                        yield piece
                        continue
                    text += piece
                    if (whole := settled_json(text, schema)) is not None:
                        text = whole
                        break
                    yield PAUSE  # each token in its own turn
            finally:
                self._remember()
            yield text

        return "".join([t async for t in self._worker.stream(written, stop)])

    def _continue(
        self,
        messages: Sequence[ChatMessage],
        opening: str,
        grammar: str,
        schema: dict[str, Any],
        stop: StopFlag,
    ) -> Iterator[str | Pause]:
        from llama_cpp.llama_grammar import LlamaGrammar

        prompt = self._prompt(messages)
        yield from self._read(prompt + self._plain(opening))
        text = opening
        step = ahead(text, schema)
        if step is None:
            constrained = LlamaGrammar.from_string(grammar, verbose=False)
            for piece in self._complete(
                prompt + self._plain(opening), stop, {"grammar": constrained}
            ):
                text += piece
                yield piece
                if (step := ahead(text, schema)) is not None:
                    break
        if step is None:
            return
        # What the schema forces goes into the prompt: one pass for all its tokens.
        text += step.text
        yield step.text
        if step.grammar is not None:
            rest = LlamaGrammar.from_string(step.grammar, verbose=False)
            yield from self._complete(prompt + self._plain(text), stop, {"grammar": rest})
            return
        # The string's words without the grammar: it costs most there, and a
        # quote or line end is all that can end a JSON string here.
        free = {"stop": ['"', "\n"], "max_tokens": FREE_STRING_TOKENS}
        yield from self._complete(prompt + self._plain(text), stop, free)
        yield step.closing

    def _prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The chat's tokens as create_chat_completion makes them, so the two share a cache."""
        assert self._formatter is not None
        chat = self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        return list(
            self._llm.tokenize(chat.prompt.encode(), add_bos=not chat.added_special, special=True)
        )

    def _read(self, prompt: list[int]) -> Iterator[Pause]:
        """Reads a long ``prompt`` :data:`READ_TOKENS` at a time, up to its last few tokens.

        A completion reads the whole prompt at its start, in one go, and more
        urgent work of the other models (a transcript, the agent's words) would
        wait for all of it; between these parts it takes its turn. The
        completion then finds them in the model's memory and reads the rest in
        one batch (short prompts, such as a caller's line read after the call
        was read ahead, are left to it whole: small batches read more slowly).
        A saved state is restored first, as a completion does.
        """
        llm = self._llm
        common = llm.longest_token_prefix
        if len(prompt) - common(llm._input_ids.tolist(), prompt) <= 2 * READ_TOKENS:
            return
        if llm.cache is not None:
            try:
                saved = llm.cache[prompt]
            except KeyError:
                saved = None
            if saved is not None and common(saved.input_ids.tolist(), prompt) > common(
                llm._input_ids.tolist(), prompt
            ):
                llm.load_state(saved)
        llm.n_tokens = common(llm._input_ids.tolist(), prompt[:-1])
        while len(prompt) - llm.n_tokens > 2 * READ_TOKENS:
            llm.eval(prompt[llm.n_tokens : llm.n_tokens + READ_TOKENS])
            yield PAUSE

    def _plain(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def _complete(
        self, prompt: list[int], stop: StopFlag, options: dict[str, Any]
    ) -> Iterator[str]:
        defaults = {"temperature": 0.0, "max_tokens": self._settings.max_tokens, "stream": True}
        for part in self._llm.create_completion(prompt, **(defaults | options)):
            if stop.is_set:
                break
            text = part["choices"][0].get("text")
            if text:
                yield str(text)

    async def warm_up(self, system_prompt: str) -> None:
        """Evaluates the system prompt once so the first call finds it cached."""
        async for _ in self.stream_reply(
            [ChatMessage("system", system_prompt), ChatMessage("user", "Hello?")],
            StopFlag(),
            background=True,
        ):
            pass


def _slim_state(llm: Any) -> Any:
    """The model's state as ``Llama.save_state`` makes it, without its copy of the logits.

    ``save_state`` first copies the model's whole logits buffer (batch x
    vocabulary floats: about 300 MB with Qwen's 151,936 tokens): 35 to 270 ms
    on 2 cores for every save, on the way to every decision, and memory the
    state cache does not count against its capacity. Without ``logits_all``
    nothing reads those rows back: sampling happens inside llama.cpp, and a
    restored state is always followed by evaluating at least one token. So a
    one-value placeholder is kept instead (it broadcasts when the state is
    loaded), and what the cache counts, the KV state, is what it holds.
    """
    import ctypes

    import llama_cpp
    import numpy as np
    from llama_cpp.llama import LlamaState

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_get_size(ctx)
    buffer = (ctypes.c_uint8 * int(size))()
    written = int(llama_cpp.llama_state_get_data(ctx, buffer, size))
    if written > int(size):
        raise RuntimeError("llama.cpp wrote more state than it said it would")
    return LlamaState(
        scores=np.zeros((1, 1), dtype=np.single),
        input_ids=llm.input_ids.copy(),
        n_tokens=llm.n_tokens,
        llama_state=ctypes.string_at(buffer, written),
        llama_state_size=written,
        seed=llm._seed,
    )


def _state_cache(capacity_bytes: int) -> Any:
    """llama-cpp-python's RAM cache of model states (each saved by :func:`_slim_state`)."""
    from llama_cpp.llama_cache import LlamaRAMCache

    return LlamaRAMCache(capacity_bytes=capacity_bytes)


def _chat_formatter(llm: Any) -> Any:
    """The formatter create_chat_completion uses with this model's own template, if it does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if llm.chat_format != "chat_template.default" or llm.chat_handler is not None or not template:
        return None
    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )


@lru_cache(maxsize=32)
def _continuation(schema_json: str) -> Any:
    return continuation(json.loads(schema_json))


@lru_cache(maxsize=32)
def _grammar(schema_json: str) -> Any:
    # A call's schema is the same every turn: its grammar is built once.
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


class OpenAiLlm:
    """A chat-completions endpoint (llama.cpp's server on a GPU box, for example)."""

    def __init__(self, settings: OpenAiLlmSettings) -> None:
        self._settings = settings
        self._worker = ModelWorker("llm-http")

    def _tokens(
        self, messages: Sequence[ChatMessage], stop: StopFlag, **extra: Any
    ) -> Iterator[str]:
        s = self._settings
        body = json.dumps(
            {
                "model": s.model,
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "temperature": s.temperature,
                "max_tokens": s.max_tokens,
                "stream": True,
            }
            | extra
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
        self, messages: Sequence[ChatMessage], stop: StopFlag, *, background: bool = False
    ) -> AsyncGenerator[str, None]:
        urgency = Urgency.BACKGROUND if background else None
        return self._worker.stream(lambda: self._tokens(messages, stop), stop, urgency=urgency)

    async def choose(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], stop: StopFlag
    ) -> str:
        """One JSON object under ``schema``, asked for with ``response_format``."""
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "action", "schema": schema, "strict": True},
        }
        tokens = self._worker.stream(
            lambda: self._tokens(messages, stop, response_format=response_format, temperature=0.0),
            stop,
        )
        return "".join([t async for t in tokens])

    async def warm_up(self, system_prompt: str) -> None:
        return None
