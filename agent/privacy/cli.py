"""``cartline privacy``: data keys, re-sealing, and opening a sealed recording."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from agent.config import load_settings
from agent.errors import CartlineError
from agent.privacy.crypto import RECORDING_CONTEXT, add_key, load_keys
from agent.privacy.retention import run_purge
from agent.privacy.rotation import reseal_all
from agent.store.db import Database


def add_commands(sub: Any) -> None:
    p = sub.add_parser("privacy", help="data keys and encryption at rest")
    p.add_argument("action", choices=["keygen", "reseal", "decrypt", "purge"])
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
    keys = load_keys(settings.keys_file)
    if args.action == "decrypt":
        if args.file is None or args.out is None:
            raise CartlineError("give the sealed file and where to write it: decrypt FILE OUT")
        args.out.write_bytes(keys.open_file(args.file, RECORDING_CONTEXT))
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
