"""Export and erasure per customer: all of it out, then no trace left anywhere."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from agent.campaigns.attempts import finish_attempt
from agent.campaigns.inbox import Inbox
from agent.campaigns.jobs import claim_due
from agent.campaigns.placement import CallResult
from agent.campaigns.records import Delivery
from agent.privacy.crypto import RECORDING_CONTEXT, DataKeys
from agent.privacy.erasure import (
    SubjectNotFound,
    erase,
    export_document,
    find_subject,
    recording_paths,
    write_archive,
)
from agent.privacy.retention import remove_files
from agent.store import repository as repo
from agent.store.tables import AttemptStatus, DoNotCall, OutboundEvent
from agent.web.settings import OutcomeWebhookSettings
from tests.campaigns.helpers import Clock, Store, checkout, open_store, order, settings_with

KEYS = DataKeys({"k1": bytes(range(32))}, "k1")
DANA = {"phone": "+12125550123", "email": "dana.lee@example.com", "name": "Dana"}
OTHER_PHONE = "+12125550777"
CRM = OutcomeWebhookSettings.model_validate({"url": "https://crm.example/hook", "secret": "s"})


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(delay_min=0), Clock()) as st:
        yield st


def _customer_with_history(store: Store, folder: Path) -> None:
    """Dana: a delivered checkout, an answered call (sealed recording and transcript), an
    order credited to it; and another customer who must not be touched."""
    dana = checkout("c-dana", phone=DANA["phone"], email=DANA["email"])
    other = checkout("c-other", phone=OTHER_PHONE, email="other@example.com")
    inbox_row = Delivery("shopify", "d-dana", "checkouts/create", (dana,))

    async def deliver() -> None:
        inbox = Inbox(store.db, store.intake, clock=store.clock)
        await inbox.put(inbox_row)
        await inbox.apply_pending()

    asyncio.run(deliver())
    store.db.call(lambda s: store.intake.ingest(s, other))
    campaigns = {c.name: c for c in store.settings.campaigns}
    now = store.clock()
    requests, _ = store.db.call(
        lambda s: claim_due(s, now, limit=5, server_id="t", campaigns=campaigns)
    )
    for req in requests:
        mix = folder / f"call-{req.attempt_id}.wav"
        for part in ("", "-in", "-out"):
            (folder / f"call-{req.attempt_id}{part}.wav").write_bytes(b"RIFF" + bytes(64))
            KEYS.seal_file(folder / f"call-{req.attempt_id}{part}.wav", RECORDING_CONTEXT)
        result = CallResult(
            AttemptStatus.ANSWERED,
            turns=[{"speaker": "customer", "text": f"this is {DANA['name']}, call me"}],
            recording=str(mix) + ".enc",
        )
        store.db.call(
            lambda s, req=req, result=result: finish_attempt(  # type: ignore[misc]
                s, req.attempt_id, result, now, campaigns, keys=KEYS, webhooks=[CRM]
            )
        )
    store.db.call(lambda s: store.intake.ingest(s, order("o-dana", "c-dana")))


def _everything(s: Session) -> str:
    """Every row of every table, as text."""
    meta = MetaData()
    meta.reflect(bind=s.connection())
    out = []
    for t in meta.sorted_tables:
        for row in s.connection().execute(sa_select(t)):
            out.append(repr(tuple(row)))
    return "\n".join(out)


def test_export_then_erase_leaves_no_trace(store: Store, tmp_path: Path) -> None:
    _customer_with_history(store, tmp_path)
    region = "US"
    archive = tmp_path / "dana.zip"
    with store.db.session() as s:
        subject = find_subject(s, phone="(212) 555-0123", email=None, default_region=region)
        files = write_archive(
            archive, export_document(s, subject, KEYS), recording_paths(s, subject), KEYS
        )
    assert files == 3
    with zipfile.ZipFile(archive) as z:
        doc = json.loads(z.read("subject.json"))
        assert doc["contacts"][0]["email"] == DANA["email"]
        assert doc["transcripts"][0]["turns"][0]["text"].startswith("this is Dana")
        assert len(doc["orders"]) == 1 and len(doc["webhook_deliveries"]) == 1
        assert doc["outbound_events"][0]["payload"]["checkout"]["external_id"] == "c-dana"
        assert (
            z.read(sorted(n for n in z.namelist() if n.startswith("recordings/"))[0])[:4] == b"RIFF"
        )

    with store.db.session() as s:
        subject = find_subject(s, phone=None, email=DANA["email"], default_region=region)
        paths = recording_paths(s, subject)
        erase(s, subject)
    remove_files(paths)

    dump = store.db.call(_everything)
    for trace in (DANA["phone"], DANA["phone"][2:], DANA["email"], "c-dana", "o-dana"):
        assert trace not in dump, trace
    assert OTHER_PHONE in dump  # the other customer is untouched
    # The outcome webhook queued for Dana's call went with it; the other customer's stays.
    outbox = store.db.call(lambda s: list(s.exec(select(OutboundEvent)).all()))
    assert [e.payload["checkout"]["external_id"] for e in outbox] == ["c-other"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("call-")]
    assert len(leftovers) == 3  # only the other customer's recording files
    with store.db.session() as s, pytest.raises(SubjectNotFound):
        find_subject(s, phone=DANA["phone"], email=None, default_region=region)


def test_an_opt_out_survives_erasure_as_a_bare_do_not_call_entry(store: Store) -> None:
    store.db.call(lambda s: store.intake.ingest(s, checkout("c-dana", phone=DANA["phone"])))
    now = store.clock() + dt.timedelta(minutes=1)
    store.db.call(lambda s: repo.add_do_not_call(s, DANA["phone"], "opt_out", "call", now))
    with store.db.session() as s:
        erase(s, find_subject(s, phone=DANA["phone"], email=None, default_region="US"))
    entries = store.db.call(lambda s: list(s.exec(select(DoNotCall)).all()))
    assert [(e.phone_e164, e.reason) for e in entries] == [(DANA["phone"], "opt_out")]
    dump = store.db.call(_everything)
    assert DANA["email"] not in dump and "c-dana" not in dump
