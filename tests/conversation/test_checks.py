"""Checks of the model's free answers: amounts, percentages, codes, promises, product details,
links, length."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.campaigns.settings import MerchantSettings
from agent.conversation.checks import check_answer
from agent.conversation.facts import CallFacts, CustomerFacts
from agent.conversation.script import OfferSettings, ScriptSettings, TopicSettings

FACTS = CallFacts(
    ScriptSettings(
        topics=TopicSettings(shipping="Shipping is $4.99, or free shipping over $50."),
        offers=(
            OfferSettings(name="ten", code="TEN10", percent=Decimal(10)),
            OfferSettings(name="five", code="FIVE5", amount=Decimal(5), min_total=Decimal(40)),
        ),
    ),
    MerchantSettings(name="Acme"),
    CustomerFacts.from_checkout(
        currency="USD",
        items=[
            {"title": "Tent", "quantity": 1, "unit_price": "120.00"},
            {"title": "Mug", "quantity": 2, "unit_price": "9.50"},
        ],
        total="1,139.00".replace(",", ""),
    ),
)


@pytest.mark.parametrize(
    "text",
    [
        "The tent is 120 dollars and the mugs are $9.50 each.",
        "Two mugs come to 19 dollars.",
        "Your total is $1,139.00.",
        "Shipping is 4.99 dollars, and free shipping over $50.",
        "There is 10 percent off available.",
        "Orders over 40 dollars can save 5 dollars.",
        "Yes, the tent is still in your cart.",
        "I'm Ava, calling for Acme.",
        "",
    ],
)
def test_answers_within_the_facts_pass(text: str) -> None:
    assert check_answer(text, FACTS) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Your total is 99 dollars.", "amount"),
        ("It's only $15 today.", "amount"),
        ("That comes to 42.50.", "amount"),
        ("You get 25% off.", "percent"),
        ("You get twenty percent off.", "percent"),
        ("Use SAVE50 at checkout.", "code"),
        ("The code is welcome to save.", "code"),
        ("Use TEN10 for ten percent off.", "code"),
        ("I guarantee it arrives Friday.", "promise"),
        ("I promise you'll love it.", "promise"),
        ("It's risk-free.", "promise"),
        ("Yes, the tent comes in green.", "detail"),
        ("The shoes come in black, white, and red.", "detail"),
        ("It comes in three sizes.", "detail"),
        ("The mug is available in two colors.", "detail"),
        ("Yes, it's in stock.", "detail"),
        ("Go to www.acme.example to finish.", "link"),
        ("Visit https://acme.example/c.", "link"),
        ("It's at acme dot com.", "link"),
        ("Yes. Sure. Of course.", "length"),
        (" ".join(["word"] * 40), "length"),
    ],
)
def test_answers_beyond_the_facts_fail(text: str, kind: str) -> None:
    assert kind in [p.kind for p in check_answer(text, FACTS)]


def test_free_shipping_only_when_the_merchant_says_so() -> None:
    plain = FACTS.script.model_copy(update={"topics": TopicSettings(shipping="Shipping is $4.99.")})
    facts = CallFacts(plain, FACTS.merchant, FACTS.customer)
    for text in (
        "We have free shipping.",
        "Yes, shipping is free for this order.",
        "Delivery's free.",
        "It ships free.",
        "Shipping comes at no extra cost.",
    ):
        assert [p.kind for p in check_answer(text, facts)] == ["promise"], text
    assert check_answer("We have free shipping over $50.", FACTS) == []
    assert check_answer("Yes, shipping is free over $50.", FACTS) == []
    assert check_answer("Shipping is 4.99 dollars.", facts) == []


def test_a_colour_the_cart_names_may_be_said() -> None:
    customer = CustomerFacts.from_checkout(
        currency="USD", items=[{"title": "Black Trail Shoes", "quantity": 1}]
    )
    facts = CallFacts(FACTS.script, FACTS.merchant, customer)
    assert check_answer("Your black trail shoes are still in your cart.", facts) == []
    assert [p.detail for p in check_answer("They also come in white.", facts)] == ["white"]
