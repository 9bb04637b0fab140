"""The retention purge at each class's boundary, with an injected clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from agent.privacy.retention import next_run, run_purge
from agent.privacy.settings import RetentionSettings
from agent.store.tables import (
    AttemptStatus,
    CallAttempt,
    CallJob,
    Consent,
    Decision,
    DoNotCall,
    PrivacyRequest,
    Recording,
    Transcript,
)
from tests.campaigns.helpers import T0, Clock, Store, checkout, open_store, settings_with

KEEP = RetentionSettings(
    recordings_days=90,
    transcripts_days=365,
    analytics_days=400,
    consents_days=1825,
    do_not_call_days=1825,
)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(), Clock()) as st:
        st.db.call(lambda s: st.intake.ingest(s, checkout()))
        yield st


def _call_at(store: Store, at: dt.datetime, folder: Path, name: str) -> Path:
    """An answered call at ``at`` with its (sealed) recording files and transcript."""
    files = [folder / f"{name}{part}.wav.enc" for part in ("", "-in", "-out")]
    for f in files:
        f.write_bytes(b"CLE1 sealed")

    def write(s: Session) -> None:
        job = s.exec(select(CallJob)).one()
        attempt = CallAttempt(
            job_id=job.id,
            contact_id=job.contact_id,
            campaign=job.campaign,
            server_id="t",
            status=AttemptStatus.ANSWERED,
            started_at=at,
            ended_at=at,
        )
        s.add(attempt)
        s.flush()
        assert attempt.id is not None
        s.add(Recording(attempt_id=attempt.id, path=str(files[0]), created_at=at))
        s.add(Transcript(attempt_id=attempt.id, turns=[], sealed=b"x", created_at=at))

    store.db.call(write)
    return files[0]


def _count(store: Store, model: type) -> int:
    return int(store.db.call(lambda s: s.exec(select(func.count()).select_from(model)).one()))


async def test_recordings_go_after_their_days_and_their_files_with_them(
    store: Store, tmp_path: Path
) -> None:
    now = T0 + dt.timedelta(days=1000)
    cut = now - dt.timedelta(days=90)
    old = _call_at(store, cut - SECOND, tmp_path, "old")
    young = _call_at(store, cut + SECOND, tmp_path, "young")

    dry = await run_purge(store.db, KEEP, now, dry_run=True)
    assert dry.rows["recording(s)"] == 1 and dry.files == 3
    assert old.exists() and _count(store, Recording) == 2

    report = await run_purge(store.db, KEEP, now)
    assert report.rows["recording(s)"] == 1 and report.files == 3
    assert not old.exists() and not old.with_name("old-in.wav.enc").exists()
    assert young.exists()
    assert _count(store, Recording) == 1
    assert _count(store, Transcript) == 2  # transcripts have their own, longer period


async def test_transcripts_and_analytics_boundaries(store: Store, tmp_path: Path) -> None:
    now = T0 + dt.timedelta(days=1000)
    _call_at(store, now - dt.timedelta(days=365) - SECOND, tmp_path, "a")
    _call_at(store, now - dt.timedelta(days=365) + SECOND, tmp_path, "b")
    report = await run_purge(store.db, KEEP, now)
    assert report.rows["transcript(s)"] == 1
    assert report.rows["call attempt(s)"] == 0  # analytics are kept 400 days
    _call_at(store, now - dt.timedelta(days=400) - SECOND, tmp_path, "c")
    report = await run_purge(store.db, KEEP, now)
    assert report.rows["call attempt(s)"] == 1
    assert report.rows["transcript(s)"] == 1 and report.rows["recording(s)"] == 1
    assert _count(store, CallAttempt) == 2


async def test_consents_do_not_call_and_decisions(store: Store) -> None:
    now = T0 + dt.timedelta(days=3000)

    def add(s: Session) -> None:
        contact_id = s.exec(select(CallJob)).one().contact_id
        for age, channel in ((1825, "sms"), (1824, "call")):
            at = now - dt.timedelta(days=age) - SECOND
            s.add(
                Consent(
                    contact_id=contact_id,
                    channel=channel,
                    granted=True,
                    text_version="v",
                    source="t",
                    captured_at=at,
                    recorded_at=at,
                )
            )
        s.add(
            DoNotCall(
                phone_e164="+12125550199",
                reason="opt_out",
                source="t",
                created_at=now - dt.timedelta(days=1825) - SECOND,
            )
        )
        s.add(
            DoNotCall(
                phone_e164="+12125550198",
                reason="opt_out",
                source="t",
                created_at=now - dt.timedelta(days=1825) + SECOND,
            )
        )

    store.db.call(add)
    before = _count(store, Consent)
    report = await run_purge(store.db, KEEP, now)
    # The intake's consent (recorded at T0) and the 1825-day one go; the 1824-day one stays.
    assert report.rows["consent(s)"] == 2 and _count(store, Consent) == before - 2
    assert report.rows["do-not-call entry(ies)"] == 1 and _count(store, DoNotCall) == 1
    assert report.rows["decision(s)"] >= 1 and _count(store, Decision) == 0


def test_the_daily_purge_runs_at_its_hour() -> None:
    at = dt.datetime(2026, 6, 2, 2, 30, tzinfo=dt.UTC)
    assert next_run(at, 3) == dt.datetime(2026, 6, 2, 3, 0, tzinfo=dt.UTC)
    assert next_run(at, 2) == dt.datetime(2026, 6, 3, 2, 0, tzinfo=dt.UTC)


async def test_export_archives_expire_and_their_requests_say_so(
    store: Store, tmp_path: Path
) -> None:
    now = T0 + dt.timedelta(days=30)
    cut = now - dt.timedelta(days=7)
    archives = {}
    for name, done in (("old", cut - SECOND), ("young", cut + SECOND)):
        archives[name] = tmp_path / f"export-{name}.zip.enc"
        archives[name].write_bytes(b"CLE1 sealed")

        def add(s: Session, path: Path = archives[name], at: dt.datetime = done) -> None:
            s.add(
                PrivacyRequest(
                    kind="export",
                    state="done",
                    requested_by="test",
                    contacts=1,
                    subjects="contact:1",
                    archive_path=str(path),
                    created_at=at,
                    done_at=at,
                )
            )

        store.db.call(add)
    dry = await run_purge(store.db, KEEP, now, dry_run=True)
    assert dry.rows["export archive(s)"] == 1 and archives["old"].exists()
    report = await run_purge(store.db, KEEP, now)
    assert report.rows["export archive(s)"] == 1
    assert not archives["old"].exists() and archives["young"].exists()
    rows = store.db.call(
        lambda s: s.exec(select(PrivacyRequest).order_by(col(PrivacyRequest.id))).all()
    )
    assert [(r.state, r.archive_path is None) for r in rows] == [("expired", True), ("done", False)]
