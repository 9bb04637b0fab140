"""The job queue's transactions: claim due jobs and decide each, and record how a call ended.

Pure of asyncio: each function takes a session and runs inside one transaction.
A call is written as an attempt *before* it is dialled and committed with the
claim, so a crash never hides a call: on restart the attempt is found open and
counted as interrupted instead of being dialled again at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from agent.campaigns.eligibility import (
    IN_CALL_RECHECK,
    CallRules,
    Candidate,
    Reason,
    Verdict,
    evaluate,
)
from agent.campaigns.localtime import CallingWindow
from agent.campaigns.placement import CallRequest
from agent.campaigns.records import Address, Channel
from agent.campaigns.records import Consent as ConsentRecord
from agent.campaigns.settings import CampaignSettings
from agent.store import repository as repo
from agent.store.tables import (
    AttemptStatus,
    CallAttempt,
    CallJob,
    Checkout,
    Contact,
    Decision,
    JobState,
    table,
)

log = logging.getLogger(__name__)

# Outcomes of an answered call after which the checkout is never called again.
FINAL_OUTCOMES = frozenset(
    {"opted_out", "declined", "purchased", "wrong_person", "completed", "not_interested"}
)
RETRY_WAITS = {
    AttemptStatus.BUSY: "busy_min",
    AttemptStatus.NO_ANSWER: "no_answer_min",
    AttemptStatus.VOICEMAIL: "voicemail_min",
    AttemptStatus.FAILED: "failed_min",
    AttemptStatus.INTERRUPTED: "interrupted_min",
}


def call_rules(c: CampaignSettings) -> CallRules:
    return CallRules(
        window=CallingWindow(c.window_start, c.window_end),
        quiet_weekdays=c.quiet_weekday_numbers,
        quiet_dates=frozenset(c.quiet_dates),
        max_attempts=c.max_attempts,
        min_spacing=dt.timedelta(minutes=c.min_spacing_min),
        max_calls_per_24h=c.max_calls_per_24h,
        consent_channel=Channel.CALL,
        consent_max_age=(
            dt.timedelta(days=c.consent_max_age_days) if c.consent_max_age_days else None
        ),
    )


def decide(s: Session, job: CallJob, action: str, reason: str, now: dt.datetime, **kw: Any) -> None:
    s.add(
        Decision(
            checkout_id=job.checkout_id,
            campaign=job.campaign,
            action=action,
            reason=reason,
            at=now,
            **kw,
        )
    )


class _Job(NamedTuple):
    id: int
    campaign: str
    checkout_id: int
    contact_id: int
    attempts: int


class _Person(NamedTuple):
    phone_e164: str | None
    phone_error: str | None
    address: Address


@dataclass
class _Batch:
    """Everything the rules need for a batch of jobs, loaded with a handful of plain queries.

    Plain rows rather than ORM objects: a pass over 100,000 jobs spends its time here.
    """

    people: dict[int, _Person]
    purchased: set[int]
    consents: dict[int, tuple[ConsentRecord, ...]]
    dnc: set[str]
    job_attempts: dict[int, list[dt.datetime]]
    contact_calls: dict[int, list[dt.datetime]]
    open_calls: set[int]


def _id_list(ids: set[int]) -> str:
    # Integers read from the database, written into the SQL: binding 2,000
    # parameters costs more than running the query.
    return ",".join(str(int(i)) for i in ids) or "NULL"


def _utc(value: Any) -> dt.datetime:
    # Driver values: SQLite gives text, PostgreSQL a naive datetime; both are UTC.
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, dt.datetime)
    return moment.replace(tzinfo=dt.UTC)


def _load(s: Session, jobs: list[_Job], now: dt.datetime) -> _Batch:
    """Loads what the rules need for ``jobs`` in three plain SQL queries.

    A pass over 100,000 jobs spends its time here, so the rows come straight from
    the driver, without ORM or type processing.
    """
    sql = s.connection().exec_driver_sql
    job_ids = {j.id for j in jobs}
    contacts = _id_list({j.contact_id for j in jobs})
    people: dict[int, _Person] = {}
    purchased: set[int] = set()
    dnc: set[str] = set()
    for cid, phone, error, country, region, postal, city, kid, done, blocked in sql(
        "SELECT c.id, c.phone_e164, c.phone_error, c.country, c.region, c.postal_code, c.city,"
        " k.id, k.completed_at IS NOT NULL, d.id IS NOT NULL"
        " FROM call_jobs j JOIN contacts c ON c.id = j.contact_id"
        " JOIN checkouts k ON k.id = j.checkout_id"
        " LEFT JOIN do_not_call d ON d.phone_e164 = c.phone_e164"
        f" WHERE j.id IN ({_id_list(job_ids)})"
    ):
        people[cid] = _Person(phone, error, Address(country, region, postal, city))
        if done:
            purchased.add(kid)
        if blocked and phone:
            dnc.add(phone)
    consents: dict[int, list[ConsentRecord]] = defaultdict(list)
    channels = {c.value: c for c in Channel}
    for contact_id, channel, granted, version, captured_at, source in sql(
        "SELECT contact_id, channel, granted, text_version, captured_at, source FROM consents"
        f" WHERE contact_id IN ({contacts})"
    ):
        consents[contact_id].append(
            ConsentRecord(channels[channel], bool(granted), version, _utc(captured_at), source)
        )
    job_attempts: dict[int, list[dt.datetime]] = defaultdict(list)
    contact_calls: dict[int, list[dt.datetime]] = defaultdict(list)
    open_calls: set[int] = set()
    since = now - dt.timedelta(days=2)
    for job_id, contact_id, started, ended in sql(
        "SELECT job_id, contact_id, started_at, ended_at FROM call_attempts"
        f" WHERE contact_id IN ({contacts})"
    ):
        started_at = _utc(started)
        if job_id in job_ids:
            job_attempts[job_id].append(started_at)
        if started_at >= since:
            contact_calls[contact_id].append(started_at)
        if ended is None:
            open_calls.add(contact_id)
    return _Batch(
        people,
        purchased,
        {k: tuple(v) for k, v in consents.items()},
        dnc,
        job_attempts,
        contact_calls,
        open_calls,
    )


def _sorted(times: list[dt.datetime] | None) -> tuple[dt.datetime, ...]:
    return tuple(sorted(times)) if times else ()


def _candidate(job: _Job, data: _Batch) -> Candidate:
    person = data.people[job.contact_id]
    return Candidate(
        phone_e164=person.phone_e164,
        phone_error=person.phone_error,
        address=person.address,
        consents=data.consents.get(job.contact_id, ()),
        on_do_not_call=person.phone_e164 in data.dnc,
        purchased=job.checkout_id in data.purchased,
        in_active_call=job.contact_id in data.open_calls,
        job_attempts=_sorted(data.job_attempts.get(job.id)),
        contact_calls=_sorted(data.contact_calls.get(job.contact_id)),
    )


@dataclass
class _Holds:
    """Jobs that may not be called now, written back together at the end of a batch."""

    moved: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def add(self, job: _Job, verdict: Verdict, now: dt.datetime) -> None:
        reason = verdict.reason.value
        if verdict.retry_at is None:
            self.moved.append(
                {"id": job.id, "state": JobState.DONE, "result": reason, "last_reason": reason,
                 "updated_at": now}
            )  # fmt: skip
            action = "close"
        else:
            self.moved.append(
                {"id": job.id, "state": JobState.PENDING, "result": None,
                 "due_at": verdict.retry_at, "last_reason": reason, "updated_at": now}
            )  # fmt: skip
            action = "wait"
        self.decisions.append(
            {"checkout_id": job.checkout_id, "campaign": job.campaign, "action": action,
             "reason": reason, "detail": verdict.detail, "retry_at": verdict.retry_at, "at": now}
        )  # fmt: skip

    def write(self, s: Session) -> None:
        # Plain executemany statements: one round trip per kind, not one per job.
        jobs = table(CallJob)
        conn = s.connection()
        closed = [m for m in self.moved if "due_at" not in m]
        waiting = [m for m in self.moved if "due_at" in m]
        for rows in (closed, waiting):
            if rows:
                values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in rows[0] if k != "id"}
                stmt = update(jobs).where(jobs.c.id == bindparam("v_id")).values(values)
                conn.execute(stmt, [{f"v_{k}": v for k, v in r.items()} for r in rows])
        if self.decisions:
            conn.execute(insert(table(Decision)), self.decisions)


def _due(now: dt.datetime, campaigns: list[str]) -> Any:
    job = table(CallJob).c
    return and_(job.state == JobState.PENDING.value, job.due_at <= now, job.campaign.in_(campaigns))


def _due_jobs(
    s: Session,
    now: dt.datetime,
    campaigns: dict[str, CampaignSettings],
    batch_size: int,
    after_id: int = 0,
    by_id: bool = False,
) -> list[_Job]:
    paused = repo.paused_campaigns(s)
    active = [n for n, c in campaigns.items() if c.enabled and n not in paused]
    if not active:
        return []
    job = table(CallJob).c
    rows = s.connection().execute(
        sa_select(job.id, job.campaign, job.checkout_id, job.contact_id, job.attempts)
        .where(_due(now, active), job.id > after_id)
        .order_by(*((job.id,) if by_id else (job.due_at, job.id)))
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    return [_Job(*row) for row in rows]


def plan_due(
    s: Session,
    now: dt.datetime,
    campaigns: dict[str, CampaignSettings],
    *,
    batch_size: int = 2000,
    after_id: int = 0,
) -> tuple[int, int, int]:
    """Applies the rules to one batch of due jobs without dialling: returns (last id, ready, held).

    Jobs that may not be called are moved or closed (with their why-log entry);
    jobs that may be called stay due for :func:`claim_due`. Call again with the
    returned id until it returns 0, to go through the whole queue.
    """
    jobs = _due_jobs(s, now, campaigns, batch_size, after_id, by_id=True)
    if not jobs:
        return 0, 0, 0
    data = _load(s, jobs, now)
    rules = {n: call_rules(c) for n, c in campaigns.items()}
    holds = _Holds()
    ready = 0
    for job in jobs:
        verdict = evaluate(_candidate(job, data), rules[job.campaign], now)
        if verdict.allowed:
            ready += 1
        else:
            holds.add(job, verdict, now)
    holds.write(s)
    return jobs[-1].id, ready, len(holds.moved)


def claim_due(
    s: Session,
    now: dt.datetime,
    *,
    limit: int,
    server_id: str,
    campaigns: dict[str, CampaignSettings],
    batch_size: int = 500,
) -> tuple[list[CallRequest], int]:
    """Decides due jobs until ``limit`` calls are ready to dial; returns them and jobs decided.

    Jobs that may not be called yet move to the time they may; jobs that may never
    be called are closed; each decision goes to the why log. On PostgreSQL the rows
    are locked with ``FOR UPDATE SKIP LOCKED`` so several servers never take the same job.
    """
    if limit <= 0:
        return [], 0
    jobs = _due_jobs(s, now, campaigns, batch_size)
    if not jobs:
        return [], 0
    data = _load(s, jobs, now)
    rules = {n: call_rules(c) for n, c in campaigns.items()}
    holds = _Holds()
    ready: list[CallRequest] = []
    decided = 0
    for job in jobs:
        if len(ready) >= limit:
            break
        decided += 1
        verdict = evaluate(_candidate(job, data), rules[job.campaign], now)
        if verdict.allowed and not _contact_free(s, job.contact_id):
            verdict = Verdict(False, Reason.IN_CALL, now + IN_CALL_RECHECK, "on another call")
        if not verdict.allowed:
            holds.add(job, verdict, now)
            continue
        fields = frozenset(campaigns[job.campaign].customer_fields)
        ready.append(_start_attempt(s, job, server_id, now, fields))
        data.open_calls.add(job.contact_id)  # one call per person at a time, within a batch too
    holds.write(s)
    return ready, decided


def _contact_free(s: Session, contact_id: int) -> bool:
    """No call to this contact is open, checked under the contact's row lock.

    On PostgreSQL the lock makes a second server wait until the first has committed
    its attempt, and then see it: one call per person, whichever server dials.
    """
    s.exec(select(Contact.id).where(Contact.id == contact_id).with_for_update()).first()
    return repo.open_attempts(s, contact_id) == 0


def _start_attempt(
    s: Session, row: _Job, server_id: str, now: dt.datetime, fields: frozenset[str]
) -> CallRequest:
    job = s.get(CallJob, row.id)
    checkout = s.get(Checkout, row.checkout_id)
    contact = s.get(Contact, row.contact_id)
    assert job is not None and checkout is not None and contact is not None
    assert contact.id is not None and contact.phone_e164 is not None and checkout.id is not None
    attempt = CallAttempt(
        job_id=row.id,
        contact_id=contact.id,
        campaign=job.campaign,
        server_id=server_id,
        call_id=f"cl-{uuid.uuid4().hex}",
        started_at=now,
    )
    s.add(attempt)
    job.state = JobState.DIALING
    job.attempts += 1
    job.last_reason = Reason.OK.value
    job.updated_at = now
    s.add(job)
    decide(s, job, "call", Reason.OK.value, now, detail=f"attempt {job.attempts}")
    s.flush()
    assert attempt.id is not None
    # Only the fields the campaign allows reach the conversation (and so the model).
    return CallRequest(
        attempt_id=attempt.id,
        job_id=row.id,
        campaign=job.campaign,
        phone_e164=contact.phone_e164,
        checkout_id=checkout.id,
        first_name=contact.first_name if "first_name" in fields else None,
        last_name=contact.last_name if "last_name" in fields else None,
        city=contact.city if "city" in fields else None,
        items=list(checkout.items) if "items" in fields else [],
        total=str(checkout.total) if "total" in fields else None,
        currency=checkout.currency,
        checkout_url=checkout.checkout_url if "checkout_url" in fields else None,
    )
