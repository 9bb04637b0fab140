"""``cartline import``, ``cartline campaign``, ``cartline why`` and ``cartline db``."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from agent.campaigns.csvimport import CsvError, count_rows, read_checkouts_csv
from agent.campaigns.intake import Intake, IntakeResult
from agent.config import Settings, load_settings
from agent.errors import CartlineError
from agent.privacy import audit
from agent.progress import ProgressBar
from agent.store import repository as repo
from agent.store.db import Database
from agent.store.tables import CallJob, Checkout, Decision, JobState

BATCH_ROWS = 500


def add_commands(sub: Any) -> None:
    imp = sub.add_parser("import", help="import checkouts from a CSV file")
    imp.add_argument("what", choices=["checkouts"])
    imp.add_argument("file", type=Path)
    imp.add_argument("--source", default="csv", help="source name the checkout ids belong to")
    imp.add_argument("--errors", type=Path, help="also write the rejected rows' report here (CSV)")
    imp.set_defaults(func=cmd_import)

    camp = sub.add_parser("campaign", help="list, pause or resume campaigns")
    camp.add_argument("action", choices=["list", "pause", "resume"])
    camp.add_argument("name", nargs="?")
    camp.set_defaults(func=cmd_campaign)

    why = sub.add_parser("why", help="why a checkout was called or not (the decision log)")
    why.add_argument("checkout", help="the checkout as SOURCE:ID, e.g. shopify:123")
    why.set_defaults(func=cmd_why)

    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(func=cmd_db)


def open_db(settings: Settings) -> Database:
    db = Database(settings.database_url, echo=settings.store.echo_sql)
    db.migrate()
    return db


def cmd_db(args: argparse.Namespace) -> int:
    db = open_db(load_settings(args.config))
    db.close()
    print("database schema is up to date")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    path: Path = args.file
    if not path.is_file():
        raise CartlineError(f"{path}: no such file")
    total_rows = count_rows(path)
    db = open_db(settings)
    intake = Intake(db, settings)
    bar = ProgressBar(f"importing {path.name}")
    result = IntakeResult()
    errors: list[CsvError] = []
    batch = []
    done = 0
    now = dt.datetime.now(dt.UTC)
    try:
        for row in read_checkouts_csv(path, source=args.source, now=now):
            done += 1
            if isinstance(row, CsvError):
                errors.append(row)
            else:
                batch.append(row.record)
            if len(batch) >= BATCH_ROWS:
                items = list(batch)
                result.add(db.call(lambda s, items=items: intake.ingest_all(s, items)))  # type: ignore[misc]
                batch.clear()
            if done % 100 == 0 or done == total_rows:
                bar(done, max(total_rows, done))
        if batch:
            result.add(db.call(lambda s: intake.ingest_all(s, batch)))
        bar(max(done, 1), max(done, 1))
    finally:
        db.close()
    print(
        f"{result.checkouts} checkout(s) imported, {result.jobs_scheduled} call(s) scheduled, "
        f"{result.invalid_phones} with an invalid phone number, {len(errors)} row(s) rejected"
    )
    for reason, n in sorted(result.skipped.items()):
        print(f"  not scheduled ({reason}): {n}")
    for err in errors[:20]:
        print(f"  line {err.line}: {err.code}: {err.message}", file=sys.stderr)
    if len(errors) > 20:
        print(f"  ... and {len(errors) - 20} more rejected row(s)", file=sys.stderr)
    if args.errors is not None:
        with args.errors.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["line", "code", "message"])
            for err in errors:
                w.writerow([err.line, err.code, err.message])
    return 0 if not errors else 2


def cmd_campaign(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    names = [c.name for c in settings.campaigns]
    if args.action != "list" and args.name not in names:
        raise CartlineError(
            f"no campaign named {args.name!r} in the configuration (known: {', '.join(names)})"
        )
    db = open_db(settings)
    now = dt.datetime.now(dt.UTC)
    try:
        if args.action == "list":

            def listing(s: Session) -> list[str]:
                lines = []
                for c in settings.campaigns:
                    state = repo.campaign_state(s, c.name, now)
                    pending = len(
                        s.exec(
                            select(CallJob.id).where(
                                CallJob.campaign == c.name, CallJob.state == JobState.PENDING
                            )
                        ).all()
                    )
                    status = "disabled" if not c.enabled else "running"
                    if state.paused:
                        status = f"paused ({state.paused_reason or 'by hand'})"
                    lines.append(f"{c.name:24} {c.kind:20} {status:24} {pending} job(s) pending")
                return lines

            print("\n".join(db.call(listing)))
            return 0
        paused = args.action == "pause"
        db.call(lambda s: repo.set_paused(s, args.name, paused, "by hand" if paused else None, now))
        print(f"{args.name}: {'paused' if paused else 'resumed'}")
        return 0
    finally:
        db.close()


def cmd_why(args: argparse.Namespace) -> int:
    source, sep, external_id = args.checkout.partition(":")
    if not sep:
        raise CartlineError("give the checkout as SOURCE:ID, e.g. shopify:123456")
    db = open_db(load_settings(args.config))
    try:

        def lines(s: Session) -> list[str]:
            checkout = s.exec(
                select(Checkout).where(
                    Checkout.source == source, Checkout.external_id == external_id
                )
            ).first()
            if checkout is None:
                raise CartlineError(f"no checkout {args.checkout}")
            audit.record(
                s,
                actor=audit.cli_actor(),
                action="view",
                contacts=[checkout.contact_id],
                purpose="decision log of a checkout",
            )
            rows = s.exec(
                select(Decision)
                .where(Decision.checkout_id == checkout.id)
                .order_by(col(Decision.at), col(Decision.id))
            ).all()
            out = []
            for d in rows:
                retry = f" (until {d.retry_at:%Y-%m-%d %H:%M} UTC)" if d.retry_at else ""
                detail = f": {d.detail}" if d.detail else ""
                out.append(
                    f"{d.at:%Y-%m-%d %H:%M:%S} {d.campaign or '-':20} {d.action:9} "
                    f"{d.reason}{detail}{retry}"
                )
            return out or ["no decision recorded yet"]

        print("\n".join(db.call(lines)))
    finally:
        db.close()
    return 0
