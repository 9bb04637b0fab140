"""The OpenAI-compatible LLM backend against a local streaming HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.config import OpenAiLlmSettings
from agent.speech.llama import OpenAiLlm
from agent.speech.protocols import ChatMessage
from agent.speech.worker import StopFlag

TOKENS = ["Sure", ",", " I", " can", " help", "."]


class Handler(BaseHTTPRequestHandler):
    requests: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), **body}
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for token in TOKENS:
            chunk = {"choices": [{"delta": {"content": token}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


async def test_streams_tokens_from_the_endpoint(server: str) -> None:
    llm = OpenAiLlm(OpenAiLlmSettings(kind="openai", url=server, model="qwen", api_key="k-123"))
    got = [t async for t in llm.stream_reply([ChatMessage("user", "hi")], StopFlag())]
    assert got == TOKENS
    request = Handler.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer k-123"
    assert request["model"] == "qwen" and request["stream"] is True
    assert request["messages"] == [{"role": "user", "content": "hi"}]


async def test_choose_asks_for_the_schema_and_joins_the_answer(server: str) -> None:
    llm = OpenAiLlm(OpenAiLlmSettings(kind="openai", url=server, model="qwen"))
    schema = {"type": "object", "properties": {"action": {"const": "end_call"}}}
    got = await llm.choose([ChatMessage("user", "bye")], schema, StopFlag())
    assert got == "".join(TOKENS)
    request = Handler.requests[-1]
    assert request["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "action", "schema": schema, "strict": True},
    }
    assert request["temperature"] == 0.0 and request["stream"] is True
