"""The intake inbox: stored once, applied in order, errors kept, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlmodel import select

from agent.campaigns.inbox import Inbox
from agent.campaigns.records import Delivery, records_from_json, records_to_json
from agent.store.tables import CallJob, Checkout, WebhookDelivery
from tests.campaigns.helpers import Clock, Store, checkout, open_store, order, settings_with


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(), Clock()) as st:
        yield st


def test_records_survive_the_json_round_trip() -> None:
    records = (checkout(), order())
    assert records_from_json(records_to_json(records)) == records


async def test_concurrent_deliveries_share_commits_and_duplicates_are_found(store: Store) -> None:
    inbox = Inbox(store.db, store.intake, clock=store.clock)
    inbox.start()
    try:
        deliveries = [
            Delivery("shopify", f"d-{i % 30}", "checkouts/create", (checkout(f"c{i % 30}"),))
            for i in range(60)
        ]
        fresh = await asyncio.gather(*(inbox.put(d) for d in deliveries))
        assert sum(fresh) == 30
    finally:
        await inbox.stop()
    rows = store.db.call(lambda s: list(s.exec(select(WebhookDelivery)).all()))
    assert len(rows) == 30


async def test_applying_creates_checkouts_once_and_marks_rows_done(store: Store) -> None:
    applied: list[object] = []
    inbox = Inbox(store.db, store.intake, clock=store.clock, on_applied=applied.append)
    await inbox.put(Delivery("shopify", "d-1", "checkouts/create", (checkout(),)))
    await inbox.put(Delivery("shopify", "d-2", "checkouts/update", (checkout(),)))
    result = await inbox.apply_pending()
    assert result.checkouts == 2 and result.jobs_scheduled == 1
    assert applied, "the scheduler is told about new jobs"
    assert len(store.db.call(lambda s: list(s.exec(select(Checkout)).all()))) == 1
    assert len(store.db.call(lambda s: list(s.exec(select(CallJob)).all()))) == 1
    again = await inbox.apply_pending()
    assert again.checkouts == 0


async def test_a_delivery_that_cannot_be_applied_keeps_its_row_and_error(store: Store) -> None:
    inbox = Inbox(store.db, store.intake, clock=store.clock)
    await inbox.put(Delivery("shopify", "bad", "checkouts/create", (checkout(),)))
    await inbox.put(Delivery("shopify", "good", "checkouts/create", (checkout("c2"),)))

    def corrupt(s):  # type: ignore[no-untyped-def]
        row = s.exec(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "bad")).one()
        row.records = [{"kind": "checkout"}]
        s.add(row)

    store.db.call(corrupt)
    result = await inbox.apply_pending()
    assert result.checkouts == 1  # the good one went through
    rows = {
        r.delivery_id: r
        for r in store.db.call(lambda s: list(s.exec(select(WebhookDelivery)).all()))
    }
    assert rows["bad"].error == "KeyError" and rows["bad"].processed_at is not None
    assert rows["good"].error is None
