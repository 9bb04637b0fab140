"""``cartline privacy``: data keys, re-sealing, and opening a sealed recording."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from agent.config import Settings, load_settings
from agent.errors import CartlineError
from agent.privacy import audit
from agent.privacy.crypto import RECORDING_CONTEXT, add_key, load_keys
from agent.privacy.erasure import (
    erase,
    export_document,
    find_subject,
    recording_contacts,
    recording_paths,
    write_archive,
)
from agent.privacy.retention import remove_files, run_purge
from agent.privacy.rotation import reseal_all
from agent.store.db import Database


def add_commands(sub: Any) -> None:
    p = sub.add_parser("privacy", help="data keys and encryption at rest")
    p.add_argument(
        "action", choices=["keygen", "reseal", "decrypt", "purge", "export", "erase", "log"]
    )
    p.add_argument("--phone", help="export/erase: the customer's phone number")
    p.add_argument("--to", type=Path, help="export: the .zip archive to write")
    p.add_argument("--email", help="export/erase: the customer's email")
    p.add_argument("--yes", action="store_true", help="erase: do it (without, only report)")
    p.add_argument(
        "--why", default="customer request", help="export/erase/decrypt: written to the log"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="purge: report what would be removed, remove nothing"
    )
    p.add_argument("file", nargs="?", type=Path, help="decrypt: a sealed recording (.enc)")
    p.add_argument("out", nargs="?", type=Path, help="decrypt: where to write the WAV")
    p.set_defaults(func=cmd_privacy)


def cmd_privacy(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.action == "keygen":
        key_id = add_key(settings.keys_file)
        print(f"data key {key_id} added to {settings.keys_file} and made active")
        print("new data is sealed with it; `cartline privacy reseal` (or a running server,")
        print("within privacy.reseal_every_s) re-seals the older data")
        return 0
    if args.action == "purge":
        db = Database(settings.database_url)
        try:
            db.migrate()
            now = dt.datetime.now(dt.UTC)
            report = asyncio.run(
                run_purge(db, settings.privacy.retention, now, dry_run=args.dry_run)
            )
        finally:
            db.close()
        print("\n".join(report.lines()))
        return 0
    if args.action in ("export", "erase"):
        return _subject(args, settings)
    if args.action == "log":
        db = Database(settings.database_url)
        try:
            db.migrate()
            for entry in db.call(audit.entries):
                print(json.dumps(entry))
        finally:
            db.close()
        return 0
    keys = load_keys(settings.keys_file)
    if args.action == "decrypt":
        if args.file is None or args.out is None:
            raise CartlineError("give the sealed file and where to write it: decrypt FILE OUT")
        args.out.write_bytes(keys.open_file(args.file, RECORDING_CONTEXT))
        db = Database(settings.database_url)
        try:
            db.migrate()
            db.call(
                lambda s: audit.record(
                    s,
                    actor=audit.cli_actor(),
                    action="open-recording",
                    contacts=recording_contacts(s, args.file),
                    purpose=args.why,
                    detail=args.file.name,
                )
            )
        finally:
            db.close()
        print(f"{args.out}: written")
        return 0
    db = Database(settings.database_url)
    try:
        db.migrate()
        done = asyncio.run(reseal_all(db, keys))
    finally:
        db.close()
    print(
        f"re-sealed {done.transcripts} transcript(s) and {done.recordings} recording file(s) "
        f"with key {keys.active}"
    )
    return 0


def _subject(args: argparse.Namespace, settings: Settings) -> int:
    keys = load_keys(settings.keys_file) if settings.keys_file.is_file() else None
    db = Database(settings.database_url)
    region = settings.intake.default_region
    try:
        db.migrate()
        with db.session() as s:
            subject = find_subject(s, phone=args.phone, email=args.email, default_region=region)
            contacts = subject.ids.get("contacts", [])
            if args.action == "export":
                if args.to is None:
                    raise CartlineError(
                        "give the archive to write: export --phone ... --to OUT.zip"
                    )
                audit.record(
                    s, actor=audit.cli_actor(), action="export", contacts=contacts, purpose=args.why
                )
                document = export_document(s, subject, keys)
                files = write_archive(args.to, document, recording_paths(s, subject), keys)
                rows = sum(map(len, subject.ids.values()))
                print(f"{args.to}: {rows} row(s), {files} recording(s)")
                return 0
            paths = recording_paths(s, subject)
            if not args.yes:
                for name, ids in subject.ids.items():
                    print(f"would erase {len(ids)} {name}")
                print(f"would remove {sum(p.is_file() for p in paths)} recording file(s)")
                print("run again with --yes to erase")
                return 0
            counts = erase(s, subject)
            audit.record(
                s,
                actor=audit.cli_actor(),
                action="erase",
                contacts=contacts,
                purpose=args.why,
                detail=", ".join(f"{n} {name}" for name, n in counts.items() if n),
            )
        removed = remove_files(paths)
    finally:
        db.close()
    for name, n in counts.items():
        print(f"erased {n} {name}")
    print(f"removed {removed} recording file(s)")
    return 0
