"""Shopify and WooCommerce payloads to records, reading typed fields that name their path.

Shop payloads are large and loosely typed; we read the few fields we need and tolerate
the rest. A wrong field raises :class:`PayloadError` with its path
("line_items[2].price: should be a non-negative amount"), never its value. Signatures,
headers and topics are :mod:`agent.campaigns.webhooks`' business; this module sees only
decoded JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

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

log = logging.getLogger(__name__)

_TRUE = frozenset({"yes", "y", "true", "1", "on", "granted"})
_FALSE = frozenset({"no", "n", "false", "0", "off", "withdrawn"})
# Default wording version for a call consent collected by the merchant's checkout field.
CHECKOUT_CONSENT_VERSION = "checkout-v1"
_WOO_CONSENT_KEYS = ((Channel.CALL, "cartline_call_consent"), (Channel.SMS, "cartline_sms_consent"))
# WooCommerce statuses of an order nobody has paid for yet: the checkout was left.
_WOO_ABANDONED = frozenset({"pending", "checkout-draft", "failed", "on-hold"})
_WOO_PAID = frozenset({"processing", "completed"})


class PayloadError(ValueError):
    """A field is missing or of the wrong kind; the message is ``"<path>: <problem>"``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'body'}: {problem}")
        self.path = path


def parse_time(text: str) -> datetime:
    """ISO 8601 to aware UTC; a time without an offset is taken as UTC."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_money(text: str) -> Decimal:
    """A non-negative finite amount ("19.99"); raises ``ValueError`` otherwise."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("not a non-negative amount")
    return amount


def consent_flag(value: object) -> bool | None:
    """yes/true/1 → True, no/false/0 → False; empty or unrecognised → None (no consent given)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def first_text(values: Iterable[str | None]) -> str | None:
    """The first non-empty value."""
    return next((v for v in values if v), None)


class JsonObject:
    """A decoded JSON object and the path that led to it."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise PayloadError(path, "should be an object")
        self._value: dict[str, object] = value
        self._path = path

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def raw(self, key: str) -> object:
        return self._value.get(key)

    def obj(self, key: str) -> JsonObject | None:
        value = self._value.get(key)
        return None if value is None else JsonObject(value, self._at(key))

    def objs(self, key: str) -> list[JsonObject]:
        value = self._value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise PayloadError(self._at(key), "should be a list")
        return [JsonObject(v, f"{self._at(key)}[{i}]") for i, v in enumerate(value)]

    def text(self, key: str) -> str | None:
        value = self._value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise PayloadError(self._at(key), "should be a string")
        return str(value).strip() or None

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise PayloadError(self._at(key), "is missing")
        return value

    def ident(self, key: str) -> str | None:
        """An id, which shops send as a number or a string."""
        return self.text(key)

    def required_ident(self, key: str) -> str:
        return self.required_text(key)

    def required_int(self, key: str) -> int:
        value = self._value.get(key)
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PayloadError(self._at(key), "should be a whole number, 0 or more")
        return value

    def money(self, key: str) -> Decimal | None:
        value = self._value.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise PayloadError(self._at(key), "should be an amount")
        try:
            return parse_money(str(value))
        except ValueError:
            raise PayloadError(self._at(key), "should be a non-negative amount") from None

    def required_money(self, key: str) -> Decimal:
        value = self.money(key)
        if value is None:
            raise PayloadError(self._at(key), "is missing")
        return value

    def time(self, key: str) -> datetime | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError:
            raise PayloadError(self._at(key), "should be an ISO 8601 time") from None

    def required_time(self, key: str) -> datetime:
        value = self.time(key)
        if value is None:
            raise PayloadError(self._at(key), "is missing")
        return value

    def currency(self, *keys: str) -> str:
        """The first of ``keys`` present, as an upper-case 3-letter code."""
        for key in keys:
            value = self.text(key)
            if value is not None:
                if len(value) != 3 or not value.isascii() or not value.isalpha():
                    raise PayloadError(self._at(key), "should be a 3-letter currency code")
                return value.upper()
        raise PayloadError(self._at(keys[0]), "is missing")


# --- Shopify ---------------------------------------------------------------------------------


def _shopify_customer(c: JsonObject) -> Customer:
    customer = c.obj("customer")
    shipping = c.obj("shipping_address")
    billing = c.obj("billing_address")
    people = [p for p in (customer, shipping, billing) if p is not None]
    places = [p for p in (shipping, billing) if p is not None and p.text("country_code")]
    place = places[0] if places else None
    return Customer(
        phone=first_text(
            [c.text("phone")] + [p.text("phone") for p in (shipping, billing, customer) if p]
        ),
        email=c.text("email") or (customer.text("email") if customer else None),
        first_name=first_text(p.text("first_name") for p in people),
        last_name=first_text(p.text("last_name") for p in people),
        address=None
        if place is None
        else Address(
            country=_upper(place.text("country_code")),
            region=_upper(place.text("province_code")),
            postal_code=place.text("zip"),
            city=place.text("city"),
        ),
        external_id=customer.ident("id") if customer else None,
    )


def shopify_checkout(c: JsonObject) -> CheckoutRecord:
    """A ``checkouts/create`` or ``checkouts/update`` payload (see docs/intake.md)."""
    external_id = c.text("token") or c.ident("id")
    if not external_id:
        raise PayloadError("token", "is missing")
    at = c.time("updated_at") or c.required_time("created_at")
    return CheckoutRecord(
        source="shopify",
        external_id=external_id,
        customer=_shopify_customer(c),
        total=c.required_money("total_price"),
        currency=c.currency("currency", "presentment_currency"),
        abandoned_at=at,
        items=tuple(
            LineItem(
                title=li.required_text("title"),
                quantity=li.required_int("quantity"),
                unit_price=li.required_money("price"),
                sku=li.text("sku"),
            )
            for li in c.objs("line_items")
        ),
        checkout_url=c.text("abandoned_checkout_url"),
        completed=c.raw("completed_at") is not None,
        consents=_shopify_consents(c, at),
    )


