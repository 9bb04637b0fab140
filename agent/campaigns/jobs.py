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
from typing import Any

from sqlmodel import Session, col, or_, select

from agent.campaigns.eligibility import CallRules, Candidate, Reason, Verdict, evaluate
from agent.campaigns.localtime import CallingWindow
from agent.campaigns.records import Address, Channel
from agent.campaigns.records import Consent as ConsentRecord
from agent.campaigns.settings import CampaignSettings
from agent.store import repository as repo
from agent.store.tables import (
    AttemptStatus,
    CallAttempt,
    CallJob,
    Checkout,
    Consent,
    Contact,
    Decision,
    DoNotCall,
    JobState,
    Outcome,
    Recording,
    Transcript,
)

log = logging.getLogger(__name__)

# Outcomes of an answered call after which the checkout is never called again.
FINAL_OUTCOMES = frozenset(
    {"opted_out", "declined", "purchased", "wrong_person", "completed", "not_interested"}
)
IN_CALL_RECHECK = dt.timedelta(minutes=2)
_RETRYABLE = {
    AttemptStatus.BUSY: "busy_min",
    AttemptStatus.NO_ANSWER: "no_answer_min",
    AttemptStatus.VOICEMAIL: "voicemail_min",
    AttemptStatus.FAILED: "failed_min",
    AttemptStatus.INTERRUPTED: "interrupted_min",
}


@dataclass(frozen=True)
class CallRequest:
    """What the dialer needs to place one call and what the conversation may know."""

    attempt_id: int
    job_id: int
    campaign: str
    phone_e164: str
    checkout_id: int
    first_name: str | None
    items: list[dict[str, Any]]
    total: str
    currency: str
    checkout_url: str | None


@dataclass(frozen=True)
class CallResult:
    """How a call ended. ``outcome`` is the conversation's verdict on an answered call."""

    status: AttemptStatus
    call_id: str | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    hangup_cause: int | None = None
    amd: str | None = None
    outcome: str | None = None
    note: dict[str, Any] = field(default_factory=dict)
    turns: list[dict[str, Any]] = field(default_factory=list)
    recording: str | None = None  # the mixed recording's path on this machine
    recording_bytes: int = 0


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


def _decide(
    s: Session, job: CallJob, action: str, reason: str, now: dt.datetime, **kw: Any
) -> None:
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


@dataclass
class _Batch:
    """Everything the rules need for a batch of jobs, loaded with a handful of queries."""

    checkouts: dict[int, Checkout]
    contacts: dict[int, Contact]
    consents: dict[int, list[ConsentRecord]]
    dnc: set[str]
    job_attempts: dict[int, list[dt.datetime]]
    contact_calls: dict[int, list[dt.datetime]]
    open_calls: set[int]


def _load(s: Session, jobs: list[CallJob], now: dt.datetime) -> _Batch:
    checkout_ids = {j.checkout_id for j in jobs}
    contact_ids = {j.contact_id for j in jobs}
    job_ids = {j.id for j in jobs if j.id is not None}
    checkouts = {
        c.id: c
        for c in s.exec(select(Checkout).where(col(Checkout.id).in_(checkout_ids))).all()
        if c.id is not None
    }
    contacts = {
        c.id: c
        for c in s.exec(select(Contact).where(col(Contact.id).in_(contact_ids))).all()
        if c.id is not None
    }
    consents: dict[int, list[ConsentRecord]] = defaultdict(list)
    for row in s.exec(select(Consent).where(col(Consent.contact_id).in_(contact_ids))).all():
        consents[row.contact_id].append(
            ConsentRecord(
                channel=Channel(row.channel),
                granted=row.granted,
                text_version=row.text_version,
                captured_at=row.captured_at,
                source=row.source,
            )
        )
    phones = [c.phone_e164 for c in contacts.values() if c.phone_e164]
    dnc = set(s.exec(select(DoNotCall.phone_e164).where(col(DoNotCall.phone_e164).in_(phones))))
    job_attempts: dict[int, list[dt.datetime]] = defaultdict(list)
    contact_calls: dict[int, list[dt.datetime]] = defaultdict(list)
    open_calls: set[int] = set()
    since = now - dt.timedelta(days=2)
    rows = s.exec(
        select(
            CallAttempt.job_id, CallAttempt.contact_id, CallAttempt.started_at, CallAttempt.ended_at
        ).where(
            col(CallAttempt.contact_id).in_(contact_ids)
            & ((col(CallAttempt.started_at) >= since) | col(CallAttempt.job_id).in_(job_ids))
        )
    ).all()
    for job_id, contact_id, started_at, ended_at in rows:
        if job_id in job_ids:
            job_attempts[job_id].append(started_at)
        if started_at >= since:
            contact_calls[contact_id].append(started_at)
        if ended_at is None:
            open_calls.add(contact_id)
    return _Batch(checkouts, contacts, consents, dnc, job_attempts, contact_calls, open_calls)


