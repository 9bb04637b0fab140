"""How fast the campaign engine takes in checkouts and decides whom to call.

1. Webhook intake: signed Shopify ``checkouts/create`` deliveries POSTed to a real
   ``aiohttp`` server (the one ``cartline serve`` runs), each verified, parsed,
   normalised and stored with its call job, on SQLite and on PostgreSQL. The
   client runs in the same process, so the rate is a lower bound.
2. Scheduling: 100,000 abandoned checkouts in the database (a realistic mix:
   consent or not, do-not-call, numbers across US time zones, some in states with
   stricter hours), then the scheduler's pass over all of them: every rule applied,
   every job that may not be called now moved or closed with its reason.

The last line is one JSON object.

    scripts/bench-campaigns [--webhooks 3000] [--checkouts 100000] [--postgres-url URL]

Without --postgres-url a throwaway PostgreSQL server is started when Debian's
postgresql package is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.campaigns.inbox import Inbox  # noqa: E402
from agent.campaigns.intake import Intake  # noqa: E402
from agent.campaigns.jobs import plan_due  # noqa: E402
from agent.campaigns.localtime import locate  # noqa: E402
from agent.campaigns.placement import CallRequest, CallResult  # noqa: E402
from agent.campaigns.scheduler import Scheduler  # noqa: E402
from agent.config import Settings, parse_settings  # noqa: E402
from agent.store.db import Database  # noqa: E402
from agent.store.tables import (  # noqa: E402
    CallJob,
    Checkout,
    Consent,
    Contact,
    DoNotCall,
    JobState,
)
from agent.web.app import make_web_app  # noqa: E402

SECRET = "bench-secret"
SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "campaigns" / "data"
# Area codes across the US time zones, and states with stricter calling rules.
AREAS = [
    ("212", "NY"), ("305", "FL"), ("312", "IL"), ("214", "TX"), ("303", "CO"),
    ("602", "AZ"), ("415", "CA"), ("206", "WA"), ("907", "AK"), ("808", "HI"),
    ("401", "RI"), ("405", "OK"),
]  # fmt: skip


class NoCalls:
    async def place_call(self, request: CallRequest) -> CallResult:
        raise RuntimeError("the benchmark places no calls")


class BenchServer:
    """What the web application needs of a server, with a scheduler that places no calls."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.inbox = Inbox(db, Intake(db, settings))
        self.scheduler = Scheduler(db, settings.scheduler, settings.campaigns, NoCalls())
        self.ready = True
        self.db = db
        self.settings = settings
        self.keys = None


def _payloads(n: int, seed: int) -> list[bytes]:
    base: dict[str, Any] = json.loads((SAMPLE / "shopify_checkout.json").read_text())
    now = dt.datetime.now(dt.UTC).isoformat()
    out = []
    for i in range(n):
        area, _ = AREAS[i % len(AREAS)]
        body = dict(base, id=seed * 10**7 + i, token=f"bench-{seed}-{i}", updated_at=now)
        body["phone"] = f"+1{area}555{i % 10000:04d}"
        out.append(json.dumps(body).encode())
    return out


