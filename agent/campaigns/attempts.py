"""How a call ended, and what its job does next: retry after a while, or never again.

Also the breaker that pauses a campaign whose calls keep failing, and the
recovery of calls a stopped server left open.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, or_, select

from agent.campaigns.jobs import FINAL_OUTCOMES, RETRY_WAITS, decide
from agent.campaigns.notify import enqueue_outcome
from agent.campaigns.placement import CallResult
from agent.campaigns.settings import CampaignSettings
from agent.privacy.crypto import TRANSCRIPT_CONTEXT, DataKeys
from agent.store import repository as repo
from agent.store.tables import (
    AttemptStatus,
    CallAttempt,
    CallJob,
    Contact,
    JobState,
    Outcome,
    Recording,
    Transcript,
)
from agent.web.settings import OutcomeWebhookSettings

log = logging.getLogger(__name__)


def finish_attempt(
    s: Session,
    attempt_id: int,
    result: CallResult,
    now: dt.datetime,
    campaigns: dict[str, CampaignSettings],
    keys: DataKeys | None = None,
    webhooks: Sequence[OutcomeWebhookSettings] = (),
) -> None:
    """Records how a call ended and what its job does next (retry, or never again).

    With ``keys`` the transcript is stored sealed (encrypted at rest). The outcome is
    queued for each of ``webhooks`` in this same transaction (``agent.campaigns.notify``).
    """
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
        note = dict(result.note)
        if keys is not None or not result.turns:
            # The customer's own words are kept only as the transcript is: sealed with it
            # (they are its last customer turn), or not at all when no transcript is kept.
            note.pop("customer_said", None)
        s.add(
            Outcome(
                attempt_id=attempt_id,
                code=result.outcome or result.status.value,
                note=note,
                created_at=now,
            )
        )
    if result.turns:
        if keys is None:
            s.add(Transcript(attempt_id=attempt_id, turns=result.turns, created_at=now))
        else:
            sealed = keys.seal(json.dumps(result.turns).encode(), TRANSCRIPT_CONTEXT)
            s.add(Transcript(attempt_id=attempt_id, turns=[], sealed=sealed, created_at=now))
    if result.recording:
        s.add(
            Recording(
                attempt_id=attempt_id,
                path=result.recording,
                size_bytes=result.recording_bytes,
                created_at=now,
            )
        )
    enqueue_outcome(s, attempt, result, now, webhooks)
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
    if result.outcome == "callback" and (at := _callback_at(result)) is not None:
        # The customer asked for this call's job to ring again at their time.
        job.state = JobState.PENDING
        job.due_at = at
        job.last_reason = "callback"
        job.updated_at = now
        s.add(job)
        decide(s, job, "retry", "callback", now, detail="the customer asked", retry_at=at)
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
    wait_min = max(getattr(campaign.retry, RETRY_WAITS[result.status]), campaign.min_spacing_min)
    job.state = JobState.PENDING
    job.due_at = now + dt.timedelta(minutes=wait_min)
    job.last_reason = result.status.value
    job.updated_at = now
    s.add(job)
    decide(
        s,
        job,
        "retry",
        result.status.value,
        now,
        detail=f"next call in {wait_min:g} min",
        retry_at=job.due_at,
    )


def _callback_at(result: CallResult) -> dt.datetime | None:
    raw = result.note.get("callback_at")
    try:
        at = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return at.astimezone(dt.UTC) if at is not None and at.tzinfo is not None else None


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
    webhooks: Sequence[OutcomeWebhookSettings] = (),
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
        finish_attempt(
            s, attempt.id, CallResult(AttemptStatus.INTERRUPTED), now, campaigns, webhooks=webhooks
        )
    return len(rows)


def transcript_turns(row: Transcript, keys: DataKeys | None) -> list[dict[str, Any]]:
    """A stored transcript's turns, opening it when it is sealed."""
    if row.sealed is None:
        return list(row.turns)
    if keys is None:
        raise ValueError("the transcript is sealed and no data keys are loaded")
    turns: list[dict[str, Any]] = json.loads(keys.open(row.sealed, TRANSCRIPT_CONTEXT))
    return turns
