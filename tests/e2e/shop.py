"""A pretend Shopify store: signed checkout and order webhooks, built from the sample payloads."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp

DATA = Path(__file__).parent.parent / "campaigns" / "data"
SECRET = "shop-e2e-secret"


def checkout_payload(token: str, phone: str, at: dt.datetime, total: str = "182.50") -> bytes:
    body: dict[str, Any] = json.loads((DATA / "shopify_checkout.json").read_text())
    body.update(
        id=abs(hash(token)) % 10**12,
        token=token,
        phone=phone,
        updated_at=at.isoformat(),
        created_at=at.isoformat(),
        total_price=total,
    )
    return json.dumps(body).encode()


def order_payload(order_id: int, token: str, at: dt.datetime, total: str) -> bytes:
    body: dict[str, Any] = json.loads((DATA / "shopify_order.json").read_text())
    body.update(id=order_id, checkout_token=token, created_at=at.isoformat(), total_price=total)
    return json.dumps(body).encode()


async def deliver(url: str, topic: str, body: bytes) -> dict[str, Any]:
    """POSTs one signed delivery to Cartline's Shopify webhook; returns its JSON answer."""
    sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "X-Shopify-Hmac-Sha256": sig,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/webhooks/shopify", data=body, headers=headers) as resp,
    ):
        answer: dict[str, Any] = await resp.json()
        if resp.status != 200:
            raise AssertionError(f"webhook refused: {resp.status} {answer}")
        return answer
