"""How long the dialogue policy's constrained decision takes with the configured LLM.

Runs typical customer lines through the policy's prompt and action grammar, the
way a call does: the warm-up (while the greeting plays) evaluates the system
prompt and greeting; each decision then finds them in llama.cpp's cache and
evaluates only the caller's words before writing its action. For
comparison, each line is also answered without the grammar (free text, same
token budget). ``json_tokens`` counts the tokens of the action as written; the
model samples fewer, since the schema decides the rest. Wall time moves with
whatever else the machine runs; CPU time (all of the process's threads) less, so
both are printed: on an idle machine, wall time is about CPU time divided by
``speech.llm.threads``. The last line is one JSON object.

    scripts/bench-decisions [--rounds 2] [--config config.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.campaigns.settings import MerchantSettings
from agent.config import LlamaSettings, load_settings
from agent.conversation.facts import CustomerFacts
from agent.conversation.policy import DialoguePolicy
from agent.conversation.script import OfferSettings, ScriptSettings, TopicSettings
from agent.speech.llama import LlamaLlm
from agent.speech.protocols import ChatMessage
from agent.speech.weights import prepare_llm
from agent.speech.worker import StopFlag

LINES = [
    "Who is this?",
    "I already bought it.",
    "Can you send me the link?",
    "I'm busy, call me tomorrow at 3.",
    "It's a bit expensive.",
    "How much is shipping?",
]


def policy(llm: LlamaLlm) -> DialoguePolicy:
    return DialoguePolicy(
        ScriptSettings(
            topics=TopicSettings(shipping="Shipping is 4.99 dollars."),
            offers=(OfferSettings(name="ten", code="TEN10", percent=Decimal(10)),),
        ),
        MerchantSettings(name="Acme Outdoors"),
        CustomerFacts.from_checkout(
            currency="USD",
            first_name="Dana",
            items=[{"title": "Trail Tent", "quantity": 1, "unit_price": "120.00"}],
            total="120.00",
            checkout_url="https://acme.example/c",
        ),
        ("first_name", "items", "total", "checkout_url"),
        llm,
        tz=ZoneInfo("America/New_York"),
        now=lambda: dt.datetime.now(dt.UTC),
    )


def tokens(llm: LlamaLlm, text: str) -> int:
    return len(llm._llm.tokenize(text.encode(), add_bos=False, special=False))


async def run(rounds: int, settings: LlamaSettings, models_dir: Path) -> dict[str, Any]:
    prepare_llm(models_dir)
    llm = LlamaLlm(settings, models_dir)
    p = policy(llm)
    started, cpu = time.perf_counter(), time.process_time()
    await p.warm_up(StopFlag())  # what a call does while its greeting plays
    warm_up_s, warm_up_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    history = [ChatMessage("assistant", p.greeting())]
    first = [ChatMessage("system", p.system_prompt()), *history]
    rows: list[dict[str, Any]] = []
    for round_ in range(rounds):
        for line in LINES:
            messages = [*first, ChatMessage("user", line)]
            started, cpu = time.perf_counter(), time.process_time()
            written = await llm.choose(messages, p.schema, StopFlag())
            seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            free = "".join([t async for t in llm.stream_reply(messages, StopFlag())])
            free_s, free_cpu_s = time.perf_counter() - started, time.process_time() - cpu
            row = {
                "round": round_,
                "line": line,
                "action": json.loads(written)["action"],
                "decision_s": round(seconds, 2),
                "decision_cpu_s": round(cpu_s, 2),
                "json_tokens": tokens(llm, written),
                "free_s": round(free_s, 2),
                "free_cpu_s": round(free_cpu_s, 2),
                "free_tokens": tokens(llm, free),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {
        "system_prompt_tokens": tokens(llm, p.system_prompt()),
        "threads": settings.threads,
        "warm_up_s": round(warm_up_s, 2),
        "warm_up_cpu_s": round(warm_up_cpu_s, 2),
        "decision_s_median": statistics.median(r["decision_s"] for r in rows),
        "decision_cpu_s_median": statistics.median(r["decision_cpu_s"] for r in rows),
        "json_tokens_median": statistics.median(r["json_tokens"] for r in rows),
        "decision_cpu_s_per_json_token": _per(rows, "decision_cpu_s", "json_tokens"),
        "free_cpu_s_per_token": _per(rows, "free_cpu_s", "free_tokens"),
        "json_tokens_per_s": round(1 / _per(rows, "decision_s", "json_tokens"), 2),
        "free_tokens_per_s": round(1 / _per(rows, "free_s", "free_tokens"), 2),
    }


def _per(rows: list[dict[str, Any]], seconds: str, count: str) -> float:
    total_s = float(sum(r[seconds] for r in rows))
    count_all = int(sum(r[count] for r in rows))
    return round(total_s / max(1, count_all), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args()
    speech = load_settings(args.config).speech
    if not isinstance(speech.llm, LlamaSettings):
        raise SystemExit("speech.llm is not an in-process llama.cpp model")
    print(json.dumps(asyncio.run(run(args.rounds, speech.llm, speech.models_dir))))


if __name__ == "__main__":
    main()
