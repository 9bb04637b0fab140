"""The calls as lists and details show them: one page at a time, newest first.

A page is read by id (``before_id``: the last id of the previous page), so it costs the
same on the millionth call as on the first; its flags come from correlated subqueries
on indexed columns, never a query per row. Nothing here writes or logs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.campaigns.attempts import transcript_turns
from agent.privacy.crypto import DataKeys
from agent.store.tables import (
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Contact,
    Decision,
    Order,
    Outcome,
    Recording,
    Transcript,
    table,
)

_A = table(CallAttempt)
_C = table(Contact)
_O = table(Outcome)
_J = table(CallJob)
_K = table(Checkout)
_T = table(Transcript)
_R = table(Recording)


@dataclass(frozen=True)
class CallFilter:
    """Which calls to list. Every field narrows the list; ``None`` leaves it open."""

    campaigns: frozenset[str] | None = None  # the campaigns the viewer may see (None: all)
    campaign: str | None = None
    outcome: str | None = None  # Outcome.code
    status: str | None = None  # CallAttempt.status
    since: dt.datetime | None = None  # started at or after
    until: dt.datetime | None = None  # started before
    contact_id: int | None = None


@dataclass(frozen=True)
class CallRow:
    """One call in a list. ``duration_s`` is the talk time (answer to hang-up)."""

    attempt_id: int
    campaign: str
    status: str
    outcome: str | None
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_s: float | None
    contact_id: int
    first_name: str | None
    phone_e164: str | None
    checkout_id: int | None
    total: Decimal | None
    currency: str | None
    has_recording: bool
    has_transcript: bool


def _call_query(f: CallFilter) -> Select[Any]:
    has_recording = exists().where(_R.c.attempt_id == _A.c.id)
    has_transcript = exists().where(_T.c.attempt_id == _A.c.id)
    query = (
        sa_select(
            _A.c.id,
            _A.c.campaign,
            _A.c.status,
            _O.c.code,
            _A.c.started_at,
            _A.c.answered_at,
            _A.c.ended_at,
            _A.c.contact_id,
            _C.c.first_name,
            _C.c.phone_e164,
            _J.c.checkout_id,
            _K.c.total,
            _K.c.currency,
            has_recording.label("has_recording"),
            has_transcript.label("has_transcript"),
        )
        .select_from(
            _A.join(_C, _C.c.id == _A.c.contact_id)
            .outerjoin(_O, _O.c.attempt_id == _A.c.id)
            .outerjoin(_J, _J.c.id == _A.c.job_id)
            .outerjoin(_K, _K.c.id == _J.c.checkout_id)
        )
        .where(*_call_conditions(f))
    )
    return query


def _call_conditions(f: CallFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.campaigns is not None:
        conds.append(_A.c.campaign.in_(sorted(f.campaigns)))
    if f.campaign is not None:
        conds.append(_A.c.campaign == f.campaign)
    if f.status is not None:
        conds.append(_A.c.status == f.status)
    if f.since is not None:
        conds.append(_A.c.started_at >= f.since)
    if f.until is not None:
        conds.append(_A.c.started_at < f.until)
    if f.contact_id is not None:
        conds.append(_A.c.contact_id == f.contact_id)
    if f.outcome is not None:
        conds.append(_O.c.code == f.outcome)
    return conds


def _with_words(note: dict[str, Any], turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The note with what the customer last said, taken from the (opened) transcript when
    the note does not keep it (it never does when transcripts are sealed)."""
    if note and "customer_said" not in note:
        said = [t.get("text", "") for t in turns if t.get("speaker") == "customer"]
        if said:
            note["customer_said"] = said[-1]
    return note


def _call_row(r: Any) -> CallRow:
    answered, ended = r.answered_at, r.ended_at
    duration = (ended - answered).total_seconds() if answered and ended else None
    return CallRow(
        attempt_id=int(r.id),
        campaign=r.campaign,
        status=r.status,
        outcome=r.code,
        started_at=r.started_at,
        answered_at=answered,
        ended_at=ended,
        duration_s=duration,
        contact_id=int(r.contact_id),
        first_name=r.first_name,
        phone_e164=r.phone_e164,
        checkout_id=r.checkout_id,
        total=r.total,
        currency=r.currency,
        has_recording=bool(r.has_recording),
        has_transcript=bool(r.has_transcript),
    )


def list_calls(
    s: Session, f: CallFilter, *, before_id: int | None = None, limit: int = 50
) -> list[CallRow]:
    """The calls ``f`` selects, newest first, ``limit`` of them with ids below ``before_id``."""
    query = _call_query(f)
    if before_id is not None:
        query = query.where(_A.c.id < before_id)
    rows = s.connection().execute(query.order_by(_A.c.id.desc()).limit(limit))
    return [_call_row(r) for r in rows]


def count_calls(s: Session, f: CallFilter) -> int:
    """How many calls ``f`` selects."""
    source: Any = _A
    if f.outcome is not None:
        source = _A.join(_O, _O.c.attempt_id == _A.c.id)
    query = sa_select(func.count()).select_from(source).where(*_call_conditions(f))
    return int(s.connection().execute(query).scalar_one())


