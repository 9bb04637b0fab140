"""Re-sealing data sealed with an older key, after a new key is made active.

Runs in the background in ``cartline serve`` (and at once with ``cartline
privacy reseal``), a few rows per transaction, so calls go on meanwhile. Data
sealed while it runs is sealed with the active key already; each file is
replaced atomically, so a reader sees the old or the new sealing, never half.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Column, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.privacy.crypto import (
    RECORDING_CONTEXT,
    SEALED_SUFFIX,
    TOTP_CONTEXT,
    TRANSCRIPT_CONTEXT,
    DataKeys,
    file_sealed_with,
)
from agent.store.db import Database
from agent.store.tables import Recording, Transcript, User, table

log = logging.getLogger(__name__)


@dataclass
class Resealed:
    transcripts: int = 0
    recordings: int = 0
    secrets: int = 0  # the dashboard users' second-factor secrets


def recording_files(path: Path) -> list[Path]:
    """A sealed recording's files: the mix and each direction (``-in``, ``-out``)."""
    name = path.name.removesuffix(SEALED_SUFFIX).removesuffix(".wav")
    return [path.with_name(f"{name}{part}.wav{SEALED_SUFFIX}") for part in ("", "-in", "-out")]


def _reseal_column(
    s: Session, keys: DataKeys, column: Column[Any], context: str, after: int, batch: int
) -> tuple[int, int]:
    """Re-seals a sealed column in up to ``batch`` rows after id ``after``."""
    t = column.table
    conn = s.connection()
    rows = conn.execute(
        sa_select(t.c.id, column)
        .where(t.c.id > after, column.is_not(None))
        .order_by(t.c.id)
        .limit(batch)
    ).all()
    done = 0
    for row_id, sealed in rows:
        if keys.needs_reseal(sealed):
            plain = keys.open(sealed, context)
            conn.execute(
                update(t).where(t.c.id == row_id).values({column.name: keys.seal(plain, context)})
            )
            done += 1
    return (rows[-1][0] if rows else 0), done


def _recording_paths(s: Session, after: int, batch: int) -> list[tuple[int, str]]:
    r = table(Recording)
    rows = s.connection().execute(
        sa_select(r.c.id, r.c.path).where(r.c.id > after).order_by(r.c.id).limit(batch)
    )
    return [(int(i), str(p)) for i, p in rows]


def _reseal_files(keys: DataKeys, paths: list[str]) -> int:
    done = 0
    for p in paths:
        for f in recording_files(Path(p)):
            if f.is_file() and file_sealed_with(f) not in (None, keys.active):
                done += keys.reseal_file(f, RECORDING_CONTEXT)
    return done


async def reseal_all(db: Database, keys: DataKeys, batch: int = 100) -> Resealed:
    """Re-seals every transcript and recording not sealed with the active key."""
    out = Resealed()
    columns = (
        (table(Transcript).c.sealed, TRANSCRIPT_CONTEXT),
        (table(User).c.totp_sealed, TOTP_CONTEXT),
    )
    for column, context in columns:
        after = 0
        while True:
            after, n = await db.run(
                partial(
                    _reseal_column,
                    keys=keys,
                    column=column,
                    context=context,
                    after=after,
                    batch=batch,
                )
            )
            if context == TRANSCRIPT_CONTEXT:
                out.transcripts += n
            else:
                out.secrets += n
            if after == 0:
                break
    after = 0
    while True:
        rows = await db.run(partial(_recording_paths, after=after, batch=batch))
        if not rows:
            break
        after = rows[-1][0]
        out.recordings += await asyncio.to_thread(_reseal_files, keys, [p for _, p in rows])
    if out.transcripts or out.recordings:
        log.info(
            "re-sealed %d transcript(s) and %d recording file(s) with key %s",
            out.transcripts,
            out.recordings,
            keys.active,
        )
    return out


async def keep_resealing(db: Database, keys: DataKeys, every_s: float) -> None:
    """The background task: reseal_all now and then, until cancelled."""
    while True:
        try:
            await reseal_all(db, keys)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("re-sealing failed; trying again later")
        await asyncio.sleep(every_s)
