"""The dialogue evaluation's scenario file and scoring (scripts/eval_dialogue.py), with no model."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from agent.campaigns.settings import MerchantSettings
from agent.conversation.facts import CallFacts, CustomerFacts
from agent.conversation.policy import (
    AddToDoNotCall,
    CallNote,
    HangUp,
    SendCheckoutSms,
    Speak,
    TurnPlan,
)
from agent.conversation.script import OfferSettings, ScriptSettings, TopicSettings
from tests.fakes.speech import FakeLlm

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "eval_dialogue.py"
CATEGORIES = {
    "who_is_this",
    "busy_callback",
    "already_bought",
    "wrong_number",
    "price_objection",
    "no_offer_invented",
    "asks_discount",
    "asks_person",
    "rude",
    "silent",
    "speaks_over_agent",
    "opt_out_early",
    "opt_out_late",
    "opt_out_dtmf",
    "voicemail",
    "off_topic",
    "asks_link",
    "shipping_returns",
    "product_details",
    "not_interested",
    "yes_then_hangs_up",
    "confused_elderly",
    "different_name",
}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_dialogue", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


ev = _load()
NOTE = CallNote("", "test")


def facts(offers: tuple[OfferSettings, ...] = ()) -> CallFacts:
    return CallFacts(
        ScriptSettings(topics=TopicSettings(shipping="Shipping is 4.99 dollars."), offers=offers),
        MerchantSettings(name="Acme Outdoors"),
        CustomerFacts.from_checkout(
            currency="USD",
            items=[{"title": "Trail Tent", "quantity": 1, "unit_price": "120.00"}],
            total="120.00",
            checkout_url="https://acme.example/c",
        ),
    )


def test_the_scenarios_load_and_cover_every_category() -> None:
    scenarios = ev.load_scenarios()
    assert len(scenarios) >= 30
    assert {c for s in scenarios for c in s.categories} >= CATEGORIES
    assert len({s.name for s in scenarios}) == len(scenarios)


def test_every_expectation_names_a_real_action_or_outcome() -> None:
    actions = {
        "answer_question",
        "send_checkout_link",
        "offer_discount",
        "schedule_callback",
        "transfer_to_person",
        "already_purchased",
        "wrong_person",
        "not_interested",
        "opt_out",
        "end_call",
        "voicemail",
    }
    outcomes = {
        "opted_out",
        "purchased",
        "wrong_person",
        "not_interested",
        "completed",
        "callback",
        "transferred",
        "voicemail",
        ev.OPEN,
        ev.CALLER_HUNG_UP,
    }
    for s in ev.load_scenarios():
        assert set(s.outcome) <= outcomes, s.name
        for line in s.lines:
            assert set(line.expect) <= actions, s.name
        if s.opt_out_by is not None:
            assert "opted_out" in s.outcome and 1 <= s.opt_out_by <= len(s.lines), s.name


def test_the_scenario_file_reads_keys_silence_and_overrides() -> None:
    by_name = {s.name: s for s in ev.load_scenarios()}
    assert by_name["opt-out-by-key"].lines[0].key == "9"
    assert by_name["silent"].lines[0].silence
    assert by_name["yes-then-hangs-up"].lines[-1].hangs_up
    assert by_name["speaks-over-agent"].lines[0].over_agent
    assert by_name["asks-for-person-transfer"].script.transfer_to == "100"
    # A scenario's topic overrides keep the defaults' other fields and the merchant.
    assert by_name["price-objection-with-offer"].script.topics.shipping is not None
    assert by_name["asks-shipping-not-configured"].script.topics.shipping is None
    assert by_name["euro-cart-asks-price"].customer.currency == "EUR"


def test_a_malformed_scenario_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n  - name: broken\n    script: {max_turns: 0}\n    lines: []\n")
    with pytest.raises(ValueError, match="scenario broken"):
        ev.load_scenarios(path)


def test_opt_out_compliance_wants_the_entry_before_any_words() -> None:
    good = TurnPlan(
        "opt_out",
        "rule",
        (AddToDoNotCall("phrase"), Speak("Understood."), HangUp("opted_out")),
        NOTE,
        "opted_out",
    )
    late = TurnPlan(
        "opt_out",
        "rule",
        (Speak("Understood."), AddToDoNotCall("phrase"), HangUp("opted_out")),
        NOTE,
        "opted_out",
    )
    no_hang_up = TurnPlan("opt_out", "rule", (AddToDoNotCall("key"), Speak("OK.")), NOTE)
    assert ev.opt_out_compliant(good)
    assert not ev.opt_out_compliant(late)
    assert not ev.opt_out_compliant(no_hang_up)
    assert not ev.opt_out_compliant(None)


def test_violations_count_invented_facts_and_forbidden_words() -> None:
    f = facts()
    assert ev.violations("Your tent is 120 dollars and shipping is 4.99 dollars.", f) == []
    found = ev.violations("Use code SAVE20 for 20 percent off, free shipping!", f)
    assert {v.split(":")[0] for v in found} == {"code", "percent", "promise"}
    assert ev.violations("It's at acme.example slash c.", f)
    assert ev.violations("The tent is 99 dollars.", f) == ["amount: 99 dollars"]
    assert ev.violations("It will be sunny tomorrow.", f, [r"\bsunny\b"]) == ["forbidden: sunny"]


def test_the_offer_line_may_give_the_code_of_an_offer_the_cart_qualifies_for() -> None:
    ten = OfferSettings(name="ten", code="TEN10", percent=Decimal(10))
    line = "I can offer you 10 percent off with the code TEN10."
    assert ev.violations(line, facts((ten,))) == []
    too_big = OfferSettings(name="ten", code="TEN10", percent=Decimal(10), min_total=Decimal(500))
    assert ev.violations(line, facts((too_big,))) == ["code: TEN10"]


def _turn(number: int, plan: TurnPlan | None, line: object = None, delay: float = 0.5) -> object:
    return ev.Turn(number, line or ev.Line(text="hi"), plan, delay, plan.say if plan else "")


def test_score_and_summary_of_hand_made_runs() -> None:
    by_name = {s.name: s for s in ev.load_scenarios()}
    opt_out = by_name["opt-out-late"]  # the customer opts out at turn 3
    answer = TurnPlan("answer_question", "model", (Speak("This is Ava."),), NOTE)
    honoured = TurnPlan(
        "opt_out",
        "rule",
        (AddToDoNotCall("phrase"), Speak("Understood."), HangUp("opted_out")),
        NOTE,
        "opted_out",
    )
    good = ev.score(
        opt_out, "Hi.", [_turn(1, answer), _turn(2, answer), _turn(3, honoured, delay=0.002)]
    )
    assert good.passed and good.opt_out_ok and good.opt_out_delay_s == 0.002
    assert (good.actions_right, good.actions_expected) == (3, 3)

    link = by_name["asks-for-link"]
    sent = TurnPlan(
        "send_checkout_link", "model", (SendCheckoutSms(), Speak("Sent: 50% off!")), NOTE
    )
    bad = ev.score(link, "Hi.", [_turn(1, sent)])
    assert not bad.passed
    assert bad.outcome == ev.OPEN and bad.actions_right == 1 and bad.actions_expected == 2
    assert bad.violations == ["turn 1: percent: 50%"]

    missed = ev.score(opt_out, "Hi.", [_turn(1, answer), _turn(2, answer), _turn(3, answer)])
    assert missed.opt_out_ok is False and missed.opt_out_delay_s is None

    figures = ev.summary([good, bad, missed], 12.0)
    assert figures["scenarios"] == 3 and figures["passed"] == 1
    assert figures["outcome_accuracy"] == round(1 / 3, 3)
    assert figures["opt_out_compliance"] == 0.5
    assert figures["opt_out_delay_s_max"] == 0.002
    assert figures["invented_facts"] == 1
    assert figures["action_accuracy"] == round(6 / 8, 3)


def test_the_caller_hanging_up_ends_the_call() -> None:
    hang = ev.Line(text=ev.HANGS_UP, hangs_up=True)
    assert ev.call_outcome([_turn(1, None, hang)]) == ev.CALLER_HUNG_UP
    assert ev.call_outcome([]) == ev.OPEN


def test_a_call_that_texts_the_link_twice_fails() -> None:
    link = next(s for s in ev.load_scenarios() if s.name == "asks-for-link")
    sent = TurnPlan("send_checkout_link", "model", (SendCheckoutSms(), Speak("Sent.")), NOTE)
    bye = TurnPlan("end_call", "model", (Speak("Bye."), HangUp("completed")), NOTE, "completed")
    once = ev.score(link, "Hi.", [_turn(1, sent), _turn(2, bye)])
    twice = ev.score(link, "Hi.", [_turn(1, sent), _turn(2, sent), _turn(3, bye)])
    assert once.passed and once.link_texts == 1
    assert not twice.passed and "link texted 2 times" in twice.failures
    figures = ev.summary([once, twice], 1.0)
    assert figures["link_texts"] == 3 and figures["calls_texting_link_twice"] == 1


async def test_the_run_tells_the_policy_the_link_went_out() -> None:
    # Text mode performs no effect; like a call, it tells the policy a text was sent.
    link = next(s for s in ev.load_scenarios() if s.name == "asks-for-link")
    again = ev.Line(text="Send it again, please.")
    scenario = dataclasses.replace(link, lines=(link.lines[0], again, link.lines[1]))
    choice = json.dumps({"action": "send_checkout_link"})
    llm = FakeLlm(choices=[choice, choice, json.dumps({"action": "end_call"})])
    greeting, turns = await ev.run_scenario(scenario, llm)
    result = ev.score(scenario, greeting, turns)
    assert [ev.texts_link(t.plan) for t in turns] == [True, False, False]
    assert turns[1].said.startswith("I've already sent the link")
    assert result.link_texts == 1 and result.outcome == "completed"
