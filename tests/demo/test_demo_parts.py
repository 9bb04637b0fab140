"""The demo's parts without Asterisk: its cast, its settings, its store and its summary."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent.campaigns.generic import CheckoutIn, EventIn, OrderIn
from agent.config import parse_settings
from agent.demo.customers import CUSTOMERS, STORE_TEAM, cast, scenarios
from agent.demo.settings import demo_settings
from agent.demo.shop import DemoShop, checkout_event, order_event
from agent.demo.summary import read_summary
from agent.simulator.scenario import Answer, AwaitReply, Dtmf, Say
from agent.store.db import Database
from agent.store.tables import (
    AttemptStatus,
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Contact,
    Decision,
    DoNotCall,
    JobState,
    Order,
    Outcome,
)

NOW = dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC)


def test_a_dozen_customers_each_with_an_expected_result() -> None:
    assert len(CUSTOMERS) == 12
    assert len({c.key for c in CUSTOMERS}) == 12
    assert len({c.phone for c in CUSTOMERS}) == 12
    assert all(c.expect for c in CUSTOMERS)
    short = cast(short=True)
    assert {c.key for c in short} == {"maya", "priya", "jordan", "leo", "ben"}
    assert cast(short=False) == CUSTOMERS
    assert [c.key for c in cast(False, ("omar", "ana"))] == ["ana", "omar"]
    with pytest.raises(ValueError, match="no demo customer named zed"):
        cast(False, ("zed",))


async def test_each_phone_becomes_a_scenario_with_its_lines_rendered() -> None:
    rendered: list[str] = []

    async def render(text: str) -> bytes:
        rendered.append(text)
        return b"\x00\x01" * 800

    by_key = {c.key: c for c in CUSTOMERS}
    leo = await scenarios(by_key["leo"], render)
    assert [s.answer for s in leo] == [Answer.BUSY, Answer.ANSWER]
    assert "Oh, I already bought it yesterday, thanks." in rendered
    first = leo[1].steps
    assert isinstance(first[0], Say) and isinstance(first[1], AwaitReply)
    omar = await scenarios(by_key["omar"], render)
    assert any(isinstance(s, Dtmf) and s.digits == "9" for s in omar[0].steps)
    assert await scenarios(by_key["ben"], render) == []
    jordan = await scenarios(by_key["jordan"], render)
    assert jordan[0].steps[0].label == "greeting"  # type: ignore[union-attr]


def test_demo_settings_keep_the_merchants_and_change_only_what_the_demo_needs(
    tmp_path: Path,
) -> None:
    base = parse_settings({"state_dir": str(tmp_path), "web": {"host": "0.0.0.0", "port": 9999}})
    s = demo_settings(base, "s3cret-s3cret")
    campaign = s.campaigns[0]
    assert campaign.name == base.campaigns[0].name
    assert campaign.delay_min < 1 and campaign.retry.busy_min < 1
    assert (campaign.window_start, campaign.window_end) == (dt.time(0), dt.time(23, 59, 59))
    assert campaign.script.transfer_to == STORE_TEAM and campaign.script.offers
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'demo' / 'cartline.db'}"
    assert s.keys_file == tmp_path.resolve() / "demo" / "keys" / "data.keys"
    # The sign-in without a second factor is on loopback only.
    assert s.web.host == "127.0.0.1" and s.web.port == 9999 and s.web.auth.mfa_roles == ()
    assert s.intake.generic_secret is not None
    assert s.intake.generic_secret.get_secret_value() == "s3cret-s3cret"
    # What the merchant set is kept.
    assert s.speech == base.speech and s.trunk.name == base.trunk.name
    assert base.web.auth.mfa_roles == ("owner", "admin")


def test_the_stores_events_are_valid_generic_webhook_events() -> None:
    for customer in CUSTOMERS:
        event = EventIn.model_validate(checkout_event(customer, NOW, "checkout-recovery"))
        assert event.id == f"demo-checkout-{customer.key}"
        data = CheckoutIn.model_validate(event.data)
        assert ("call" in {c.channel for c in data.consents}) == customer.call_consent
        assert data.total == customer.total
    order = EventIn.model_validate(order_event(CUSTOMERS[0], NOW))
    assert OrderIn.model_validate(order.data).total == CUSTOMERS[0].total


async def test_the_shop_signs_what_it_sends() -> None:
    seen: list[bool] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers["X-Cartline-Timestamp"]
        want = hmac.new(b"k" * 16, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        seen.append(request.headers["X-Cartline-Signature"] == f"v1={want}")
        assert json.loads(body)["type"] == "order"
        return web.json_response({"accepted": True})

    app = web.Application()
    app.router.add_post("/webhooks/generic", hook)
    async with TestServer(app) as server:
        shop = DemoShop(str(server.make_url("")).rstrip("/"), "k" * 16)
        await shop.send(order_event(CUSTOMERS[0], NOW))
    assert seen == [True]


def test_the_summary_reads_each_customers_result(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    db.migrate()
    by_key = {c.key: c for c in CUSTOMERS}
    chosen = [by_key[k] for k in ("maya", "priya", "tom", "eve", "leo")]
    with db.session() as s:
        ids: dict[str, tuple[int, int]] = {}
        for c in chosen:
            contact = Contact(
                phone_e164=c.phone if c.key != "eve" else None, created_at=NOW, updated_at=NOW
            )
            s.add(contact)
            s.flush()
            assert contact.id is not None
            checkout = Checkout(
                source="generic",
                external_id=f"demo-{c.key}",
                contact_id=contact.id,
                total=c.total,
                currency="USD",
                abandoned_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
            s.add(checkout)
            s.flush()
            assert checkout.id is not None
            ids[c.key] = (contact.id, checkout.id)

        def call(key: str, outcome: str | None, state: str, due: dt.datetime) -> int:
            contact_id, checkout_id = ids[key]
            job = CallJob(
                campaign="c",
                checkout_id=checkout_id,
                contact_id=contact_id,
                state=state,
                created_at=NOW,
                updated_at=NOW,
                due_at=due,
            )
            s.add(job)
            s.flush()
            attempt = CallAttempt(
                job_id=job.id,
                contact_id=contact_id,
                campaign="c",
                server_id="t",
                status=AttemptStatus.ANSWERED,
                started_at=NOW,
                ended_at=NOW,
            )
            s.add(attempt)
            s.flush()
            assert attempt.id is not None
            if outcome:
                s.add(Outcome(attempt_id=attempt.id, code=outcome, created_at=NOW))
            return attempt.id

        maya = call("maya", "completed", JobState.DONE, NOW)
        order = Order(source="generic", external_id="o1", total=Decimal("158.95"), currency="USD",
                      ordered_at=NOW, received_at=NOW)  # fmt: skip
        s.add(order)
        s.flush()
        assert order.id is not None
        s.add(Attribution(order_id=order.id, attempt_id=maya, campaign="c",
                          amount=Decimal("158.95"), currency="USD", created_at=NOW))  # fmt: skip
        call("priya", "opted_out", JobState.DONE, NOW)
        s.add(DoNotCall(phone_e164=by_key["priya"].phone, reason="opt_out", source="call",
                         created_at=NOW))  # fmt: skip
        # A callback tomorrow: settled within the demo.
        call("tom", "callback", JobState.PENDING, NOW + dt.timedelta(hours=20))
        # A busy line about to be retried: not settled yet.
        contact_id, checkout_id = ids["leo"]
        waiting = CallJob(
            campaign="c",
            checkout_id=checkout_id,
            contact_id=contact_id,
            state=JobState.PENDING,
            due_at=NOW,
            created_at=NOW,
            updated_at=NOW,
        )
        s.add(waiting)
        s.add(Decision(checkout_id=ids["eve"][1], action="skip", reason="invalid_phone", at=NOW))
        s.commit()

        phones = {c.key: c.phone for c in chosen}
        summary = read_summary(s, chosen, phones, ordered={"maya"}, now=NOW)
    got = {c.key: (c.result, c.settled, c.as_expected) for c in summary.customers}
    assert got == {
        "maya": ("completed", True, True),
        "priya": ("opted_out", True, True),
        "tom": ("callback", True, True),
        "eve": ("not called: invalid_phone", True, True),
        "leo": ("waiting", False, False),
    }
    assert summary.recovered == Decimal("158.95")
    assert not summary.settled
    report = summary.as_json()
    assert report["do_not_call"] == ["priya"] and report["unexpected"] == {"leo": "waiting"}
    db.close()
