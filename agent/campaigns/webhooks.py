"""Webhook deliveries in, verified records out: Shopify, WooCommerce and Cartline's own format.

Each ``parse_*`` checks the signature over the raw body before reading a byte of it, then
turns the payload into :mod:`agent.campaigns.records`. A delivery we cannot trust or read
raises :class:`WebhookRejected`; a trusted delivery of a topic we do not use comes back as a
:class:`Delivery` with no records, so the shop sees a 2xx and does not retry it for days.
Rejection messages name headers and field paths, never values: they end up in logs and in
responses to whoever sent the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import ValidationError

from agent.campaigns import generic
from agent.campaigns.payload import (
    JsonObject,
    PayloadError,
    shopify_checkout,
    shopify_order,
    woocommerce_order,
)
from agent.campaigns.records import Delivery, IntakeRecord
from agent.errors import CartlineError

RejectCode = Literal[
    "missing_signature", "bad_signature", "stale", "malformed", "unsupported_topic"
]

_STATUS: dict[RejectCode, int] = {
    "missing_signature": 401,
    "bad_signature": 401,
    "stale": 401,
    "malformed": 400,
    "unsupported_topic": 400,
}


class WebhookRejected(CartlineError):
    """A delivery that must not be processed; answer it with ``status``.

    ``code`` is stable (``missing_signature``, ``bad_signature``, ``stale``: 401;
    ``malformed``, ``unsupported_topic``: 400). The parsers here never raise
    ``unsupported_topic`` (a topic we ignore is accepted with no records); it is for a
    route that receives something it has no parser for. The message names headers and
    field paths only, so it is safe to log and to send back.
    """

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code: RejectCode = code
        self.status: int = _STATUS[code]


SHOPIFY_CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update"})
SHOPIFY_ORDER_TOPICS = frozenset({"orders/create", "orders/paid"})
WOOCOMMERCE_TOPICS = frozenset({"order.created", "order.updated"})
_WOO_PING = re.compile(rb"webhook_id=(\d{1,20})")
_MAX_EVENTS = 1000


def header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]`` ignoring case (a plain dict from a test, or aiohttp's headers)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value.strip() if value is not None else None


def parse_shopify(headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
    """Verify and read one Shopify webhook delivery.

    ``checkouts/create`` and ``checkouts/update`` give a :class:`CheckoutRecord`;
    ``orders/create`` and ``orders/paid`` an :class:`OrderRecord`; other topics no records.
    """
    _check_base64_hmac(headers, "X-Shopify-Hmac-Sha256", body, secret)
    topic = _required_header(headers, "X-Shopify-Topic")
    delivery_id = header(headers, "X-Shopify-Webhook-Id") or header(headers, "X-Shopify-Event-Id")
    if not delivery_id:
        raise WebhookRejected("malformed", "header X-Shopify-Webhook-Id is missing")
    records: tuple[IntakeRecord, ...] = ()
    if topic in SHOPIFY_CHECKOUT_TOPICS:
        records = _read(body, lambda c: (shopify_checkout(c),))
    elif topic in SHOPIFY_ORDER_TOPICS:
        records = _read(body, lambda o: (shopify_order(o),))
    return Delivery(source="shopify", delivery_id=delivery_id, topic=topic, records=records)


def parse_woocommerce(headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
    """Verify and read one WooCommerce webhook delivery (topics ``order.created``/``updated``).

    An unpaid order (pending, checkout-draft, failed, on-hold) is an abandoned checkout; a
    paid one (processing, completed) is an order plus its checkout, completed. The ping
    WooCommerce sends when a webhook is saved (``webhook_id=N``, unsigned) is accepted as
    an empty delivery: it carries nothing, and refusing it would stop the webhook being saved.
    """
    ping = _WOO_PING.fullmatch(body.strip())
    if ping is None or header(headers, "X-WC-Webhook-Signature") is not None:
        _check_base64_hmac(headers, "X-WC-Webhook-Signature", body, secret)
    if ping is not None:
        webhook_id = ping.group(1).decode()
        return Delivery(source="woocommerce", delivery_id=f"ping-{webhook_id}", topic="ping")
    topic = _required_header(headers, "X-WC-Webhook-Topic")
    delivery_id = _required_header(headers, "X-WC-Webhook-Delivery-ID")
    records: tuple[IntakeRecord, ...] = ()
    if topic in WOOCOMMERCE_TOPICS:
        records = _read(body, woocommerce_order)
    return Delivery(source="woocommerce", delivery_id=delivery_id, topic=topic, records=records)


def parse_generic(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: datetime,
    tolerance_s: int = 300,
) -> Delivery:
    """Verify and read one event in Cartline's own format (see docs/intake.md).

    ``X-Cartline-Signature: v1=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>`` (several
    ``v1=`` values, comma-separated, are allowed while a secret is rotated) with the unix
    time in ``X-Cartline-Timestamp``; a timestamp more than ``tolerance_s`` away from
    ``now`` is "stale", so a captured request cannot be replayed later. The event id is
    the delivery id, for idempotency.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    key = _secret_key(secret)
    timestamp = header(headers, "X-Cartline-Timestamp")
    signature = header(headers, "X-Cartline-Signature")
    if not timestamp or not signature:
        raise WebhookRejected(
            "missing_signature",
            "headers X-Cartline-Timestamp and X-Cartline-Signature are required",
        )
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise WebhookRejected("bad_signature", "header X-Cartline-Timestamp is not unix seconds")
    expected = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    offered = [p.strip()[3:].lower() for p in signature.split(",") if p.strip().startswith("v1=")]
    # Compare against every offered value without stopping early, so timing says nothing.
    matches = [hmac.compare_digest(expected, o.encode()) for o in offered]
    if not any(matches):
        raise WebhookRejected(
            "bad_signature", "header X-Cartline-Signature does not match the body"
        )
    if abs(now.timestamp() - int(timestamp)) > tolerance_s:
        raise WebhookRejected("stale", "header X-Cartline-Timestamp is outside the replay window")
    obj = _load_json(body)
    if not isinstance(obj, dict):
        raise WebhookRejected("malformed", "body: should be one event object")
    event, records = _generic_event(obj, "", "generic")
    return Delivery(source="generic", delivery_id=event.id, topic=event.type, records=records)


