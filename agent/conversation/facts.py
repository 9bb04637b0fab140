"""What the conversation knows about the customer and the merchant, and the lines filled from it.

Only the customer fields a campaign allows are kept (:meth:`CustomerFacts.only`);
everything the model sees and every template is filled from what is left.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from agent.campaigns.settings import MerchantSettings
from agent.conversation.script import OfferSettings, ScriptSettings

CURRENCY_WORDS = {
    "USD": "dollars",
    "CAD": "Canadian dollars",
    "AUD": "Australian dollars",
    "EUR": "euros",
    "GBP": "pounds",
}
MAX_ITEMS_SPOKEN = 3


@dataclass(frozen=True)
class CartItem:
    title: str
    quantity: int
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class CustomerFacts:
    """The customer's details as the conversation may know them (None: unknown or not shared)."""

    currency: str = "USD"
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    items: tuple[CartItem, ...] = ()
    total: Decimal | None = None
    checkout_url: str | None = None

    @classmethod
    def from_checkout(
        cls,
        *,
        currency: str,
        first_name: str | None = None,
        last_name: str | None = None,
        city: str | None = None,
        items: Sequence[Mapping[str, Any]] = (),
        total: str | Decimal | None = None,
        checkout_url: str | None = None,
    ) -> CustomerFacts:
        """From a call request's fields (items as stored: title, quantity, unit_price)."""
        return cls(
            currency=currency,
            first_name=first_name,
            last_name=last_name,
            city=city,
            items=tuple(
                CartItem(
                    str(i.get("title", "item")),
                    int(i.get("quantity", 1)),
                    _decimal(i.get("unit_price")),
                )
                for i in items
            ),
            total=_decimal(total),
            checkout_url=checkout_url,
        )

    def only(self, allowed: Collection[str]) -> CustomerFacts:
        """These facts with every field not in ``allowed`` forgotten."""
        return replace(
            self,
            first_name=self.first_name if "first_name" in allowed else None,
            last_name=self.last_name if "last_name" in allowed else None,
            city=self.city if "city" in allowed else None,
            items=self.items if "items" in allowed else (),
            total=self.total if "total" in allowed else None,
            checkout_url=self.checkout_url if "checkout_url" in allowed else None,
        )

    @property
    def currency_word(self) -> str:
        return CURRENCY_WORDS.get(self.currency.upper(), self.currency)

    def amounts(self) -> set[Decimal]:
        """Every amount of money the customer's cart justifies saying."""
        found = {i.unit_price for i in self.items if i.unit_price is not None}
        found |= {i.unit_price * i.quantity for i in self.items if i.unit_price is not None}
        if self.total is not None:
            found.add(self.total)
        return found


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money(value: Decimal) -> str:
    """An amount as it is spoken and written: 12.5 -> "12.50", 12 -> "12"."""
    value = value.quantize(Decimal("0.01"))
    return str(value.quantize(Decimal(1))) if value == value.to_integral() else str(value)


def item_list(items: Sequence[CartItem]) -> str:
    """ "a Blue Mug and 2 Red Scarves"-style list of a cart, at most three items named."""
    names = [i.title if i.quantity == 1 else f"{i.quantity} x {i.title}" for i in items]
    if len(names) > MAX_ITEMS_SPOKEN:
        rest = len(names) - MAX_ITEMS_SPOKEN + 1
        names = [*names[: MAX_ITEMS_SPOKEN - 1], f"{rest} more items"]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class CallFacts:
    """Everything one call's lines may be filled from."""

    script: ScriptSettings
    merchant: MerchantSettings
    customer: CustomerFacts

    def values(self) -> dict[str, str]:
        """Placeholder values; a customer field that is unknown fills in empty."""
        m, c, s = self.merchant, self.customer, self.script
        return {
            "merchant": m.name,
            "merchant_phone": m.phone or m.contact,
            "merchant_email": m.email or m.contact,
            "merchant_website": m.website or m.contact,
            "agent_name": s.agent_name,
            "currency": c.currency_word,
            "opt_out_key": s.opt_out_key,
            "shipping_text": s.topics.shipping or "",
            "returns_text": s.topics.returns or "",
            "first_name": c.first_name or "",
            "last_name": c.last_name or "",
            "city": c.city or "",
            "item_list": item_list(c.items),
            "cart_total": money(c.total) if c.total is not None else "",
            "checkout_url": c.checkout_url or "",
        }

    def fill(self, template: str, **extra: str) -> str:
        """``template`` with its placeholders filled (``extra`` for offer and callback values)."""
        return tidy(template.format_map(self.values() | extra))

    def offer_values(self, offer: OfferSettings) -> dict[str, str]:
        return {
            "discount_code": offer.code,
            "discount_text": offer.discount_text(self.customer.currency_word),
            "offer_expiry": offer.expiry_text or "",
        }

    def eligible_offers(self) -> tuple[OfferSettings, ...]:
        return tuple(o for o in self.script.offers if o.applies_to(self.customer.total))


def tidy(text: str) -> str:
    """Repairs what an empty placeholder leaves behind ("Hi , there" -> "Hi, there")."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.!?])", r"\1", text)
    return re.sub(r",([.!?])", r"\1", text)


__all__ = ["CallFacts", "CartItem", "CustomerFacts", "item_list", "money", "tidy"]