def _shopify_consents(c: JsonObject, at: datetime) -> tuple[Consent, ...]:
    consents = []
    customer = c.obj("customer")
    sms = customer.obj("sms_marketing_consent") if customer else None
    state = sms.text("state") if sms else None
    if sms is not None and state in ("subscribed", "unsubscribed"):
        consents.append(
            Consent(
                channel=Channel.SMS,
                granted=state == "subscribed",
                text_version=sms.text("opt_in_level") or "shopify",
                captured_at=sms.time("consent_updated_at") or at,
                source="shopify-checkout",
            )
        )
    attributes = {
        a.text("name"): a.raw("value") for a in c.objs("note_attributes") if a.text("name")
    }
    granted = _consent(attributes, "cartline_call_consent", "shopify")
    if granted is not None:
        consents.append(
            Consent(
                channel=Channel.CALL,
                granted=granted,
                text_version=_consent_version(attributes),
                captured_at=at,
                source="shopify-checkout",
            )
        )
    return tuple(consents)


def shopify_order(o: JsonObject) -> OrderRecord:
    """An ``orders/create`` or ``orders/paid`` payload, linked to its checkout by token."""
    return OrderRecord(
        source="shopify",
        external_id=o.required_ident("id"),
        customer=_shopify_customer(o),
        total=o.required_money("total_price"),
        currency=o.currency("currency", "presentment_currency"),
        created_at=o.required_time("created_at"),
        checkout_external_id=o.text("checkout_token") or o.ident("checkout_id"),
    )


# --- WooCommerce -----------------------------------------------------------------------------


def woocommerce_order(o: JsonObject) -> tuple[IntakeRecord, ...]:
    """An order payload: a checkout while unpaid, the completed checkout and an order once paid."""
    status = o.required_text("status")
    if status not in _WOO_ABANDONED and status not in _WOO_PAID:
        return ()  # cancelled, refunded, trash: nothing new to say about this checkout
    order_id = o.required_ident("id")
    billing = o.obj("billing")
    shipping = o.obj("shipping")
    places = [p for p in (shipping, billing) if p is not None and p.text("country")]
    place = places[0] if places else None
    customer_id = o.ident("customer_id")
    customer = Customer(
        phone=first_text(p.text("phone") for p in (billing, shipping) if p),
        email=billing.text("email") if billing else None,
        first_name=first_text(p.text("first_name") for p in (billing, shipping) if p),
        last_name=first_text(p.text("last_name") for p in (billing, shipping) if p),
        address=None
        if place is None
        else Address(
            country=_upper(place.text("country")),
            region=_upper(place.text("state")),
            postal_code=place.text("postcode"),
            city=place.text("city"),
        ),
        external_id=None if customer_id in (None, "0") else customer_id,
    )
    total = o.required_money("total")
    currency = o.currency("currency")
    at = o.time("date_modified_gmt") or o.required_time("date_created_gmt")
    meta = {m.text("key"): m.raw("value") for m in o.objs("meta_data") if m.text("key")}
    consents = tuple(
        Consent(channel, granted, _consent_version(meta), at, "woocommerce-checkout")
        for channel, key in _WOO_CONSENT_KEYS
        if (granted := _consent(meta, key, "woocommerce")) is not None
    )
    checkout = CheckoutRecord(
        source="woocommerce",
        external_id=order_id,
        customer=customer,
        total=total,
        currency=currency,
        abandoned_at=at,
        items=tuple(_woo_item(li) for li in o.objs("line_items")),
        checkout_url=o.text("payment_url"),
        completed=status in _WOO_PAID,
        consents=consents,
    )
    if status in _WOO_ABANDONED:
        return (checkout,)
    order = OrderRecord(
        source="woocommerce",
        external_id=order_id,
        customer=customer,
        total=total,
        currency=currency,
        created_at=o.time("date_paid_gmt") or o.required_time("date_created_gmt"),
        # WooCommerce has no separate checkout: the paid order is the checkout, completed.
        checkout_external_id=order_id,
    )
    return (checkout, order)


def _woo_item(li: JsonObject) -> LineItem:
    quantity = li.required_int("quantity")
    price = li.money("price")
    if price is None and quantity:
        # Stores on older WooCommerce send no unit price, only the line subtotal.
        subtotal = li.required_money("subtotal")
        price = (subtotal / quantity).quantize(subtotal)
    return LineItem(
        title=li.required_text("name"),
        quantity=quantity,
        unit_price=price if price is not None else Decimal(0),
        sku=li.text("sku"),
    )


def _consent(fields: dict[str | None, object], key: str, shop: str) -> bool | None:
    value = fields.get(key)
    flag = consent_flag(value)
    if flag is None and value not in (None, ""):
        # The value may be anything a merchant's checkout field sends: log the key only.
        log.warning("ignored an unrecognised %s value in a %s payload", key, shop)
    return flag


def _consent_version(fields: dict[str | None, object]) -> str:
    version = fields.get("cartline_consent_version")
    text = str(version).strip()[:100] if isinstance(version, str | int) else ""
    return text or CHECKOUT_CONSENT_VERSION


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None
