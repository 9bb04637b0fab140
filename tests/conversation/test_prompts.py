"""The dialogue model's instructions, as the small model reads them."""

from __future__ import annotations

from agent.campaigns.settings import MerchantSettings
from agent.conversation.actions import ACTIONS
from agent.conversation.facts import CallFacts, CustomerFacts
from agent.conversation.prompts import system_prompt
from agent.conversation.script import ScriptSettings


def test_a_change_of_mind_is_a_refusal_not_a_purchase() -> None:
    # The model took "I changed my mind, I don't need it anymore" for already_purchased
    # (scripts/eval-dialogue, not-interested-changed-mind): a sale credited that never was.
    facts = CallFacts(ScriptSettings(), MerchantSettings(name="Acme"), CustomerFacts())
    lines = system_prompt(facts, ACTIONS).splitlines()
    assert "- not_interested: declines or changed their mind" in lines
    assert "- already_purchased: says they already bought or ordered it" in lines


def test_the_link_is_for_the_shopper_who_asks_for_it() -> None:
    # "What cart?" met "wants the link, the cart or to buy" and got the link; a rude
    # "why are you calling me?" met "wrong person or wrong number" (scripts/eval-dialogue).
    facts = CallFacts(ScriptSettings(), MerchantSettings(name="Acme"), CustomerFacts())
    lines = system_prompt(facts, ACTIONS).splitlines()
    assert "- send_checkout_link: the shopper asks for the link or to buy" in lines
    assert "- wrong_person: says they are not the shopper, or the wrong number" in lines
    assert any(line.startswith("Only the shopper may get the link.") for line in lines)