async def bench_webhooks(url: str, n: int, concurrency: int) -> dict[str, float]:
    settings = parse_settings({"intake": {"shopify_secret": SECRET}})
    db = Database(url)
    await asyncio.to_thread(db.migrate)
    locate(None, "+12125550100")  # load the number-to-place tables before the clock starts
    served = BenchServer(db, settings)
    # Only the inbox's writer runs while the deliveries arrive, so the acceptance
    # rate is measured alone; applying the inbox is timed after.
    served.inbox.start(apply=False)
    runner = web.AppRunner(make_web_app(served), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    # The store's side runs in a process of its own, as a store would.
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        f"{port},{n},{concurrency},{random.randrange(1, 10**6)}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await client.communicate()
    sent = json.loads(out)
    elapsed, failures = sent["seconds"], sent["failures"]
    await runner.cleanup()
    await served.inbox.stop()
    started = time.perf_counter()
    applied = await served.inbox.apply_pending()
    apply_s = time.perf_counter() - started
    await asyncio.to_thread(db.close)
    if failures:
        raise SystemExit(f"{failures} webhook(s) were refused")
    if applied.checkouts != n:
        raise SystemExit(f"{applied.checkouts} of {n} deliveries were applied")
    return {
        "webhooks": n,
        "accept_s": round(elapsed, 2),
        "accepted_per_s": round(n / elapsed, 1),
        "apply_s": round(apply_s, 2),
        "applied_per_s": round(n / apply_s, 1),
    }


async def _send(port: int, n: int, concurrency: int, seed: int) -> dict[str, float]:
    """The store's side: keep-alive HTTP/1.1 connections written by hand.

    aiohttp's client spends more CPU per request than the server under test, and
    on two cores it would measure itself.
    """
    requests = []
    for body in _payloads(n, seed):
        sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        head = (
            "POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nX-Shopify-Topic: checkouts/create\r\n"
            f"X-Shopify-Hmac-Sha256: {sig}\r\n"
            f"X-Shopify-Webhook-Id: {hashlib.sha1(body).hexdigest()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    requests.reverse()
    failures = 0

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while requests:
            writer.write(requests.pop())
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            failures += b" 200 " not in status
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return {"seconds": time.perf_counter() - started, "failures": failures}


def _bulk_load(db: Database, n: int, now: dt.datetime) -> None:
    """Writes n checkouts with contacts, consents and due jobs, straight into the tables."""
    rng = random.Random(7)
    contacts, checkouts, consents, jobs, dnc = [], [], [], [], []
    for i in range(1, n + 1):
        area, state = AREAS[i % len(AREAS)]
        phone = f"+1{area}{2_000_000 + i:07d}"
        contacts.append(
            {
                "id": i, "phone_e164": phone, "country": "US", "region": state,
                "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
        checkouts.append(
            {
                "id": i, "source": "bench", "external_id": str(i), "contact_id": i,
                "items": [{"title": "Item", "quantity": 1, "unit_price": "49.00"}],
                "total": 49, "currency": "USD", "abandoned_at": now - dt.timedelta(hours=1),
                "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
        if rng.random() < 0.9:  # a tenth gave no consent to be called
            consents.append(
                {
                    "contact_id": i, "channel": "call", "granted": True,
                    "text_version": "v1", "source": "bench",
                    "captured_at": now - dt.timedelta(days=1), "recorded_at": now,
                }
            )  # fmt: skip
        if rng.random() < 0.03:
            dnc.append({"phone_e164": contacts[-1]["phone_e164"], "reason": "imported",
                        "source": "bench", "created_at": now})  # fmt: skip
        jobs.append(
            {
                "campaign": "checkout-recovery", "checkout_id": i, "contact_id": i,
                "state": JobState.PENDING, "due_at": now - dt.timedelta(minutes=30),
                "attempts": 0, "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
    with db.session() as s:
        for table, rows in (
            (Contact, contacts),
            (Checkout, checkouts),
            (Consent, consents),
            (DoNotCall, dnc),
            (CallJob, jobs),
        ):
            for k in range(0, len(rows), 5000):
                s.execute(insert(table), rows[k : k + 5000])


def bench_scheduling(url: str, n: int, now: dt.datetime) -> dict[str, float]:
    settings = parse_settings({})
    db = Database(url)
    db.migrate()
    t0 = time.perf_counter()
    _bulk_load(db, n, now)
    load_s = time.perf_counter() - t0
    campaigns = {c.name: c for c in settings.campaigns}
    # The number-to-place tables load once per process (about a second); a running
    # server has them already, so they are loaded before the clock starts.
    locate(None, "+12125550100")
    ready = held = 0
    last = 0
    t1 = time.perf_counter()
    while True:
        last, r, h = db.call(partial(plan_due, now=now, campaigns=campaigns, after_id=last))
        if last == 0:
            break
        ready += r
        held += h
    plan_s = time.perf_counter() - t1
    db.close()
    return {
        "checkouts": n,
        "bulk_load_s": round(load_s, 2),
        "schedule_s": round(plan_s, 2),
        "per_s": round(n / plan_s),
        "ready_to_call": ready,
        "held_or_closed": held,
    }


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    try:
        from tests.postgres import postgres_server

        with postgres_server() as started:
            yield started
    except RuntimeError as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        yield None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--checkouts", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        port, n, concurrency, seed = (int(x) for x in args.client.split(","))
        print(json.dumps(asyncio.run(_send(port, n, concurrency, seed))))
        return 0
    # 15:00 UTC on a Tuesday: morning or midday across the US, early morning in Hawaii.
    now = dt.datetime(2026, 6, 2, 15, 0, tzinfo=dt.UTC)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, _postgres(args.postgres_url) as pg:
        sqlite = f"sqlite:///{tmp}/bench.db"
        print(f"webhook intake on SQLite ({args.webhooks} deliveries) ...", file=sys.stderr)
        figures["webhooks_sqlite"] = asyncio.run(
            bench_webhooks(sqlite, args.webhooks, args.concurrency)
        )
        print(f"  {figures['webhooks_sqlite']}", file=sys.stderr)
        if pg:
            print("webhook intake on PostgreSQL ...", file=sys.stderr)
            figures["webhooks_postgresql"] = asyncio.run(
                bench_webhooks(pg, args.webhooks, args.concurrency)
            )
            print(f"  {figures['webhooks_postgresql']}", file=sys.stderr)
        print(f"scheduling {args.checkouts} checkouts on SQLite ...", file=sys.stderr)
        figures["schedule_sqlite"] = bench_scheduling(
            f"sqlite:///{tmp}/sched.db", args.checkouts, now
        )
        print(f"  {figures['schedule_sqlite']}", file=sys.stderr)
        if pg:
            from tests.postgres import reset_database

            reset_database(pg)
            print(f"scheduling {args.checkouts} checkouts on PostgreSQL ...", file=sys.stderr)
            figures["schedule_postgresql"] = bench_scheduling(pg, args.checkouts, now)
            print(f"  {figures['schedule_postgresql']}", file=sys.stderr)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
