"""Retention: each class of data is kept for its configured time, then purged.

Classes and their clocks:
- recordings: when recorded. The row and its sealed files are removed.
- transcripts: when stored.
- analytics: call attempts and their outcomes and attributions, the decision log,
  processed webhook deliveries, outcome webhooks sent; by when each happened.
- consents: when recorded.
- do-not-call entries: when added.

Contact data is kept while the merchant's relationship lasts; it is removed by
erasure on request. The purge runs daily in ``cartline serve`` and on demand with
``cartline privacy purge [--dry-run]``, which reports what it removed (or would).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import delete, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.privacy import audit
from agent.privacy.rotation import recording_files
from agent.privacy.settings import RetentionSettings
from agent.store.db import Database
from agent.store.tables import (
    Attribution,
    CallAttempt,
    Consent,
    Decision,
    DoNotCall,
    OutboundEvent,
    Outcome,
    PrivacyRequest,
    Recording,
    Transcript,
    WebhookDelivery,
    table,
)

log = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    """Rows (and files) removed per data class; with ``dry_run`` what would be removed."""

    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{verb} {n} {name}" for name, n in self.rows.items()]
        out.append(f"{verb} {self.files} file(s) (recordings, export archives)")
        return out


def _ago(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


def purge(
    s: Session, now: dt.datetime, keep: RetentionSettings, *, dry_run: bool = False
) -> tuple[PurgeReport, list[Path]]:
    """Deletes what is past its retention; returns the report and the files to remove.

    Rows go in this transaction; the files are returned so that they are removed
    only after it commits (a failed purge leaves no row pointing at a lost file).
    """
    conn = s.connection()
    report = PurgeReport(dry_run)
    files: list[Path] = []
    rec, tr, att = table(Recording), table(Transcript), table(CallAttempt)
    recordings_cut = _ago(now, keep.recordings_days)
    analytics_cut = _ago(now, keep.analytics_days)
    # A call past the analytics period takes its recording and transcript with it.
    old_attempts = sa_select(att.c.id).where(att.c.started_at < analytics_cut)
    rec_where = (rec.c.created_at < recordings_cut) | rec.c.attempt_id.in_(old_attempts)
    for (path,) in conn.execute(sa_select(rec.c.path).where(rec_where)):
        files.extend(f for f in recording_files(_sealed_name(Path(path))) if f.exists())
        plain = Path(path)
        if plain.exists() and plain not in files:
            files.append(plain)
    report.files = len(files)
    tr_where = (tr.c.created_at < _ago(now, keep.transcripts_days)) | tr.c.attempt_id.in_(
        old_attempts
    )
    steps = [
        ("recording(s)", rec, rec_where),
        ("transcript(s)", tr, tr_where),
        ("outcome(s)", table(Outcome), table(Outcome).c.attempt_id.in_(old_attempts)),
        ("attribution(s)", table(Attribution), table(Attribution).c.attempt_id.in_(old_attempts)),
        (
            "outbound event(s)",
            table(OutboundEvent),
            (table(OutboundEvent).c.delivered_at < analytics_cut)
            | table(OutboundEvent).c.attempt_id.in_(old_attempts),
        ),
        ("call attempt(s)", att, att.c.started_at < analytics_cut),
        ("decision(s)", table(Decision), table(Decision).c.at < analytics_cut),
        (
            "webhook delivery(ies)",
            table(WebhookDelivery),
            (table(WebhookDelivery).c.received_at < analytics_cut)
            & table(WebhookDelivery).c.processed_at.is_not(None),
        ),
        (
            "consent(s)",
            table(Consent),
            table(Consent).c.recorded_at < _ago(now, keep.consents_days),
        ),
        (
            "do-not-call entry(ies)",
            table(DoNotCall),
            table(DoNotCall).c.created_at < _ago(now, keep.do_not_call_days),
        ),
    ]
    files.extend(_expire_exports(s, _ago(now, keep.exports_days), report, dry_run=dry_run))
    for name, target, where in steps:
        n = conn.execute(sa_select(func.count()).select_from(target).where(where)).scalar_one()
        report.rows[name] = int(n)
        if n and not dry_run:
            conn.execute(delete(target).where(where))
    if not dry_run:
        audit.record(
            s,
            actor="system:retention",
            action="purge",
            purpose="retention periods",
            detail=", ".join(f"{n} {name}" for name, n in report.rows.items() if n),
            now=now,
        )
    return report, [] if dry_run else files


def _expire_exports(
    s: Session, cut: dt.datetime, report: PurgeReport, *, dry_run: bool
) -> list[Path]:
    """Export archives past their time: the request stays (as expired), the file goes."""
    t = table(PrivacyRequest)
    where = (t.c.kind == "export") & t.c.archive_path.is_not(None) & (t.c.done_at < cut)
    rows = s.connection().execute(sa_select(t.c.id, t.c.archive_path).where(where)).all()
    report.rows["export archive(s)"] = len(rows)
    paths = [Path(p) for _, p in rows if Path(p).exists()]
    report.files += len(paths)
    if not dry_run and rows:
        s.connection().execute(update(t).where(where).values(archive_path=None, state="expired"))
    return paths


def _sealed_name(path: Path) -> Path:
    return path if path.name.endswith(".enc") else path.with_name(path.name + ".enc")


def remove_files(files: list[Path]) -> int:
    removed = 0
    for f in files:
        try:
            f.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


async def run_purge(
    db: Database, keep: RetentionSettings, now: dt.datetime, *, dry_run: bool = False
) -> PurgeReport:
    """One purge: rows in one transaction, then the files of the recordings it removed."""
    report, files = await db.run(partial(purge, now=now, keep=keep, dry_run=dry_run))
    if files:
        report.files = await asyncio.to_thread(remove_files, files)
    if not dry_run:
        log.info("retention purge: %s", "; ".join(report.lines()))
    return report


def next_run(now: dt.datetime, hour_utc: int) -> dt.datetime:
    """The next time the daily purge is due (today at the hour, else tomorrow)."""
    due = now.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return due if due > now else due + dt.timedelta(days=1)


async def keep_purging(db: Database, keep: RetentionSettings) -> None:
    """The background task of ``cartline serve``: a purge each day at the configured hour."""
    while True:
        now = dt.datetime.now(dt.UTC)
        await asyncio.sleep((next_run(now, keep.purge_hour_utc) - now).total_seconds())
        try:
            await run_purge(db, keep, dt.datetime.now(dt.UTC))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the retention purge failed; it runs again tomorrow")
