"""The processing log: who (a person at the command line, an API token, a job) processed
whose data, when and why. Entries name people by contact id only, and cannot be changed
or removed (the database refuses it); ``cartline privacy log`` exports them as JSON lines.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.store.tables import ProcessingLog, table


def cli_actor() -> str:
    """The person at the command line, as the log names them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def record(
    s: Session,
    *,
    actor: str,
    action: str,
    contacts: Iterable[int] = (),
    purpose: str = "",
    detail: str = "",
    now: dt.datetime | None = None,
) -> None:
    """Appends one entry, in the caller's transaction (so it stands or falls with the work)."""
    s.connection().execute(
        insert(table(ProcessingLog)),
        {
            "at": now or dt.datetime.now(dt.UTC),
            "actor": actor[:200],
            "action": action,
            "subjects": " ".join(f"contact:{c}" for c in sorted(set(contacts)))[:2000],
            "purpose": purpose[:500],
            "detail": detail[:2000],
        },
    )


def entries(s: Session, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    t = table(ProcessingLog)
    query = sa_select(t).order_by(t.c.id)
    if since is not None:
        query = query.where(t.c.at >= since)
    return [
        {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r._mapping.items()}
        for r in s.connection().execute(query)
    ]