@dataclass(frozen=True)
class CallDetail:
    """One call with what was said, its note, its recording and what followed it.

    ``transcript_locked`` is true when the transcript is sealed and no keys are loaded.
    """

    row: CallRow
    turns: list[dict[str, Any]]
    note: dict[str, Any]
    recording_id: int | None
    recording_bytes: int
    items: list[dict[str, Any]]
    checkout_url: str | None
    decisions: list[dict[str, Any]]
    attributed: list[dict[str, Any]]
    transcript_locked: bool = False


def _turn(turn: dict[str, Any]) -> dict[str, Any]:
    # Speaker and text, and the timings a turn may carry (numbers only: nothing else leaks).
    kept = {"speaker": turn.get("speaker"), "text": turn.get("text")}
    kept.update(
        {
            k: v
            for k, v in turn.items()
            if k not in kept and isinstance(v, int | float) and not isinstance(v, bool)
        }
    )
    return kept


def get_call(s: Session, attempt_id: int, keys: DataKeys | None) -> CallDetail | None:
    """The call with this attempt id, transcript opened with ``keys``; None if there is none."""
    found = s.connection().execute(_call_query(CallFilter()).where(_A.c.id == attempt_id)).first()
    if found is None:
        return None
    row = _call_row(found)
    conn = s.connection()
    turns: list[dict[str, Any]] = []
    locked = False
    transcript = s.get(Transcript, _transcript_id(s, attempt_id)) if row.has_transcript else None
    if transcript is not None:
        try:
            turns = [_turn(t) for t in transcript_turns(transcript, keys)]
        except ValueError:
            locked = True
    note = conn.execute(sa_select(_O.c.note).where(_O.c.attempt_id == attempt_id)).scalar()
    recording = conn.execute(
        sa_select(_R.c.id, _R.c.size_bytes)
        .where(_R.c.attempt_id == attempt_id)
        .order_by(_R.c.id)
        .limit(1)
    ).first()
    items: list[dict[str, Any]] = []
    url = None
    decisions: list[dict[str, Any]] = []
    if row.checkout_id is not None:
        checkout = conn.execute(
            sa_select(_K.c["items"], _K.c.checkout_url).where(_K.c.id == row.checkout_id)
        ).one()
        items, url = list(checkout[0] or []), checkout[1]
        d = table(Decision)
        decisions = [
            {"at": at, "campaign": c, "action": a, "reason": r, "detail": x}
            for at, c, a, r, x in conn.execute(
                sa_select(d.c.at, d.c.campaign, d.c.action, d.c.reason, d.c.detail)
                .where(d.c.checkout_id == row.checkout_id)
                .order_by(d.c.at, d.c.id)
            )
        ]
    at_, o = table(Attribution), table(Order)
    attributed = [
        {"amount": amount, "currency": currency, "at": at}
        for amount, currency, at in conn.execute(
            sa_select(at_.c.amount, at_.c.currency, o.c.ordered_at)
            .select_from(at_.join(o, o.c.id == at_.c.order_id))
            .where(at_.c.attempt_id == attempt_id)
            .order_by(at_.c.id)
        )
    ]
    return CallDetail(
        row=row,
        turns=turns,
        note=_with_words(dict(note or {}), turns),
        recording_id=int(recording[0]) if recording else None,
        recording_bytes=int(recording[1]) if recording else 0,
        items=items,
        checkout_url=url,
        decisions=decisions,
        attributed=attributed,
        transcript_locked=locked,
    )


def _transcript_id(s: Session, attempt_id: int) -> int | None:
    found = s.connection().execute(sa_select(_T.c.id).where(_T.c.attempt_id == attempt_id))
    value = found.scalar()
    return int(value) if value is not None else None


def recording_file(s: Session, recording_id: int) -> tuple[int, str, str] | None:
    """The recording's contact id, campaign and stored path (the mix; ``.enc`` when sealed)."""
    found = (
        s.connection()
        .execute(
            sa_select(_A.c.contact_id, _A.c.campaign, _R.c.path)
            .select_from(_R.join(_A, _A.c.id == _R.c.attempt_id))
            .where(_R.c.id == recording_id)
        )
        .first()
    )
    return (int(found[0]), str(found[1]), str(found[2])) if found else None


def outcome_counts(
    s: Session,
    campaigns: frozenset[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[tuple[str, str, int]]:
    """(campaign, outcome code, calls) for each pair seen; calls without an outcome are not
    counted. Aggregates only: no customer is named."""
    f = CallFilter(campaigns=campaigns, since=since, until=until)
    stmt = (
        sa_select(_A.c.campaign, _O.c.code, func.count())
        .select_from(_A.join(_O, _O.c.attempt_id == _A.c.id))
        .where(*_call_conditions(f))
        .group_by(_A.c.campaign, _O.c.code)
        .order_by(_A.c.campaign, _O.c.code)
    )
    return [(str(c), str(o), int(n)) for c, o, n in s.connection().execute(stmt)]