def _candidate(job: CallJob, data: _Batch) -> Candidate:
    checkout = data.checkouts[job.checkout_id]
    contact = data.contacts[job.contact_id]
    assert job.id is not None and contact.id is not None
    return Candidate(
        phone_e164=contact.phone_e164,
        phone_error=contact.phone_error,
        address=Address(contact.country, contact.region, contact.postal_code, contact.city),
        consents=tuple(data.consents.get(contact.id, ())),
        on_do_not_call=contact.phone_e164 in data.dnc,
        purchased=checkout.completed_at is not None,
        in_active_call=contact.id in data.open_calls,
        job_attempts=tuple(sorted(data.job_attempts.get(job.id, ()))),
        contact_calls=tuple(sorted(data.contact_calls.get(contact.id, ()))),
    )


def _hold(s: Session, job: CallJob, verdict: Verdict, now: dt.datetime) -> None:
    """A job that may not be called now: closed for good, or moved to when it may."""
    if verdict.retry_at is None:
        repo.close_job(s, job, verdict.reason.value, now, verdict.detail)
        return
    job.due_at = verdict.retry_at
    job.last_reason = verdict.reason.value
    job.updated_at = now
    s.add(job)
    _decide(
        s, job, "wait", verdict.reason.value, now, detail=verdict.detail, retry_at=verdict.retry_at
    )


