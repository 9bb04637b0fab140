"""The demo store: sends its abandoned checkouts, and later its orders, as signed webhooks.

It speaks to Cartline exactly as a merchant's own system would, through the
signed generic webhook (docs/intake.md): each event is signed with the intake
secret and a timestamp, and Cartline answers only once the delivery is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from agent.demo.customers import DemoCustomer
from agent.errors import CartlineError

CONSENT_TEXT = "I agree to one automated call about my cart at the number above."
SMS_CONSENT_TEXT = "Text me the link to my cart. Reply STOP to opt out."


class ShopError(CartlineError):
    """Cartline refused one of the demo store's webhooks."""


def checkout_event(
    customer: DemoCustomer, abandoned_at: dt.datetime, campaign: str
) -> dict[str, Any]:
    """The generic webhook event of ``customer``'s abandoned checkout."""
    captured = (abandoned_at - dt.timedelta(minutes=1)).isoformat()
    consents = []
    if customer.call_consent:
        consents.append(_consent("call", CONSENT_TEXT, captured))
    if customer.sms_consent:
        consents.append(_consent("sms", SMS_CONSENT_TEXT, captured))
    return {
        "id": f"demo-checkout-{customer.key}",
        "type": "checkout",
        "data": {
            "id": f"demo-{customer.key}",
            "phone": customer.phone,
            "email": f"{customer.key}@customers.example",
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "address": {"country": "US", "region": customer.region, "city": customer.city},
            "items": [
                {"title": title, "quantity": qty, "unit_price": price}
                for title, qty, price in customer.items
            ],
            "total": str(customer.total),
            "currency": "USD",
            "checkout_url": f"https://shop.example/checkouts/demo-{customer.key}/recover?key=demo",
            "abandoned_at": abandoned_at.isoformat(),
            "campaign": campaign,
            "consents": consents,
        },
    }


def _consent(channel: str, text: str, captured: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "granted": True,
        "text_version": f"demo-{channel}-v1",
        "text": text,
        "captured_at": captured,
        "source": "demo-checkout-form",
    }


def order_event(customer: DemoCustomer, at: dt.datetime) -> dict[str, Any]:
    """The order that completes ``customer``'s checkout."""
    return {
        "id": f"demo-order-{customer.key}",
        "type": "order",
        "data": {
            "id": f"order-{customer.key}",
            "checkout_id": f"demo-{customer.key}",
            "phone": customer.phone,
            "total": str(customer.total),
            "currency": "USD",
            "created_at": at.isoformat(),
        },
    }


class DemoShop:
    """Posts the demo store's events to Cartline's generic webhook."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.url = f"{base_url}/webhooks/generic"
        self.secret = secret.encode()

    async def send(self, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        ts = str(int(time.time()))
        sig = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Cartline-Timestamp": ts,
            "X-Cartline-Signature": f"v1={sig}",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=body, headers=headers) as resp,
        ):
            if resp.status != 200:
                raise ShopError(f"the webhook was refused: HTTP {resp.status} {await resp.text()}")
