"""The dialogue policy with a scripted model: rules first, then one plan per action."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from agent.campaigns.settings import MerchantSettings
from agent.conversation.facts import CustomerFacts
from agent.conversation.policy import (
    AddToDoNotCall,
    DialoguePolicy,
    HangUp,
    ScheduleCall,
    SendCheckoutSms,
    Speak,
    Transfer,
    TurnPlan,
)
from agent.conversation.script import OfferSettings, ScriptSettings, TemplateSettings, TopicSettings
from agent.speech.protocols import ChatMessage
from agent.speech.worker import StopFlag
from tests.fakes.speech import FakeLlm

NEW_YORK = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 11, 25, 19, 20, tzinfo=dt.UTC)  # Wednesday, 14:20 in New York
MERCHANT = MerchantSettings(name="Acme Outdoors", phone="+1 555 0100")
SCRIPT = ScriptSettings(
    greeting="Hi {first_name}, you left {item_list} in your cart. Got a minute?",
    topics=TopicSettings(shipping="Shipping is 4.99 dollars."),
    offers=(
        OfferSettings(
            name="ten", code="TEN10", percent=Decimal(10), expiry_text="It's valid for 2 days."
        ),
        OfferSettings(name="big", code="BIG20", amount=Decimal(20), min_total=Decimal(500)),
    ),
    transfer_to="100",
)
CUSTOMER = CustomerFacts.from_checkout(
    currency="USD",
    first_name="Dana",
    last_name="Zebulon",
    city="Reykjavik",
    items=[
        {"title": "Trail Tent", "quantity": 1, "unit_price": "120.00"},
        {"title": "Camp Mug", "quantity": 2, "unit_price": "9.50"},
    ],
    total="139.00",
    checkout_url="https://acme.example/checkouts/c0ffee",
)
ALLOWED = ("first_name", "items", "total", "checkout_url")


def policy(
    *choices: str,
    script: ScriptSettings = SCRIPT,
    customer: CustomerFacts = CUSTOMER,
    allowed: tuple[str, ...] = ALLOWED,
) -> tuple[DialoguePolicy, FakeLlm]:
    llm = FakeLlm(choices=list(choices))
    return (
        DialoguePolicy(
            script, MERCHANT, customer, allowed, llm, tz=NEW_YORK, now=lambda: NOW, region="US"
        ),
        llm,
    )


async def decide(
    p: DialoguePolicy, said: str, history: list[ChatMessage] | None = None
) -> TurnPlan:
    return await p.decide(history or [], said, StopFlag())


def kinds(plan: TurnPlan) -> list[type]:
    return [type(e) for e in plan.effects]


def act(action: str, **fields: str) -> str:
    return json.dumps({"action": action, **fields})


async def test_the_greeting_is_the_disclosure_then_the_script() -> None:
    p, _ = policy()
    assert p.greeting() == (
        "Hi, this is Ava, an automated assistant calling for Acme Outdoors. This call may be "
        "recorded. Hi Dana, you left Trail Tent and 2 x Camp Mug in your cart. Got a minute?"
    )


async def test_an_answer_that_passes_the_checks_is_spoken() -> None:
    p, llm = policy(act("answer_question", say="Your total is 139 dollars."))
    plan = await decide(p, "How much was it again?")
    assert plan.effects == (Speak("Your total is 139 dollars."),)
    assert plan.outcome is None and plan.source == "model" and plan.action == "answer_question"
    messages, schema = llm.choose_requests[0]
    assert messages[0].role == "system" and messages[-1] == ChatMessage(
        "user", "How much was it again?"
    )
    assert schema == p.schema


async def test_send_checkout_link_texts_it_then_says_so() -> None:
    p, _ = policy(act("send_checkout_link"))
    plan = await decide(p, "Can you send me the link?")
    assert kinds(plan) == [SendCheckoutSms, Speak]
    assert plan.say == "I've just sent the link to your checkout by text message."
    assert plan.outcome is None and plan.note.next_step == "link sent"


async def test_offer_discount_speaks_the_configured_offer() -> None:
    p, _ = policy(act("offer_discount", offer="ten"))
    plan = await decide(p, "Hmm, it's a bit expensive.")
    assert plan.say == (
        "I can offer you 10 percent off with the code TEN10. It's valid for 2 days."
    )
    assert plan.note.objection == "price" and plan.outcome is None


async def test_an_offer_the_cart_does_not_qualify_for_is_never_made() -> None:
    p, _ = policy(act("offer_discount", offer="big"))  # needs 500, the cart is 139
    assert "BIG20" not in json.dumps(p.schema) and "big" not in json.dumps(p.schema)
    plan = await decide(p, "Too expensive.")
    assert "BIG20" not in plan.say
    assert plan.say == "Let me send you the link so you can see the details."


async def test_schedule_callback_parses_the_time_in_the_customers_zone() -> None:
    p, _ = policy(act("schedule_callback", when="tomorrow at 3"))
    plan = await decide(p, "I'm driving, call me tomorrow at 3.")
    assert plan.effects == (
        ScheduleCall(dt.datetime(2026, 11, 26, 15, tzinfo=NEW_YORK)),
        Speak("Sure, I'll call you back tomorrow at 3 PM. Goodbye!"),
        HangUp("callback"),
    )
    assert plan.outcome == "callback"


async def test_schedule_callback_without_a_time_asks_for_one() -> None:
    p, _ = policy(act("schedule_callback", when="later"))
    plan = await decide(p, "Call me later.")
    assert plan.effects == (Speak("When would be a good time to call you back?"),)
    assert plan.outcome is None


async def test_transfer_announces_then_transfers() -> None:
    p, _ = policy(act("transfer_to_person"))
    plan = await decide(p, "Can I talk to a real person?")
    assert plan.effects == (
        Speak("Please hold on, I'm connecting you to someone at Acme Outdoors."),
        Transfer("100"),
    )
    assert plan.outcome == "transferred"


@pytest.mark.parametrize(
    ("choice", "said", "outcome", "words"),
    [
        (act("already_purchased"), "I already bought it.", "purchased", "thank you for your order"),
        (act("wrong_person"), "There's no Dana here.", "wrong_person", "wrong number"),
        (act("not_interested", reason="price"), "No, thanks.", "not_interested", "No problem"),
        (act("end_call"), "Okay, bye.", "completed", "Goodbye"),
    ],
)
async def test_ending_actions_speak_then_hang_up(
    choice: str, said: str, outcome: str, words: str
) -> None:
    p, _ = policy(choice)
    plan = await decide(p, said)
    assert kinds(plan) == [Speak, HangUp]
    assert plan.outcome == outcome and words in plan.say
    assert plan.effects[-1] == HangUp(outcome)


async def test_a_shipping_question_gets_the_merchants_line_without_the_model() -> None:
    p, llm = policy(act("offer_discount", offer="ten"))
    plan = await decide(p, "Is shipping free for this order?")
    assert plan.effects == (Speak("Shipping is 4.99 dollars."),)
    assert plan.source == "rule" and plan.action == "answer_question" and plan.outcome is None
    assert llm.choose_requests == []


async def test_a_topic_question_with_no_line_or_more_in_it_goes_to_the_model() -> None:
    p, llm = policy(act("answer_question", say="I don't have that detail."))
    plan = await decide(p, "Can I return it if it doesn't fit?")  # no returns line
    assert plan.source == "model" and len(llm.choose_requests) == 1
    p, llm = policy(act("send_checkout_link"))
    plan = await decide(p, "How much is shipping, and can you text me the link?")
    assert plan.action == "send_checkout_link" and len(llm.choose_requests) == 1


async def test_opting_out_comes_before_a_topic_question() -> None:
    p, _ = policy()
    plan = await decide(p, "How much is shipping? Actually, just stop calling me.")
    assert plan.outcome == "opted_out"


async def test_not_interested_notes_the_objection() -> None:
    p, _ = policy(act("not_interested", reason="shipping"))
    plan = await decide(p, "Shipping is too slow for me.")
    assert plan.note.objection == "shipping" and plan.note.intent == "not_interested"
    assert plan.note.customer_said == "Shipping is too slow for me."


async def test_an_opt_out_phrase_needs_no_model_and_writes_dnc_before_speaking() -> None:
    p, llm = policy(act("answer_question", say="Sure."))
    plan = await decide(p, "Please take me off your list.")
    assert llm.choose_requests == []  # the rule decided
    assert plan.source == "rule" and plan.outcome == "opted_out"
    assert kinds(plan) == [AddToDoNotCall, Speak, HangUp]
    assert plan.effects[0] == AddToDoNotCall("phrase")
    assert "won't call you again" in plan.say


async def test_the_models_opt_out_also_writes_dnc_first() -> None:
    p, _ = policy(act("opt_out"))
    plan = await decide(p, "I'd rather not hear from you folks.")
    assert kinds(plan) == [AddToDoNotCall, Speak, HangUp]
    assert plan.effects[0] == AddToDoNotCall("model")


async def test_the_opt_out_key() -> None:
    p, _ = policy()
    plan = p.on_key("9")
    assert plan is not None and kinds(plan) == [AddToDoNotCall, Speak, HangUp]
    assert plan.effects[0] == AddToDoNotCall("key")
    assert p.on_key("1") is None


async def test_a_voicemail_greeting_gets_the_message_or_a_hang_up() -> None:
    p, llm = policy()
    plan = await decide(p, "Hi, you've reached Dana. Leave a message after the tone.")
    assert llm.choose_requests == [] and plan.outcome == "voicemail"
    assert kinds(plan) == [Speak, HangUp] and "Acme Outdoors" in plan.say
    quiet = SCRIPT.model_copy(update={"voicemail": "hang_up"})
    p, _ = policy(script=quiet)
    plan = await decide(p, "The person you are calling is not available.")
    assert plan.effects == (HangUp("voicemail"),)


async def test_voicemail_words_later_in_the_call_go_to_the_model() -> None:
    p, llm = policy(act("answer_question", say="Sure, no problem."))
    history = [ChatMessage("assistant", "Hi."), ChatMessage("user", "Hello?")]
    plan = await decide(p, "Can you leave a message with my wife?", history)
    assert len(llm.choose_requests) == 1 and plan.outcome is None


async def test_the_turn_limit_ends_the_call_politely() -> None:
    p, llm = policy(script=SCRIPT.model_copy(update={"max_turns": 2}))
    history = [ChatMessage("user", "Hi."), ChatMessage("assistant", "Hi!")] * 2
    plan = await decide(p, "What else?", history)
    assert llm.choose_requests == [] and plan.outcome == "completed"
    assert plan.say == "Thank you for your time. Goodbye!"
    plan = await p.decide([], "Hello?", StopFlag(), elapsed_s=SCRIPT.max_call_s)
    assert plan.outcome == "completed"


@pytest.mark.parametrize(
    "say",
    [
        "Your total is 99 dollars.",  # not the cart's
        "You can get 25 percent off today.",  # no such offer
        "Use code SAVE50 at checkout.",  # invented code
        "Use the code TEN10 for ten percent off.",  # real code, but only the offer line gives it
        "We guarantee delivery by Friday.",
        "Shipping is free, so free shipping on this one.",
        "Go to acme.example slash checkout to finish.",
        "Sure. It is great. You will love it. Anything else?",
    ],
)
async def test_a_free_answer_that_fails_a_check_falls_back_to_the_safe_line(say: str) -> None:
    p, _ = policy(act("answer_question", say=say))
    plan = await decide(p, "Tell me more.")
    assert plan.problems
    assert plan.effects == (
        SendCheckoutSms(),
        Speak("Let me send you the link so you can see the details."),
    )


async def test_without_a_link_the_fallback_sends_nothing() -> None:
    p, _ = policy(
        act("answer_question", say="It costs 5 dollars."), allowed=("first_name", "items", "total")
    )
    assert "send_checkout_link" not in json.dumps(p.schema)
    plan = await decide(p, "How much?")
    assert plan.effects == (Speak("I'm sorry, I can't help with that on this call."),)


async def test_what_the_model_writes_outside_the_schema_falls_back() -> None:
    for bad in ["Sure! Sending it now.", act("transfer_to_person"), '{"action": "dance"}']:
        p, _ = policy(bad, script=SCRIPT.model_copy(update={"transfer_to": None}))
        plan = await decide(p, "Hmm.")
        assert plan.say == "Let me send you the link so you can see the details."
        assert plan.outcome is None


async def test_a_field_not_allowed_never_reaches_any_prompt() -> None:
    script = SCRIPT.model_copy(update={"templates": TemplateSettings(goodbye="Bye {first_name}!")})
    p, llm = policy(
        act("answer_question", say="Sure."),
        act("send_checkout_link"),
        act("end_call"),
        script=script,
        allowed=("first_name", "total"),
    )
    await p.warm_up(StopFlag())
    history: list[ChatMessage] = [ChatMessage("assistant", p.greeting())]
    said: list[str] = [p.greeting(), p.reprompt(), p.goodbye()]
    for line in ["Who is this?", "Send me the link.", "Bye."]:
        plan = await decide(p, line, history)
        history += [ChatMessage("user", line), ChatMessage("assistant", plan.say)]
        said.append(plan.say)
    assert len(llm.choose_requests) == 3 and len(llm.requests) == 1
    shown = llm.prompts + "\n".join(said) + p.system_prompt() + json.dumps(p.schema)
    assert "Dana" in shown and "139" in shown  # allowed
    for secret in (
        "Zebulon",
        "Reykjavik",
        "Trail Tent",
        "Camp Mug",
        "120",
        "c0ffee",
        "acme.example",
    ):
        assert secret not in shown
    assert "send_checkout_link" not in json.dumps(p.schema)  # no link shared, none to send


async def test_the_system_prompt_is_the_same_every_turn() -> None:
    p, llm = policy(act("answer_question", say="Sure."), act("end_call"))
    await decide(p, "Hi.")
    await decide(p, "Bye.", [ChatMessage("user", "Hi."), ChatMessage("assistant", "Sure.")])
    first, second = (messages for messages, _ in llm.choose_requests)
    assert first[0] == second[0]
    assert second[1:3] == [ChatMessage("user", "Hi."), ChatMessage("assistant", "Sure.")]


async def test_the_prompt_is_short() -> None:
    p, _ = policy()
    # About four characters a token: the whole prompt stays near 250 tokens.
    assert len(p.system_prompt()) < 1100, len(p.system_prompt())


async def test_warm_up_reads_what_the_first_decision_starts_with() -> None:
    p, llm = policy(act("end_call"), allowed=("first_name",))
    await p.warm_up(StopFlag())
    history = [ChatMessage("assistant", p.greeting())]
    await decide(p, "Hello?", history)
    (warm,) = llm.requests
    decided, _ = llm.choose_requests[0]
    assert decided[: len(warm)] == warm
    assert llm.stopped_early == 1  # one token was enough


ALREADY = (
    "I've already sent the link to your checkout by text message; "
    "you'll find all the details there."
)


async def test_the_link_is_texted_once_a_call() -> None:
    p, _ = policy(act("send_checkout_link"), act("send_checkout_link"))
    first = await decide(p, "Can you send me the link?")
    assert kinds(first) == [SendCheckoutSms, Speak] and not p.link_sent
    p.note_link_sent()  # the reply tells the policy once the text went out
    second = await decide(p, "Send me the link again.")
    assert second.effects == (Speak(ALREADY),)
    assert second.action == "send_checkout_link" and second.outcome is None
    assert second.note.next_step == "continue"


async def test_a_planned_link_not_yet_sent_may_still_be_sent() -> None:
    # A speculative plan is dropped when the caller goes on; a text refused (no consent)
    # went nowhere: neither counts as the call's one text.
    p, _ = policy(act("send_checkout_link"), act("send_checkout_link"))
    await decide(p, "Send me the")
    plan = await decide(p, "Send me the link please.")
    assert kinds(plan) == [SendCheckoutSms, Speak]


async def test_after_the_link_the_fallback_points_to_it_instead_of_texting_again() -> None:
    p, _ = policy(act("answer_question", say="Use code SAVE50."), "not json")
    p.note_link_sent()
    for line in ("Any codes?", "Hmm."):
        plan = await decide(p, line)
        assert plan.effects == (Speak(ALREADY),)


async def test_the_already_sent_line_is_the_scripts_own() -> None:
    templates = TemplateSettings(
        link_already_sent="{first_name}, it's in your texts from {merchant}."
    )
    p, _ = policy(
        act("send_checkout_link"), script=SCRIPT.model_copy(update={"templates": templates})
    )
    p.note_link_sent()
    plan = await decide(p, "Text it to me.")
    assert plan.say == "Dana, it's in your texts from Acme Outdoors."


ABOUT = (
    "I'm Ava, an automated assistant calling for Acme Outdoors "
    "about the items left in your online cart."
)


async def test_a_rude_why_are_you_calling_is_answered_not_taken_for_a_wrong_number() -> None:
    # The model took this for wrong_person (scripts/eval-dialogue, rude): nothing the caller
    # said bears that out, and they asked why we call: the script's own answer.
    p, llm = policy(act("wrong_person"))
    plan = await decide(p, "Why the hell are you calling me, you stupid robot?")
    assert plan.effects == (Speak(ABOUT),)
    assert plan.action == "answer_question" and plan.source == "rule" and plan.outcome is None
    assert len(llm.choose_requests) == 1


async def test_an_unfounded_wrong_person_gets_a_second_choice_without_it() -> None:
    p, llm = policy(act("wrong_person"), act("not_interested", reason="other"))
    plan = await decide(p, "Ugh, leave me alone.")
    assert plan.outcome == "not_interested"
    (_, first), (_, second) = llm.choose_requests
    assert first == p.schema and "wrong_person" in json.dumps(first)
    assert "wrong_person" not in json.dumps(second) and "not_interested" in json.dumps(second)


@pytest.mark.parametrize(
    "said",
    [
        "There's no Dana here, you have the wrong number.",
        "This is Robert, Dana's husband. She's not home right now.",
    ],
)
async def test_a_caller_who_says_so_is_the_wrong_person_at_the_models_word(said: str) -> None:
    p, llm = policy(act("wrong_person"))
    plan = await decide(p, said)
    assert plan.outcome == "wrong_person" and plan.source == "model"
    assert len(llm.choose_requests) == 1


@pytest.mark.parametrize(
    "said",
    [
        "Hello? Who? I don't understand, what cart? I don't use computers much.",
        "It's Dani actually, not Dana. Anyway, what's this about?",
    ],
)
async def test_asking_what_the_call_is_about_gets_an_answer_not_the_link(said: str) -> None:
    p, _ = policy(act("send_checkout_link"))
    plan = await decide(p, said)
    assert plan.effects == (Speak(ABOUT),) and plan.action == "answer_question"


async def test_asking_who_calls_and_for_the_link_gets_the_link() -> None:
    p, _ = policy(act("send_checkout_link"))
    plan = await decide(p, "Who is this? Oh, right, text me the link.")
    assert kinds(plan) == [SendCheckoutSms, Speak]


async def test_the_link_goes_only_to_the_shopper() -> None:
    spouse = "This is Robert, Dana's husband. She's not home right now."
    p, _ = policy(act("send_checkout_link"))
    plan = await decide(p, spouse)
    assert plan.effects[-1] == HangUp("wrong_person") and SendCheckoutSms() not in plan.effects
    assert plan.action == "wrong_person" and plan.source == "rule"
    # Said earlier in the call, it still holds; until the shopper comes to the phone.
    history = [ChatMessage("user", spouse), ChatMessage("assistant", "Oh, I see.")]
    p, _ = policy(act("send_checkout_link"), act("send_checkout_link"))
    plan = await decide(p, "Sure, send it to me then.", history)
    assert plan.outcome == "wrong_person"
    later = [*history, ChatMessage("user", "Hi, this is Dana."), ChatMessage("assistant", "Hi!")]
    plan = await decide(p, "Send me the link.", later)
    assert kinds(plan) == [SendCheckoutSms, Speak]


async def test_the_fallback_texts_no_one_but_the_shopper() -> None:
    p, _ = policy(act("answer_question", say="Use code SAVE50."))
    plan = await decide(p, "I'm her son, she's out. Any discounts?")
    assert plan.effects == (Speak("I'm sorry, I can't help with that on this call."),)
