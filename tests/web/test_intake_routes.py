"""Webhooks and the intake API over real HTTP, into a real SQLite store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from agent.campaigns.inbox import Inbox
from agent.campaigns.intake import Intake
from agent.campaigns.scheduler import Scheduler
from agent.campaigns.settings import SchedulerSettings
from agent.config import Settings, parse_settings
from agent.store.db import Database
from agent.store.tables import CallJob, Checkout
from agent.web.app import make_web_app
from tests.campaigns.helpers import Clock
from tests.campaigns.test_scheduler import FakePlacer

DATA = Path(__file__).parent.parent / "campaigns" / "data"
SECRET = "shpss_test_secret"


class Served:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.inbox = Inbox(db, Intake(db, settings, Clock()))
        self.scheduler = Scheduler(db, SchedulerSettings(), settings.campaigns, FakePlacer())
        self.ready = True
        self.db = db
        self.settings = settings
        self.keys = None


Client = tuple[TestClient[Any, Any], Database, Served]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = parse_settings({"intake": {"shopify_secret": SECRET, "api_token": "api-token-1"}})
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate()
    served = Served(db, settings)
    async with TestClient(TestServer(make_web_app(served))) as c:
        yield c, db, served
    db.close()


def _signed(body: bytes, delivery: str = "d-1", topic: str = "checkouts/create") -> dict[str, str]:
    sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": sig,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": delivery,
        "Content-Type": "application/json",
    }


async def test_signed_shopify_checkout_is_stored_once(
    client: Client,
) -> None:
    c, db, served = client
    body = (DATA / "shopify_checkout.json").read_bytes()
    first = await c.post("/webhooks/shopify", data=body, headers=_signed(body))
    assert first.status == 200, await first.text()
    assert await first.json() == {"accepted": True, "duplicate": False, "records": 1}
    again = await c.post("/webhooks/shopify", data=body, headers=_signed(body))
    assert (await again.json())["duplicate"] is True
    applied = await served.inbox.apply_pending()
    assert (applied.checkouts, applied.jobs_scheduled) == (1, 1)
    assert len(db.call(lambda s: s.exec(select(Checkout)).all())) == 1
    assert len(db.call(lambda s: s.exec(select(CallJob)).all())) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-Shopify-Topic": "checkouts/create", "X-Shopify-Webhook-Id": "x"}, "missing_signature"),
        (
            {
                "X-Shopify-Hmac-Sha256": base64.b64encode(b"0" * 32).decode(),
                "X-Shopify-Topic": "checkouts/create",
                "X-Shopify-Webhook-Id": "x",
            },
            "bad_signature",
        ),
    ],
)
async def test_unsigned_or_wrongly_signed_deliveries_are_refused(
    client: Client, headers: dict[str, str], code: str
) -> None:
    c, db, served = client
    body = (DATA / "shopify_checkout.json").read_bytes()
    resp = await c.post("/webhooks/shopify", data=body, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == code
    assert db.call(lambda s: s.exec(select(Checkout)).all()) == []


async def test_malformed_json_is_a_400_without_customer_data(
    client: Client,
) -> None:
    c, _, _ = client
    body = b'{"id": 1, "email": "maria@example.com", "phone": "+12015550123", '
    resp = await c.post("/webhooks/shopify", data=body, headers=_signed(body))
    assert resp.status == 400
    text = await resp.text()
    assert "maria" not in text and "5550123" not in text


async def test_disabled_source_is_404(client: Client) -> None:
    c, _, _ = client
    resp = await c.post("/webhooks/woocommerce", data=b"{}")
    assert resp.status == 404
    assert (await resp.json())["error"] == "source_disabled"


async def test_api_needs_its_token_and_accepts_generic_events(
    client: Client,
) -> None:
    c, db, served = client
    event = json.loads((DATA / "generic_checkout.json").read_text())
    denied = await c.post("/api/v1/events", json=event)
    assert denied.status == 401
    ok = await c.post("/api/v1/events", json=event, headers={"Authorization": "Bearer api-token-1"})
    assert ok.status == 200, await ok.text()
    assert (await ok.json())["records"] == 1
    await served.inbox.apply_pending()
    assert len(db.call(lambda s: s.exec(select(Checkout)).all())) == 1


async def test_health_and_readiness(client: Client) -> None:
    c, _, _ = client
    assert (await c.get("/healthz")).status == 200
    ready = await c.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["free_slots"] == 2


async def test_api_body_that_is_not_json_is_a_400(
    client: Client,
) -> None:
    c, _, _ = client
    for body in (b"\xff\xfe not utf-8", b"{not json"):
        resp = await c.post(
            "/api/v1/events", data=body, headers={"Authorization": "Bearer api-token-1"}
        )
        assert resp.status == 400
        assert (await resp.json())["error"] == "malformed"


async def test_database_down_is_a_503_so_the_store_delivers_again() -> None:
    settings = parse_settings({"intake": {"shopify_secret": SECRET}})
    db = Database("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    try:
        async with TestClient(TestServer(make_web_app(Served(db, settings)))) as c:
            body = (DATA / "shopify_checkout.json").read_bytes()
            resp = await c.post("/webhooks/shopify", data=body, headers=_signed(body))
            assert resp.status == 503
            assert (await resp.json())["error"] == "storage_unavailable"
    finally:
        db.close()
