"""Calls as the scheduler leaves them (contact, checkout, job, attempt, outcome, transcript,
recording), written straight into a database for the read-side tests."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session

from agent.privacy.crypto import RECORDING_CONTEXT, TRANSCRIPT_CONTEXT, DataKeys
from agent.store.tables import (
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Consent,
    Contact,
    Decision,
    Order,
    Outcome,
    Recording,
    Transcript,
)

_SERIAL = itertools.count(1)
T0 = dt.datetime(2026, 6, 2, 15, 0, tzinfo=dt.UTC)
TURNS = [
    {"speaker": "agent", "text": "Hi Dana, this is the shop.", "start_ms": 0},
    {"speaker": "customer", "text": "Oh hi, yes I meant to finish that.", "start_ms": 2100},
]


def wav_bytes(n: int = 4000) -> bytes:
    """A small valid-looking WAV file whose body is a known pattern."""
    body = bytes(i % 251 for i in range(n))
    header = b"RIFF" + (36 + n).to_bytes(4, "little") + b"WAVEfmt " + bytes(24) + b"data"
    return header + n.to_bytes(4, "little") + body


@dataclass(frozen=True)
class Seeded:
    contact_id: int
    checkout_id: int
    attempt_id: int
    recording_id: int | None


def add_contact(
    s: Session,
    phone: str | None = "+12125550123",
    email: str | None = "dana@example.com",
    first_name: str = "Dana",
    last_name: str = "Lee",
) -> int:
    contact = Contact(
        phone_e164=phone,
        email=email,
        first_name=first_name,
        last_name=last_name,
        country="US",
        region="NY",
        created_at=T0,
        updated_at=T0,
    )
    s.add(contact)
    s.flush()
    assert contact.id is not None
    return contact.id


def add_call(
    s: Session,
    *,
    contact_id: int | None = None,
    campaign: str = "recovery",
    status: str = "answered",
    outcome: str | None = "interested",
    started_at: dt.datetime = T0,
    turns: list[dict[str, Any]] | None = None,
    keys: DataKeys | None = None,
    recording: Path | None = None,
    external_id: str | None = None,
    attributed: Decimal | None = None,
) -> Seeded:
    """One call to the contact (a new one if not given), sealed with ``keys`` when given."""
    if contact_id is None:
        contact_id = add_contact(s)
    checkout = Checkout(
        source="test",
        external_id=external_id or f"c-{next(_SERIAL)}",
        contact_id=contact_id,
        campaign=campaign,
        items=[{"title": "Trail shoes", "quantity": 1, "price": "120.00"}],
        total=Decimal("120.00"),
        currency="USD",
        checkout_url="https://shop.example/checkouts/c1",
        abandoned_at=started_at - dt.timedelta(hours=1),
        created_at=started_at,
        updated_at=started_at,
    )
    s.add(checkout)
    s.flush()
    assert checkout.id is not None
    job = CallJob(
        campaign=campaign,
        checkout_id=checkout.id,
        contact_id=contact_id,
        state="done",
        due_at=started_at,
        attempts=1,
        created_at=started_at,
        updated_at=started_at,
    )
    s.add(job)
    s.flush()
    s.add(
        Decision(
            checkout_id=checkout.id,
            campaign=campaign,
            action="call",
            reason="due",
            at=started_at,
        )
    )
    answered = started_at + dt.timedelta(seconds=10) if status == "answered" else None
    attempt = CallAttempt(
        job_id=job.id,
        contact_id=contact_id,
        campaign=campaign,
        server_id="test",
        status=status,
        started_at=started_at,
        answered_at=answered,
        ended_at=started_at + dt.timedelta(seconds=70),
    )
    s.add(attempt)
    s.flush()
    assert attempt.id is not None
    if outcome is not None:
        s.add(
            Outcome(
                attempt_id=attempt.id,
                code=outcome,
                note={"summary": "wants a reminder"},
                created_at=started_at,
            )
        )
    if turns is not None:
        if keys is None:
            s.add(Transcript(attempt_id=attempt.id, turns=turns, created_at=started_at))
        else:
            sealed = keys.seal(json.dumps(turns).encode(), TRANSCRIPT_CONTEXT)
            s.add(Transcript(attempt_id=attempt.id, turns=[], sealed=sealed, created_at=started_at))
    recording_id = None
    if recording is not None:
        data = wav_bytes()
        mix = recording.parent / f"call-{attempt.id}.wav"
        for part in ("", "-in", "-out"):
            path = recording.parent / f"call-{attempt.id}{part}.wav"
            if keys is None:
                path.write_bytes(data)
            else:
                path.with_name(path.name + ".enc").write_bytes(keys.seal(data, RECORDING_CONTEXT))
        stored = str(mix) + (".enc" if keys is not None else "")
        row = Recording(
            attempt_id=attempt.id, path=stored, size_bytes=len(data), created_at=started_at
        )
        s.add(row)
        s.flush()
        recording_id = row.id
    if attributed is not None:
        order = Order(
            source="test",
            external_id=f"o-{attempt.id}",
            checkout_id=checkout.id,
            contact_id=contact_id,
            total=attributed,
            currency="USD",
            ordered_at=started_at + dt.timedelta(hours=2),
            received_at=started_at + dt.timedelta(hours=2),
        )
        s.add(order)
        s.flush()
        assert order.id is not None
        s.add(
            Attribution(
                order_id=order.id,
                attempt_id=attempt.id,
                campaign=campaign,
                amount=attributed,
                currency="USD",
                created_at=started_at,
            )
        )
    s.add(
        Consent(
            contact_id=contact_id,
            channel="call",
            granted=True,
            text_version="checkout-v1",
            source="test",
            captured_at=started_at - dt.timedelta(hours=2, seconds=attempt.id),
            recorded_at=started_at,
        )
    )
    s.flush()
    return Seeded(contact_id, checkout.id, attempt.id, recording_id)
