"""Opt-out phrases and keys, voicemail greetings and the disclosure: plain rules, many phrasings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.campaigns.settings import MerchantSettings
from agent.conversation.facts import CallFacts, CustomerFacts
from agent.conversation.rules import (
    disclosure_first,
    is_opt_out,
    is_opt_out_key,
    sounds_like_voicemail_greeting,
)
from agent.conversation.script import DisclosureSettings, ScriptSettings

OPT_OUTS = [
    "Stop calling me.",
    "stop calling",
    "Please stop calling this number",
    "STOP",
    "Stop.",
    "just stop please",
    "Take me off your list.",
    "take me off your calling list please",
    "Can you take me off the list?",
    "remove my number",
    "Remove my number from your list.",
    "please remove me from your list",
    "Delete my number.",
    "Don't call me again.",
    "Do not call me again",
    "don't call me",
    "Don't call me, I'll call you.",
    "Don't ever call this number again!",
    "Never call me again.",
    "Please never call here again",
    "do not call",
    "Put me on your do-not-call list.",
    "Add me to the do not call list",
    "unsubscribe",
    "I want to unsubscribe.",
    "Unsubscribe me please.",
    "opt out",
    "I'd like to opt out.",
    "Opt me out.",
    "I'm not interested, stop calling.",
    "I'm not interested stop calling",
    "not interested please stop calling me",
    "No thanks. Don't call me again.",
    "no stop calling me",
    "I said stop calling!",
    "I already told you to stop calling me",
    "I don't want you to call me again.",
    "I don\u2019t want any more calls.",
    "No more calls please.",
    "Can you not call me anymore?",
    "I'd rather you didn't call again.",
    "Quit calling me.",
    "Stop contacting me",
    "stop bothering me",
    "Lose my number.",
    "How do I unsubscribe?",
    "I didn't order anything, stop calling me",
    "That's not me, take me off your list.",
    "I never said that, but stop calling me anyway.",
    # Other ways of contact than a call, and not wanting to hear from the merchant at all.
    "Please don't contact me anymore.",
    "Don't contact me.",
    "Never contact me again.",
    "Don't ring me again",
    "Do not text or call me again.",
    "Don't text me again.",
    "I never want to hear from your company again.",
    "I don't want to hear from you again.",
    "I don't want to hear from you.",
    "I do not wish to be contacted.",
    "I don't want to be called again.",
]

NOT_OPT_OUTS = [
    "I didn't say stop calling.",
    "I did not say stop calling me",
    "Don't take me off the list.",
    "Please don't remove my number.",
    "Please don't remove me from your list",
    "I don't want to unsubscribe.",
    "I never asked you to stop calling.",
    "You don't have to take me off your list.",
    "No need to remove my number.",
    "I'm not saying stop calling me, just call later.",
    "Don't stop calling me, I like the reminders.",
    "I didn\u2019t ask to opt out",
    "Can you call me back tomorrow?",
    "Call me back at 3.",
    "Yes, this is Sam.",
    "Who is this?",
    "What's the total?",
    "Can you send me the link?",
    "I stopped by the store yesterday.",
    "Stop, what was that code again?",
    "Don't call me before five.",
    "Don't call or text me before noon.",
    "Don't call me at work, call me at home.",
    "Don't text me the link, email it.",
    "I don't want to be called at work.",
    "I don't want to hear from you about this till Friday.",
    "I'm not interested.",
    "Is there a list of what's in my cart?",
    "My phone number changed.",
    "Sorry, I was calling my dog.",
    "",
]


@pytest.mark.parametrize("text", OPT_OUTS)
def test_opt_out_phrases_are_caught(text: str) -> None:
    assert is_opt_out(text)


@pytest.mark.parametrize("text", NOT_OPT_OUTS)
def test_other_lines_are_not_opt_outs(text: str) -> None:
    assert not is_opt_out(text)


def test_opt_out_key_is_the_campaigns() -> None:
    assert is_opt_out_key("9", ScriptSettings())
    assert not is_opt_out_key("1", ScriptSettings())
    assert is_opt_out_key("#", ScriptSettings(opt_out_key="#"))
    assert not is_opt_out_key("9", ScriptSettings(opt_out_key="#"))


VOICEMAIL = [
    "Hi, you've reached Sam. Please leave a message after the tone.",
    "The person you are calling is not available.",
    "The number you have dialed is not available. At the tone, please record your message.",
    "Welcome to the voicemail of",
    "Your call has been forwarded to an automatic voice message system.",
    "Sorry I can't take your call right now.",
    "The mailbox is full.",
    "Please leave your name and number and I'll get back to you.",
    "after the beep",
]
PEOPLE = [
    "Hello?",
    "Yes, this is Sam speaking.",
    "Who is this?",
    "Hi, what's this about?",
    "I'm busy right now, can you make it quick?",
    "Sorry, can you repeat that?",
]


@pytest.mark.parametrize("text", VOICEMAIL)
def test_voicemail_greetings_are_recognised(text: str) -> None:
    assert sounds_like_voicemail_greeting(text)


@pytest.mark.parametrize("text", PEOPLE)
def test_people_are_not_voicemail(text: str) -> None:
    assert not sounds_like_voicemail_greeting(text)


def facts(script: ScriptSettings) -> CallFacts:
    return CallFacts(
        script,
        MerchantSettings(name="Acme Outdoors", phone="+1 555 0100"),
        CustomerFacts(first_name="Dana", total=Decimal("80.00")),
    )


def test_the_disclosure_comes_first_then_the_greeting() -> None:
    script = ScriptSettings(greeting="Hi {first_name}, do you have a minute?")
    first = disclosure_first(script, None, facts(script))
    assert first == (
        "Hi, this is Ava, an automated assistant calling for Acme Outdoors. "
        "This call may be recorded. Hi Dana, do you have a minute?"
    )


def test_the_disclosure_follows_the_region() -> None:
    script = ScriptSettings(
        disclosure=DisclosureSettings(
            default="This is {agent_name}, an automated assistant for {merchant}.",
            regions={
                "US": "US: {merchant} automated call, may be recorded.",
                "US-CA": "California: {merchant} automated call, recorded.",
            },
        ),
        greeting="Hello.",
    )
    f = facts(script)
    assert disclosure_first(script, "US-CA", f).startswith("California: Acme Outdoors")
    assert disclosure_first(script, "us-ny", f).startswith("US: Acme Outdoors")
    assert disclosure_first(script, "GB", f).startswith("This is Ava, an automated assistant")
    assert disclosure_first(script, None, f).endswith("Hello.")
