"""The schema of Cartline's own intake format, shared by the generic webhook and the JSON API.

One event is ``{"id": ..., "type": "checkout" | "order", "data": {...}}``; docs/intake.md
describes every field. The models validate only: converting to records is
:func:`event_records`, and turning validation errors into rejections is the caller's job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from agent.campaigns.records import (
    Address,
    Channel,
    CheckoutRecord,
    Consent,
    Customer,
    IntakeRecord,
    LineItem,
    OrderRecord,
)


def _number_to_str(value: object) -> object:
    # Shops number their checkouts; accepting 1234 as "1234" saves every sender a str() call.
    # bool is an int in Python but never an id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _upper(value: str) -> str:
    return value.upper()


def _empty_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


Id = Annotated[str, BeforeValidator(_number_to_str), Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=500)]
OptionalText = Annotated[Text | None, BeforeValidator(_empty_to_none)]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$"), AfterValidator(_upper)]
Country = Annotated[str, Field(pattern=r"^[A-Za-z]{2}$"), AfterValidator(_upper)]
Region = Annotated[str, Field(min_length=1, max_length=10), AfterValidator(_upper)]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Url = Annotated[str, Field(max_length=2000, pattern=r"^https?://")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class AddressIn(_Model):
    country: Annotated[Country | None, BeforeValidator(_empty_to_none)] = None
    region: Annotated[Region | None, BeforeValidator(_empty_to_none)] = None
    postal_code: OptionalText = None
    city: OptionalText = None


class ItemIn(_Model):
    title: Annotated[str, Field(min_length=1, max_length=500)]
    quantity: Annotated[int, Field(ge=1, le=100_000)]
    unit_price: Money
    sku: OptionalText = None


class ConsentIn(_Model):
    channel: Channel
    granted: bool
    text_version: Annotated[str, Field(min_length=1, max_length=100)]
    captured_at: AwareDatetime
    text: Annotated[str | None, Field(max_length=5000)] = None
    source: OptionalText = None  # None: the intake source ("generic", "api")


class CheckoutIn(_Model):
    id: Id
    phone: OptionalText = None
    email: OptionalText = None
    first_name: OptionalText = None
    last_name: OptionalText = None
    customer_id: Annotated[Id | None, BeforeValidator(_empty_to_none)] = None
    address: AddressIn | None = None
    items: Annotated[list[ItemIn], Field(max_length=500)] = []
    total: Money
    currency: Currency
    checkout_url: Annotated[Url | None, BeforeValidator(_empty_to_none)] = None
    abandoned_at: AwareDatetime
    completed: bool = False
    campaign: OptionalText = None
    consents: Annotated[list[ConsentIn], Field(max_length=20)] = []


class OrderIn(_Model):
    id: Id
    checkout_id: Annotated[Id | None, BeforeValidator(_empty_to_none)] = None
    phone: OptionalText = None
    email: OptionalText = None
    first_name: OptionalText = None
    last_name: OptionalText = None
    customer_id: Annotated[Id | None, BeforeValidator(_empty_to_none)] = None
    total: Money
    currency: Currency
    created_at: AwareDatetime


class EventIn(_Model):
    """The envelope; ``data`` is checked against the model its ``type`` names."""

    id: Id
    type: Literal["checkout", "order"]
    data: dict[str, object]


def _customer(data: CheckoutIn | OrderIn, address: AddressIn | None = None) -> Customer:
    return Customer(
        phone=data.phone,
        email=data.email,
        first_name=data.first_name,
        last_name=data.last_name,
        address=None if address is None else Address(**address.model_dump()),
        external_id=data.customer_id,
    )


def checkout_record(data: CheckoutIn, source: str) -> CheckoutRecord:
    return CheckoutRecord(
        source=source,
        external_id=data.id,
        customer=_customer(data, data.address),
        total=data.total,
        currency=data.currency,
        abandoned_at=utc(data.abandoned_at),
        items=tuple(
            LineItem(title=i.title, quantity=i.quantity, unit_price=i.unit_price, sku=i.sku)
            for i in data.items
        ),
        checkout_url=data.checkout_url,
        completed=data.completed,
        consents=tuple(
            Consent(
                channel=c.channel,
                granted=c.granted,
                text_version=c.text_version,
                captured_at=utc(c.captured_at),
                source=c.source or source,
                text=c.text,
            )
            for c in data.consents
        ),
        campaign=data.campaign,
    )


def order_record(data: OrderIn, source: str) -> OrderRecord:
    return OrderRecord(
        source=source,
        external_id=data.id,
        customer=_customer(data),
        total=data.total,
        currency=data.currency,
        created_at=utc(data.created_at),
        checkout_external_id=data.checkout_id,
    )


def event_records(event: EventIn, source: str) -> tuple[IntakeRecord, ...]:
    """Validate ``event.data`` against its type and convert it (raises ``ValidationError``)."""
    if event.type == "checkout":
        return (checkout_record(CheckoutIn.model_validate(event.data), source),)
    return (order_record(OrderIn.model_validate(event.data), source),)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