def parse_generic_payload(obj: object, *, source: str = "generic") -> tuple[IntakeRecord, ...]:
    """Validate one event or a list of events (already decoded JSON) without a signature.

    For callers that authenticate otherwise (the JSON API). Raises
    :class:`WebhookRejected` ("malformed") naming the first bad field paths.
    """
    if isinstance(obj, dict):
        return _generic_event(obj, "", source)[1]
    if not isinstance(obj, list):
        raise WebhookRejected("malformed", "body: should be an event object or a list of them")
    if len(obj) > _MAX_EVENTS:
        raise WebhookRejected("malformed", f"at most {_MAX_EVENTS} events in one request")
    records: list[IntakeRecord] = []
    for index, item in enumerate(obj):
        if not isinstance(item, dict):
            raise WebhookRejected("malformed", f"[{index}]: should be an event object")
        records.extend(_generic_event(item, f"[{index}]", source)[1])
    return tuple(records)


def _generic_event(
    obj: dict[str, object], prefix: str, source: str
) -> tuple[generic.EventIn, tuple[IntakeRecord, ...]]:
    try:
        event = generic.EventIn.model_validate(obj)
    except ValidationError as err:
        raise _rejection(err, prefix) from None
    try:
        return event, generic.event_records(event, source)
    except ValidationError as err:
        raise _rejection(err, f"{prefix}.data" if prefix else "data") from None


def _rejection(err: ValidationError, prefix: str) -> WebhookRejected:
    problems = []
    for e in err.errors(include_url=False):
        path = prefix
        for part in e["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = e["msg"]
        value = e.get("input")
        # Some pydantic messages quote the offending value; say what kind of error instead.
        if (
            isinstance(value, str | int | Decimal)
            and len(str(value)) >= 3
            and str(value) in message
        ):
            message = e["type"].replace("_", " ")
        problems.append(f"{path or 'body'}: {message}")
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return WebhookRejected("malformed", shown + more)


def _secret_key(secret: str) -> bytes:
    # An empty secret would let anyone sign; refuse everything until one is configured.
    if not secret:
        raise WebhookRejected("bad_signature", "no webhook secret is configured for this source")
    return secret.encode()


def _check_base64_hmac(headers: Mapping[str, str], name: str, body: bytes, secret: str) -> None:
    key = _secret_key(secret)
    offered = header(headers, name)
    if not offered:
        raise WebhookRejected("missing_signature", f"header {name} is missing")
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, offered.encode()):
        raise WebhookRejected("bad_signature", f"header {name} does not match the body")


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = header(headers, name)
    if not value:
        raise WebhookRejected("malformed", f"header {name} is missing")
    return value


def _reject_constant(name: str) -> object:
    raise ValueError(name)


def _load_json(body: bytes) -> object:
    try:
        # Decimal keeps prices exact (WooCommerce sends some as JSON numbers).
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise WebhookRejected("malformed", "body: is not valid JSON") from None


def _read(
    body: bytes, convert: Callable[[JsonObject], tuple[IntakeRecord, ...]]
) -> tuple[IntakeRecord, ...]:
    obj = _load_json(body)
    try:
        return convert(JsonObject(obj, ""))
    except PayloadError as err:
        raise WebhookRejected("malformed", str(err)) from None
