"""The dialogue model's instructions: short, and built only from what the call may share.

The part common to every call of a campaign comes first and the call's facts
last, and nothing in the prompt changes between turns, so llama.cpp evaluates
it once per call and each turn only adds the new lines. A customer field the
campaign does not allow was already dropped from :class:`CallFacts`; nothing
here reads anything else.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.conversation.actions import (
    ActionModel,
    AlreadyPurchased,
    AnswerQuestion,
    EndCall,
    NotInterested,
    OfferDiscount,
    OptOut,
    ScheduleCallback,
    SendCheckoutLink,
    TransferToPerson,
    WrongPerson,
    action_name,
)
from agent.conversation.facts import CallFacts, money

# When the model should pick each action, in a few words (the small model reads them all).
WHEN: dict[type[ActionModel], str] = {
    AnswerQuestion: 'a question you can answer from the facts; "say" is one short sentence',
    # Not "wants the cart": "what cart?" got the link.
    SendCheckoutLink: "the shopper asks for the link or to buy",
    OfferDiscount: "hesitates over the price",
    ScheduleCallback: 'asks to be called later; "when" is the time in their words',
    TransferToPerson: "wants to talk to a person",
    # "Changed my mind" is no purchase: a wrong "purchased" credits a sale that never happened.
    AlreadyPurchased: "says they already bought or ordered it",
    WrongPerson: "says they are not the shopper, or the wrong number",
    NotInterested: "declines or changed their mind",
    OptOut: "asks not to be called again",
    EndCall: "says goodbye",
}


def system_prompt(facts: CallFacts, actions: Sequence[type[ActionModel]]) -> str:
    """The model's instructions for one call."""
    s, c = facts.script, facts.customer
    lines = [
        f"You are {s.agent_name}, an automated phone assistant for {facts.merchant.name}. "
        "You called a shopper who left items in the online cart.",
        "Reply with one JSON action for the shopper's last words:",
        *(f"- {action_name(a)}: {WHEN[a]}" for a in actions),
        "Only the shopper may get the link. Never invent prices, codes, links or promises.",
        "Facts:",
    ]
    name = " ".join(n for n in (c.first_name, c.last_name) if n)
    if name:
        lines.append(f"Shopper: {name}")
    if c.city:
        lines.append(f"City: {c.city}")
    if s.topics.cart_items and c.items:
        cart = ", ".join(
            f"{i.quantity} x {i.title}"
            + (f" ({money(i.unit_price)} {c.currency_word} each)" if i.unit_price else "")
            for i in c.items
        )
        lines.append(f"Cart: {cart}")
    if s.topics.totals and c.total is not None:
        lines.append(f"Total: {money(c.total)} {c.currency_word}")
    if s.topics.shipping:
        lines.append(f"Shipping: {s.topics.shipping}")
    if s.topics.returns:
        lines.append(f"Returns: {s.topics.returns}")
    offers = facts.eligible_offers()
    if offers:
        described = ", ".join(f"{o.name} ({o.discount_text(c.currency_word)})" for o in offers)
        lines.append(f"Offers: {described}")
    return "\n".join(lines)


__all__ = ["WHEN", "system_prompt"]
