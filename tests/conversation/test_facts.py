"""What a call may know, and the lines filled from it."""

from __future__ import annotations

from decimal import Decimal

from agent.campaigns.settings import MerchantSettings
from agent.conversation.facts import CallFacts, CartItem, CustomerFacts, item_list, money
from agent.conversation.script import ScriptSettings

FULL = CustomerFacts.from_checkout(
    currency="EUR",
    first_name="Dana",
    last_name="Zebulon",
    city="Reykjavik",
    items=[{"title": "Tent", "quantity": 1, "unit_price": "120.00"}],
    total="120.00",
    checkout_url="https://shop.example/c/1",
)


def test_only_keeps_the_allowed_fields() -> None:
    kept = FULL.only(("first_name", "total"))
    assert kept.first_name == "Dana" and kept.total == Decimal("120.00")
    assert kept.last_name is None and kept.city is None
    assert kept.items == () and kept.checkout_url is None
    assert kept.currency == "EUR"
    assert FULL.only(()) == CustomerFacts(currency="EUR")


def test_amounts_and_money() -> None:
    facts = CustomerFacts(
        items=(CartItem("Mug", 2, Decimal("9.50")), CartItem("Hat", 1)), total=Decimal(19)
    )
    assert facts.amounts() == {Decimal("9.50"), Decimal(19)}
    assert money(Decimal("19.00")) == "19" and money(Decimal("9.5")) == "9.50"


def test_item_list_names_at_most_three() -> None:
    items = [CartItem(name, 1) for name in ("Tent", "Mug", "Hat", "Map")]
    assert item_list(items[:1]) == "Tent"
    assert item_list([CartItem("Mug", 2), items[0]]) == "2 x Mug and Tent"
    assert item_list(items[:3]) == "Tent, Mug and Hat"
    assert item_list(items) == "Tent, Mug and 2 more items"
    assert item_list([]) == ""


def test_an_unknown_field_fills_in_empty_and_tidily() -> None:
    script = ScriptSettings(greeting="Hi {first_name}, about your cart.")
    facts = CallFacts(script, MerchantSettings(name="Shop"), FULL.only(()))
    assert facts.fill(script.greeting) == "Hi, about your cart."
    assert facts.fill("Call {merchant_phone}.") == "Call Shop."  # no phone: the name
    assert facts.values()["currency"] == "euros"
