"""Builders for intake records and a store on a given database, for the campaign tests."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agent.campaigns.intake import Intake
from agent.campaigns.records import (
    Address,
    Channel,
    CheckoutRecord,
    Consent,
    Customer,
    LineItem,
    OrderRecord,
)
from agent.config import Settings, parse_settings
from agent.store.db import Database

# A Tuesday, 15:00 UTC: 10:00 in New York, 07:00 in Los Angeles.
T0 = dt.datetime(2026, 6, 2, 15, 0, tzinfo=dt.UTC)


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


def settings_with(**campaign: Any) -> Settings:
    base: dict[str, Any] = {"name": "checkout-recovery", "delay_min": 30, "min_spacing_min": 60}
    base.update(campaign)
    return parse_settings({"campaigns": [base]})


def consent(at: dt.datetime = T0 - dt.timedelta(hours=1), granted: bool = True) -> Consent:
    return Consent(Channel.CALL, granted, "checkout-v1", at, "test")


def checkout(
    external_id: str = "c1",
    *,
    phone: str | None = "+12125550123",
    region: str = "NY",
    abandoned_at: dt.datetime = T0,
    consents: tuple[Consent, ...] | None = None,
    total: str = "120.00",
    completed: bool = False,
    email: str | None = "shopper@example.com",
) -> CheckoutRecord:
    return CheckoutRecord(
        source="test",
        external_id=external_id,
        customer=Customer(
            phone=phone,
            email=email,
            first_name="Dana",
            address=Address("US", region, "10001", "New York"),
        ),
        total=Decimal(total),
        currency="USD",
        abandoned_at=abandoned_at,
        items=(LineItem("Trail shoes", 1, Decimal(total)),),
        checkout_url="https://shop.example/checkouts/c1",
        completed=completed,
        consents=(consent(),) if consents is None else consents,
    )


def order(
    external_id: str = "o1", checkout_id: str = "c1", at: dt.datetime = T0, total: str = "120.00"
) -> OrderRecord:
    return OrderRecord(
        source="test",
        external_id=external_id,
        customer=Customer(phone="+12125550123"),
        total=Decimal(total),
        currency="USD",
        created_at=at,
        checkout_external_id=checkout_id,
    )


@dataclass
class Store:
    db: Database
    settings: Settings
    clock: Clock
    intake: Intake = field(init=False)

    def __post_init__(self) -> None:
        self.intake = Intake(self.db, self.settings, self.clock)


@contextlib.contextmanager
def open_store(url: str, settings: Settings, clock: Clock) -> Iterator[Store]:
    db = Database(url)
    db.migrate()
    try:
        yield Store(db, settings, clock)
    finally:
        db.close()