def _due_jobs(
    s: Session,
    now: dt.datetime,
    campaigns: dict[str, CampaignSettings],
    batch_size: int,
    after_id: int = 0,
) -> list[CallJob]:
    paused = repo.paused_campaigns(s)
    active = [n for n, c in campaigns.items() if c.enabled and n not in paused]
    if not active:
        return []
    return list(
        s.exec(
            select(CallJob)
            .where(
                CallJob.state == JobState.PENDING,
                col(CallJob.due_at) <= now,
                col(CallJob.campaign).in_(active),
                col(CallJob.id) > after_id,
            )
            .order_by(col(CallJob.due_at), col(CallJob.id))
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
    )


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
    jobs = sorted(_due_jobs(s, now, campaigns, batch_size, after_id), key=lambda j: j.id or 0)
    if not jobs:
        return 0, 0, 0
    data = _load(s, jobs, now)
    rules = {n: call_rules(c) for n, c in campaigns.items()}
    ready = held = 0
    for job in jobs:
        verdict = evaluate(_candidate(job, data), rules[job.campaign], now)
        if verdict.allowed:
            ready += 1
        else:
            held += 1
            _hold(s, job, verdict, now)
    return jobs[-1].id or 0, ready, held


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
            _hold(s, job, verdict, now)
            continue
        ready.append(_start_attempt(s, job, data, server_id, now))
    return ready, decided


def _contact_free(s: Session, contact_id: int) -> bool:
    """No call to this contact is open, checked under the contact's row lock.

    On PostgreSQL the lock makes a second server wait until the first has committed
    its attempt, and then see it: one call per person, whichever server dials.
    """
    s.exec(select(Contact.id).where(Contact.id == contact_id).with_for_update()).first()
    return repo.open_attempts(s, contact_id) == 0


def _start_attempt(
    s: Session, job: CallJob, data: _Batch, server_id: str, now: dt.datetime
) -> CallRequest:
    checkout = data.checkouts[job.checkout_id]
    contact = data.contacts[job.contact_id]
    assert job.id is not None and contact.id is not None and contact.phone_e164 is not None
    attempt = CallAttempt(
        job_id=job.id,
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
    _decide(s, job, "call", Reason.OK.value, now, detail=f"attempt {job.attempts}")
    data.open_calls.add(contact.id)  # one call per contact at a time, within the batch too
    s.flush()
    assert attempt.id is not None and checkout.id is not None
    return CallRequest(
        attempt_id=attempt.id,
        job_id=job.id,
        campaign=job.campaign,
        phone_e164=contact.phone_e164,
        checkout_id=checkout.id,
        first_name=contact.first_name,
        items=list(checkout.items),
        total=str(checkout.total),
        currency=checkout.currency,
        checkout_url=checkout.checkout_url,
    )


def finish_attempt(
    s: Session,
    attempt_id: int,
    result: CallResult,
    now: dt.datetime,
    campaigns: dict[str, CampaignSettings],
) -> None:
    """Records how a call ended and what its job does next (retry, or never again)."""
    attempt = s.get(CallAttempt, attempt_id)
    if attempt is None or attempt.ended_at is not None:
        return
    attempt.status = result.status
    attempt.call_id = result.call_id or attempt.call_id
    attempt.answered_at = result.answered_at
    attempt.ended_at = result.ended_at or now
    attempt.hangup_cause = result.hangup_cause
    attempt.amd = result.amd
    s.add(attempt)
    if result.status in (AttemptStatus.ANSWERED, AttemptStatus.VOICEMAIL):
        s.add(
            Outcome(
                attempt_id=attempt_id,
                code=result.outcome or result.status.value,
                note=result.note,
                created_at=now,
            )
        )
    if result.turns:
        s.add(Transcript(attempt_id=attempt_id, turns=result.turns, created_at=now))
    if result.recording:
        s.add(
            Recording(
                attempt_id=attempt_id,
                path=result.recording,
                size_bytes=result.recording_bytes,
                created_at=now,
            )
        )
    campaign = campaigns.get(attempt.campaign)
    _breaker(s, attempt.campaign, result.status, campaign, now)
    job = s.get(CallJob, attempt.job_id) if attempt.job_id is not None else None
    if job is None or job.state == JobState.DONE:
        return
    if result.outcome == "opted_out":
        contact = s.get(Contact, attempt.contact_id)
        if contact is not None and contact.phone_e164:
            repo.add_do_not_call(s, contact.phone_e164, "opt_out", "call", now)
        repo.close_job(s, job, "opted_out", now)
        return
    if result.outcome in FINAL_OUTCOMES:
        repo.close_job(s, job, result.outcome or "completed", now)
        return
    if result.status == AttemptStatus.ANSWERED:
        repo.close_job(s, job, result.outcome or "answered", now)
        return
    if campaign is None or job.attempts >= campaign.max_attempts:
        repo.close_job(s, job, "max_attempts", now, f"last call: {result.status.value}")
        return
    wait_min = max(getattr(campaign.retry, _RETRYABLE[result.status]), campaign.min_spacing_min)
    job.state = JobState.PENDING
    job.due_at = now + dt.timedelta(minutes=wait_min)
    job.last_reason = result.status.value
    job.updated_at = now
    s.add(job)
    _decide(
        s,
        job,
        "retry",
        result.status.value,
        now,
        detail=f"next call in {wait_min:g} min",
        retry_at=job.due_at,
    )


def _breaker(
    s: Session,
    name: str,
    status: AttemptStatus,
    campaign: CampaignSettings | None,
    now: dt.datetime,
) -> None:
    state = repo.campaign_state(s, name, now)
    if status == AttemptStatus.FAILED:
        state.consecutive_failures += 1
        if (
            campaign
            and not state.paused
            and state.consecutive_failures >= campaign.breaker_failures
        ):
            state.paused = True
            state.paused_reason = "breaker"
            log.warning(
                "campaign %s paused: %d calls failed in a row", name, state.consecutive_failures
            )
    elif status != AttemptStatus.INTERRUPTED:
        state.consecutive_failures = 0
    state.updated_at = now
    s.add(state)


def recover(
    s: Session,
    server_id: str,
    now: dt.datetime,
    campaigns: dict[str, CampaignSettings],
    stale_after: dt.timedelta,
) -> int:
    """Closes the calls a stopped server left open: this server's, and any far too old.

    Each is counted as an interrupted attempt, so its job waits the campaign's
    ``retry.interrupted_min`` before another call: the call may well have rung.
    """
    rows = s.exec(
        select(CallAttempt).where(
            col(CallAttempt.ended_at).is_(None),
            or_(
                col(CallAttempt.server_id) == server_id,
                col(CallAttempt.started_at) < now - stale_after,
            ),
        )
    ).all()
    for attempt in rows:
        assert attempt.id is not None
        finish_attempt(s, attempt.id, CallResult(AttemptStatus.INTERRUPTED), now, campaigns)
    return len(rows)
