"""The dialogue policy with the real default model (Qwen2.5-Coder-1.5B Q4_K_M) and its grammar.

Slow on a small CPU (a few seconds a decision): a handful of lines a customer
says most often, each of which must lead to its action.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import llama_cpp
import pytest
from llama_cpp.llama_grammar import json_schema_to_gbnf

from agent.campaigns.settings import MerchantSettings
from agent.config import LlamaSettings
from agent.conversation.actions import parse_action
from agent.conversation.facts import CustomerFacts
from agent.conversation.policy import DialoguePolicy, ScheduleCall
from agent.conversation.script import OfferSettings, ScriptSettings, TopicSettings
from agent.speech.grammar import continuation
from agent.speech.llama import LlamaLlm
from agent.speech.protocols import ChatMessage
from agent.speech.weights import prepare_llm
from agent.speech.worker import StopFlag

MODELS = Path(__file__).resolve().parents[2] / "models"
NEW_YORK = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 11, 25, 19, 20, tzinfo=dt.UTC)  # Wednesday, 14:20 in New York


@pytest.fixture(scope="module")
def llm() -> Iterator[LlamaLlm]:
    prepare_llm(MODELS)
    model = LlamaLlm(LlamaSettings(), MODELS)
    yield model
    model._worker.close()


def policy(llm: LlamaLlm) -> DialoguePolicy:
    script = ScriptSettings(
        topics=TopicSettings(shipping="Shipping is 4.99 dollars."),
        offers=(OfferSettings(name="ten", code="TEN10", percent=Decimal(10)),),
    )
    customer = CustomerFacts.from_checkout(
        currency="USD",
        first_name="Dana",
        items=[{"title": "Trail Tent", "quantity": 1, "unit_price": "120.00"}],
        total="120.00",
        checkout_url="https://acme.example/checkouts/c0ffee",
    )
    return DialoguePolicy(
        script,
        MerchantSettings(name="Acme Outdoors"),
        customer,
        ("first_name", "items", "total", "checkout_url"),
        llm,
        tz=NEW_YORK,
        now=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("said", "action"),
    [
        ("I already bought it.", "already_purchased"),
        ("Yeah, I finished the order on my phone this morning.", "already_purchased"),
        ("I changed my mind, I don't need a tent anymore.", "not_interested"),
        ("Can you send me the link?", "send_checkout_link"),
        ("I'm busy, call me tomorrow at 3.", "schedule_callback"),
        ("Who is this?", "answer_question"),
    ],
)
async def test_the_model_picks_the_action(llm: LlamaLlm, said: str, action: str) -> None:
    p = policy(llm)
    history = [ChatMessage("assistant", p.greeting())]
    messages = [ChatMessage("system", p.system_prompt()), *history, ChatMessage("user", said)]
    written = await llm.choose(messages, p.schema, StopFlag())
    chosen = parse_action(written)
    assert chosen is not None, written  # the grammar allows nothing else
    assert chosen.action == action, written
    plan = p.plan(chosen, said)
    if action == "answer_question":
        assert plan.problems == () and plan.say, written  # spoken as the model wrote it
    if action == "schedule_callback":
        assert ScheduleCall(dt.datetime(2026, 11, 26, 15, tzinfo=NEW_YORK)) in plan.effects


async def test_a_set_stop_flag_ends_the_decision_early(llm: LlamaLlm) -> None:
    p = policy(llm)
    stop = StopFlag()
    stop.set()
    messages = [ChatMessage("system", p.system_prompt()), ChatMessage("user", "Who is this?")]
    assert parse_action(await llm.choose(messages, p.schema, stop)) is None


async def test_a_choice_after_the_forced_text_is_made_under_its_own_grammar(
    llm: LlamaLlm,
) -> None:
    # Two offers: after "offer" the schema forces `_discount", "offer": ` and the
    # model still picks one of the names (grammar.ahead's grammar for the rest).
    script = ScriptSettings(
        offers=(
            OfferSettings(name="ten", code="TEN10", percent=Decimal(10)),
            OfferSettings(name="five", code="FIVE5", amount=Decimal(5)),
        )
    )
    customer = CustomerFacts.from_checkout(currency="USD", first_name="Dana", total="120.00")
    p = DialoguePolicy(
        script,
        MerchantSettings(name="Acme Outdoors"),
        customer,
        ("first_name", "total"),
        llm,
        tz=NEW_YORK,
        now=lambda: NOW,
    )
    messages = [
        ChatMessage("system", p.system_prompt()),
        ChatMessage("assistant", p.greeting()),
        ChatMessage("user", "Hmm, it's a bit expensive for me."),
    ]
    written = await llm.choose(messages, p.schema, StopFlag())
    chosen = parse_action(written)
    assert chosen is not None, written
    assert chosen.action == "offer_discount", written
    assert json.loads(written)["offer"] in ("ten", "five")


async def test_reading_ahead_leaves_only_the_callers_words(llm: LlamaLlm) -> None:
    p = policy(llm)
    history = [
        ChatMessage("assistant", p.greeting()),
        ChatMessage("user", "Who is this?"),
        ChatMessage("assistant", "Okay. This is Ava, calling for Acme Outdoors."),
    ]
    await p.warm_up(StopFlag(), history)  # what a call does while those words play
    read = llm._llm.input_ids[: llm._llm.n_tokens].tolist()
    said = "And how much is shipping?"
    messages = [ChatMessage("system", p.system_prompt()), *history, ChatMessage("user", said)]
    assert llm._formatter is not None
    chat = llm._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
    prompt = llm._llm.tokenize(chat.prompt.encode(), add_bos=not chat.added_special, special=True)
    shared = next((i for i, (a, b) in enumerate(zip(read, prompt, strict=False)) if a != b), 0)
    words = len(llm._llm.tokenize(said.encode(), add_bos=False, special=False))
    # Left for the decision: the caller's words and the chat markup around them.
    assert len(prompt) - shared <= words + 8, (len(prompt), shared, words)
    written = await llm.choose(messages, p.schema, StopFlag())
    assert parse_action(written) is not None


def test_llama_cpp_parses_both_grammars(llm: LlamaLlm) -> None:
    schema = policy(llm).schema
    rest = continuation(schema)
    assert rest is not None
    for grammar in (rest.grammar, json_schema_to_gbnf(json.dumps(schema))):
        sampler = llama_cpp.llama_sampler_init_grammar(
            llm._llm._model.vocab, grammar.encode(), b"root"
        )
        assert sampler, grammar  # NULL when llama.cpp cannot parse it
        llama_cpp.llama_sampler_free(sampler)
