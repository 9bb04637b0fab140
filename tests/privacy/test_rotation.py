"""Re-sealing after a new key, while calls keep ending and sealing their data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from agent.campaigns.attempts import finish_attempt, transcript_turns
from agent.campaigns.jobs import claim_due
from agent.campaigns.placement import CallResult
from agent.privacy.crypto import (
    RECORDING_CONTEXT,
    TRANSCRIPT_CONTEXT,
    DataKeys,
    file_sealed_with,
    sealed_with,
)
from agent.privacy.rotation import recording_files, reseal_all
from agent.store.tables import AttemptStatus, Recording, Transcript, User
from agent.web import accounts
from agent.web.access import Role
from tests.campaigns.helpers import Clock, Store, checkout, open_store, settings_with

K1 = {"k1": bytes([1]) * 32}
K12 = {**K1, "k2": bytes([2]) * 32}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(delay_min=0), Clock()) as st:
        yield st


def _answered_call(store: Store, n: int, keys: DataKeys, recordings: Path) -> None:
    rec = checkout(f"c{n}", phone=f"+1212555{n:04d}")
    store.db.call(lambda s: store.intake.ingest(s, rec))
    campaigns = {c.name: c for c in store.settings.campaigns}
    now = store.clock()
    [req], _ = store.db.call(
        lambda s: claim_due(s, now, limit=1, server_id="t", campaigns=campaigns)
    )
    files = []
    for part in ("", "-in", "-out"):
        f = recordings / f"call{n}{part}.wav"
        f.write_bytes(b"RIFF" + bytes([n]) * 100)
        files.append(keys.seal_file(f, RECORDING_CONTEXT))
    result = CallResult(
        AttemptStatus.ANSWERED,
        turns=[{"speaker": "customer", "text": f"line {n}"}],
        recording=str(files[0]),
        recording_bytes=104,
    )
    store.db.call(lambda s: finish_attempt(s, req.attempt_id, result, now, campaigns, keys=keys))


async def test_reseal_everything_while_calls_keep_ending(store: Store, tmp_path: Path) -> None:
    old = DataKeys(K1, "k1")
    for n in range(5):
        _answered_call(store, n, old, tmp_path)
    rows = store.db.call(lambda s: list(s.exec(select(Transcript)).all()))
    assert all(r.turns == [] and r.sealed for r in rows)  # nothing readable in the table
    first = rows[0].sealed
    assert first is not None and b"line" not in first
    assert json.loads(old.open(first, TRANSCRIPT_CONTEXT))[0]["text"] == "line 0"

    new = DataKeys(K12, "k2")

    async def more_calls() -> None:
        for n in range(5, 10):
            await asyncio.to_thread(_answered_call, store, n, new, tmp_path)

    await asyncio.gather(reseal_all(store.db, new, batch=2), more_calls())
    await reseal_all(store.db, new, batch=2)

    only_new = DataKeys({"k2": K12["k2"]}, "k2")
    rows = store.db.call(lambda s: list(s.exec(select(Transcript)).all()))
    assert len(rows) == 10
    texts = sorted(transcript_turns(r, only_new)[0]["text"] for r in rows)
    assert texts == sorted(f"line {n}" for n in range(10))
    recordings = store.db.call(lambda s: list(s.exec(select(Recording)).all()))
    assert len(recordings) == 10
    for r in recordings:
        for f in recording_files(Path(r.path)):
            assert file_sealed_with(f) == "k2"
            assert only_new.open_file(f, RECORDING_CONTEXT).startswith(b"RIFF")


async def test_reseal_covers_the_dashboard_users_second_factor(store: Store) -> None:
    old, new = DataKeys(K1, "k1"), DataKeys(K12, "k2")

    def enrol(s: Any) -> None:
        user = accounts.add_user(s, "boss@shop.example", "a long enough secret", Role.OWNER)
        accounts.enable_mfa(user, old, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        s.add(user)

    store.db.call(enrol)
    done = await reseal_all(store.db, new)
    assert done.secrets == 1
    user = store.db.call(lambda s: s.exec(select(User)).one())
    assert user.totp_sealed is not None and sealed_with(user.totp_sealed) == "k2"
    assert accounts.totp_secret(new, user) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
