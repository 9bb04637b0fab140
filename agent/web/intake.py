"""Intake over HTTP: the stores' webhooks and the JSON API for checkouts and orders.

A delivery that fails its signature or cannot be read is refused with a 4xx and
a stable error code; a delivery that is fine but cannot be stored right now (the
database is down) gets a 503, so the store delivers it again and nothing is lost.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from agent.campaigns.inbox import Inbox
from agent.campaigns.records import Delivery
from agent.campaigns.webhooks import (
    WebhookRejected,
    parse_generic,
    parse_generic_payload,
    parse_shopify,
    parse_woocommerce,
)
from agent.web.access import public

log = logging.getLogger(__name__)

INBOX = web.AppKey("inbox", Inbox)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _accept(request: web.Request, delivery: Delivery) -> web.Response:
    try:
        fresh = await request.app[INBOX].put(delivery)
    except SQLAlchemyError as exc:
        log.error("intake could not be stored (%s); the sender will retry", type(exc).__name__)
        return _error(503, "storage_unavailable", "the delivery could not be stored; retry later")
    return web.json_response(
        {"accepted": True, "duplicate": not fresh, "records": len(delivery.records)}
    )


def _secret(request: web.Request, source: str) -> str | None:
    settings = request.app[INBOX].intake.settings.intake
    value = {
        "shopify": settings.shopify_secret,
        "woocommerce": settings.woocommerce_secret,
        "generic": settings.generic_secret,
    }[source]
    return value.get_secret_value() if value else None


@public
async def webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{source}: a signed delivery (Shopify, WooCommerce or the generic format)."""
    source = request.match_info["source"]
    if source not in ("shopify", "woocommerce", "generic"):
        return _error(404, "unknown_source", "no such webhook source")
    secret = _secret(request, source)
    if secret is None:
        return _error(404, "source_disabled", f"the {source} webhook has no secret configured")
    body = await request.read()
    intake = request.app[INBOX].intake
    try:
        delivery: Delivery
        if source == "shopify":
            delivery = parse_shopify(request.headers, body, secret)
        elif source == "woocommerce":
            delivery = parse_woocommerce(request.headers, body, secret)
        else:
            delivery = parse_generic(
                request.headers,
                body,
                secret,
                intake.clock(),
                intake.settings.intake.generic_tolerance_s,
            )
    except WebhookRejected as exc:
        log.info("%s webhook refused: %s", source, exc.code)
        return _error(exc.status, exc.code, str(exc))
    return await _accept(request, delivery)


def _bearer_ok(request: web.Request) -> bool:
    token = request.app[INBOX].intake.settings.intake.api_token
    if token is None:
        return False
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    return hmac.compare_digest(given.encode(), expected.encode())


@public
async def api_records(request: web.Request) -> web.Response:
    """POST /api/v1/events: checkouts and orders in the generic schema, with a bearer token."""
    if not _bearer_ok(request):
        return _error(401, "unauthorized", "a valid API token is needed (Authorization: Bearer)")
    try:
        payload = json.loads(await request.read())
        records = parse_generic_payload(payload, source="api")
    except ValueError:  # not UTF-8, or not JSON
        return _error(400, "malformed", "the body is not JSON")
    except WebhookRejected as exc:
        return _error(exc.status, exc.code, str(exc))
    delivery = Delivery("api", f"api-{uuid.uuid4()}", "events", records)
    return await _accept(request, delivery)


def add_routes(app: web.Application, inbox: Inbox) -> None:
    app[INBOX] = inbox
    app.router.add_post("/webhooks/{source}", webhook)
    app.router.add_post("/api/v1/events", api_records)
