"""What intake hands to the store: checkouts, orders and consents, whatever their source.

Every source (Shopify, WooCommerce, the generic webhook, CSV, the API) turns its
payloads into these plain records; nothing past intake knows which shop sent what.
Times are timezone-aware UTC; money is :class:`~decimal.Decimal` in the currency given.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


class Channel(enum.StrEnum):
    """How Cartline may reach a customer; a consent is given for one channel."""

    CALL = "call"
    SMS = "sms"


@dataclass(frozen=True)
class Address:
    """Where a customer lives, as far as the calling window needs it."""

    country: str | None = None  # ISO 3166-1 alpha-2, upper case ("US")
    region: str | None = None  # state or province code, upper case ("FL")
    postal_code: str | None = None
    city: str | None = None


@dataclass(frozen=True)
class Consent:
    """One consent (or its withdrawal) as captured: what, which wording, when, where."""

    channel: Channel
    granted: bool
    text_version: str
    captured_at: datetime
    source: str  # where it was captured: "shopify-checkout", "csv", "api", ...
    text: str | None = None


@dataclass(frozen=True)
class Customer:
    """A shopper as a source describes them; ``phone`` is raw until normalised."""

    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    address: Address | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class LineItem:
    title: str
    quantity: int
    unit_price: Decimal
    sku: str | None = None


@dataclass(frozen=True)
class CheckoutRecord:
    """An abandoned (or since completed) checkout, keyed by ``(source, external_id)``."""

    source: str
    external_id: str
    customer: Customer
    total: Decimal
    currency: str  # ISO 4217, upper case
    abandoned_at: datetime
    items: tuple[LineItem, ...] = ()
    checkout_url: str | None = None
    completed: bool = False
    consents: tuple[Consent, ...] = ()
    campaign: str | None = None  # None: the store's default checkout campaign


@dataclass(frozen=True)
class OrderRecord:
    """A paid order; ``checkout_external_id`` links it to the checkout it came from."""

    source: str
    external_id: str
    customer: Customer
    total: Decimal
    currency: str
    created_at: datetime
    checkout_external_id: str | None = None


IntakeRecord = CheckoutRecord | OrderRecord


@dataclass(frozen=True)
class Delivery:
    """One verified webhook delivery: its id (for idempotency) and what it carried."""

    source: str
    delivery_id: str
    topic: str
    records: tuple[IntakeRecord, ...] = field(default=())


def _plain(value: Any) -> Any:
    # Walks the records' own attributes: dataclasses.asdict deep-copies, at twice the cost.
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return {k: _plain(v) for k, v in vars(value).items()}


def records_to_json(records: tuple[IntakeRecord, ...]) -> list[dict[str, Any]]:
    """The records as plain JSON values (for the intake inbox), read back by records_from_json."""
    out = []
    for r in records:
        item = _plain(r)
        item["kind"] = "checkout" if isinstance(r, CheckoutRecord) else "order"
        out.append(item)
    return out


def _customer(d: dict[str, Any]) -> Customer:
    address = d.get("address")
    return Customer(**{**d, "address": Address(**address) if address else None})


def records_from_json(items: list[dict[str, Any]]) -> tuple[IntakeRecord, ...]:
    out: list[IntakeRecord] = []
    for item in items:
        d = dict(item)
        kind = d.pop("kind")
        d["customer"] = _customer(d["customer"])
        d["total"] = Decimal(d["total"])
        if kind == "order":
            d["created_at"] = datetime.fromisoformat(d["created_at"])
            out.append(OrderRecord(**d))
            continue
        d["abandoned_at"] = datetime.fromisoformat(d["abandoned_at"])
        d["items"] = tuple(
            LineItem(**{**i, "unit_price": Decimal(i["unit_price"])}) for i in d["items"]
        )
        d["consents"] = tuple(
            Consent(
                **{
                    **c,
                    "channel": Channel(c["channel"]),
                    "captured_at": datetime.fromisoformat(c["captured_at"]),
                }
            )
            for c in d["consents"]
        )
        out.append(CheckoutRecord(**d))
    return tuple(out)
