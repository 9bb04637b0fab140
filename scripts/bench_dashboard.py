"""How fast the dashboard's pages answer with 100,000 calls stored.

The database is filled straight through the tables (bulk Core inserts): contacts,
checkouts with their jobs and why-log entries, calls over the last 90 days with a
realistic mix of how they ended, outcomes, transcripts, orders credited to calls.
Then each page is requested over HTTP from the real application, signed in as an
owner (so the access check, the processing-log write and the rendering are all
counted), several times; the median is reported.

The last line is one JSON object.

    scripts/bench-dashboard [--calls 100000] [--runs 7] [--postgres URL|auto]

``--postgres auto`` starts a throwaway PostgreSQL server when Debian's postgresql
package is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.config import Settings, parse_settings  # noqa: E402
from agent.store.db import Database  # noqa: E402
from agent.store.tables import (  # noqa: E402
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Consent,
    Contact,
    Decision,
    Order,
    Outcome,
    Transcript,
)
from agent.web import accounts, auth  # noqa: E402
from agent.web.access import Role  # noqa: E402
from agent.web.app import make_web_app  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_campaigns import BenchServer  # noqa: E402

CAMPAIGNS = ("checkout-recovery", "winback")
STATUSES = [
    ("answered", 0.35),
    ("no_answer", 0.30),
    ("voicemail", 0.15),
    ("busy", 0.10),
    ("failed", 0.10),
]
OUTCOMES = ["interested", "purchased", "declined", "callback", "not_interested", "opted_out"]
TURNS = [
    {"speaker": "agent", "text": "Hi, this is the shop about the cart you left.", "start_ms": 0},
    {"speaker": "customer", "text": "Oh yes, I meant to finish that.", "start_ms": 2100},
    {"speaker": "agent", "text": "I can text you the link now.", "start_ms": 4300},
]
PASSWORD = "bench password long enough"


def _status(rng: random.Random) -> str:
    x = rng.random()
    for status, share in STATUSES:
        if x < share:
            return status
        x -= share
    return STATUSES[-1][0]


def seed(db: Database, calls: int, now: dt.datetime) -> dict[str, int]:
    """Writes ``calls`` calls and everything around them; returns how many of each."""
    rng = random.Random(11)
    n_contacts = calls // 2
    n_checkouts = calls * 7 // 10
    rows: dict[type, list[dict[str, Any]]] = {
        t: []
        for t in (Contact, Consent, Checkout, CallJob, Decision, CallAttempt, Outcome,
                  Transcript, Order, Attribution)
    }  # fmt: skip
    for i in range(1, n_contacts + 1):
        rows[Contact].append(
            {"id": i, "phone_e164": f"+1212{3_000_000 + i:07d}", "email": f"c{i}@mail.example",
             "first_name": f"Name{i}", "last_name": "Bench", "country": "US", "region": "NY",
             "created_at": now, "updated_at": now}
        )  # fmt: skip
        rows[Consent].append(
            {"contact_id": i, "channel": "call", "granted": True, "text_version": "v1",
             "source": "bench", "captured_at": now - dt.timedelta(days=100), "recorded_at": now}
        )  # fmt: skip
    for k in range(1, n_checkouts + 1):
        contact = rng.randint(1, n_contacts)
        campaign = CAMPAIGNS[k % len(CAMPAIGNS)]
        abandoned = now - dt.timedelta(minutes=rng.randint(60, 90 * 24 * 60))
        rows[Checkout].append(
            {"id": k, "source": "bench", "external_id": str(k), "contact_id": contact,
             "campaign": campaign, "items": [{"title": "Item", "quantity": 1, "price": "49.00"}],
             "total": 49, "currency": "USD", "abandoned_at": abandoned, "created_at": abandoned,
             "updated_at": abandoned}
        )  # fmt: skip
        rows[CallJob].append(
            {"id": k, "campaign": campaign, "checkout_id": k, "contact_id": contact,
             "state": "done", "due_at": abandoned, "attempts": 0, "created_at": abandoned,
             "updated_at": abandoned}
        )  # fmt: skip
    order_id = 0
    for a in range(1, calls + 1):
        job = rows[CallJob][rng.randrange(n_checkouts)]
        job["attempts"] += 1
        checkout = rows[Checkout][job["id"] - 1]
        started = checkout["abandoned_at"] + dt.timedelta(minutes=30 * job["attempts"])
        status = _status(rng)
        answered = started + dt.timedelta(seconds=12) if status == "answered" else None
        rows[CallAttempt].append(
            {"id": a, "job_id": job["id"], "contact_id": job["contact_id"],
             "campaign": job["campaign"], "server_id": "bench", "call_id": f"cl-{a}",
             "status": status, "started_at": started, "answered_at": answered,
             "ended_at": started + dt.timedelta(seconds=rng.randint(20, 240))}
        )  # fmt: skip
        rows[Decision].append(
            {"checkout_id": job["checkout_id"], "campaign": job["campaign"], "action": "call",
             "reason": "ok", "detail": f"attempt {job['attempts']}", "at": started}
        )  # fmt: skip
        if status in ("answered", "voicemail"):
            code = rng.choice(OUTCOMES) if status == "answered" else "voicemail"
            rows[Outcome].append(
                {"attempt_id": a, "code": code, "note": {"summary": "bench"}, "created_at": started}
            )
        if status == "answered":
            rows[Transcript].append({"attempt_id": a, "turns": TURNS, "created_at": started})
            if rng.random() < 0.2:
                order_id += 1
                ordered = started + dt.timedelta(hours=rng.randint(1, 48))
                amount = rng.choice([29, 49, 120, 250])
                rows[Order].append(
                    {"id": order_id, "source": "bench", "external_id": f"o{order_id}",
                     "checkout_id": job["checkout_id"], "contact_id": job["contact_id"],
                     "total": amount, "currency": "USD", "ordered_at": ordered,
                     "received_at": ordered}
                )  # fmt: skip
                rows[Attribution].append(
                    {"order_id": order_id, "attempt_id": a, "campaign": job["campaign"],
                     "amount": amount, "currency": "USD", "created_at": ordered}
                )  # fmt: skip
    with db.session() as s:
        for model, batch in rows.items():
            for k in range(0, len(batch), 5000):
                s.execute(insert(model), batch[k : k + 5000])
    if not db.is_sqlite:
        # A running PostgreSQL has its planner statistics from autovacuum; a table filled a
        # moment ago has none yet. (SQLite gathers none unless asked, in production too.)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {model.__tablename__: len(batch) for model, batch in rows.items()}  # type: ignore[attr-defined]


async def time_pages(db: Database, settings: Settings, calls: int, runs: int) -> dict[str, float]:
    """The median milliseconds of each page, requested over HTTP by a signed-in owner."""

    def owner(s: Any) -> str:
        user = accounts.add_user(s, "owner@bench.example", PASSWORD, Role.OWNER)
        assert user.id is not None
        key, _ = auth.new_session(s, user.id, mfa_passed=True)
        return key

    key = await db.run(owner)
    today = dt.datetime.now(dt.UTC).date()
    pages = {
        "overview (30 days)": "/",
        "overview (90 days)": f"/?from={today - dt.timedelta(days=89)}",
        "campaigns": "/campaigns",
        "calls, first page": "/calls",
        "calls, deep page": f"/calls?before={calls // 100}",
        "calls, answered, filtered": "/calls?status=answered&campaign=winback",
        "a call": f"/calls/{calls // 2}",
        "contacts, first page": "/contacts",
        "contacts, search": "/contacts?q=name123",
        "a contact": f"/contacts/{calls // 5}",
        "compliance": "/compliance",
    }
    medians: dict[str, float] = {}
    app = make_web_app(BenchServer(db, settings))
    async with TestClient(TestServer(app)) as client:
        headers = {"Cookie": f"{auth.SESSION_COOKIE}={key}"}
        for name, path in pages.items():
            took = []
            for run in range(runs + 1):
                t0 = time.perf_counter()
                r = await client.get(path, headers=headers, allow_redirects=False)
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{path} answered {r.status}")
                if run:  # the first run warms the caches and compiles the template
                    took.append((time.perf_counter() - t0) * 1000)
            medians[name] = round(statistics.median(took), 1)
            print(f"  {name:28} {medians[name]:8.1f} ms", file=sys.stderr)
    return medians


def bench(url: str, calls: int, runs: int) -> dict[str, Any]:
    settings = parse_settings({"campaigns": [{"name": n} for n in CAMPAIGNS]})
    db = Database(url)
    db.migrate()
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    counts = seed(db, calls, now)
    load_s = time.perf_counter() - t0
    print(f"  seeded {counts} in {load_s:.1f} s", file=sys.stderr)
    pages = asyncio.run(time_pages(db, settings, calls, runs))
    db.close()
    return {"rows": counts, "seed_s": round(load_s, 1), "pages_ms": pages}


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    if url != "auto":
        yield url
        return
    try:
        from tests.postgres import postgres_server

        with postgres_server() as started:
            yield started
    except RuntimeError as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        yield None


def _table(figures: dict[str, Any]) -> str:
    names = list(next(iter(figures.values()))["pages_ms"])
    dbs = list(figures)
    lines = [f"{'page':28} " + " ".join(f"{d:>12}" for d in dbs)]
    for name in names:
        cells = " ".join(f"{figures[d]['pages_ms'][name]:>9.1f} ms" for d in dbs)
        lines.append(f"{name:28} {cells}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", default=None, help="a database URL, or 'auto'")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, _postgres(args.postgres) as pg:
        print(f"SQLite, {args.calls} calls ...", file=sys.stderr)
        figures["sqlite"] = bench(f"sqlite:///{tmp}/dashboard.db", args.calls, args.runs)
        if pg:
            print(f"PostgreSQL, {args.calls} calls ...", file=sys.stderr)
            figures["postgresql"] = bench(pg, args.calls, args.runs)
    print(_table(figures))
    print(json.dumps({"calls": args.calls, "runs": args.runs, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
