"""The database tables (sqlmodel). Times are aware UTC; money is Decimal with a currency.

Schema changes go through an alembic migration in ``agent/store/migrations``.
"""

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import JSON, Column, Index, LargeBinary, Table, UniqueConstraint
from sqlmodel import Field, SQLModel

from agent.store.types import Money, UtcDateTime


def _utc(**kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kw))


def _money() -> Any:
    return Field(sa_column=Column(Money(), nullable=False))


class JobState(enum.StrEnum):
    PENDING = "pending"  # waiting for its due time
    DIALING = "dialing"  # an attempt is under way
    DONE = "done"  # nothing more to do; ``result`` says why


class AttemptStatus(enum.StrEnum):
    DIALING = "dialing"
    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the server stopped before the call's end was seen


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"

    id: int | None = Field(default=None, primary_key=True)
    phone_e164: str | None = Field(default=None, unique=True, max_length=20)
    phone_error: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, index=True, max_length=320)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=2)
    region: str | None = Field(default=None, max_length=10)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = _utc(nullable=False)
    updated_at: dt.datetime = _utc(nullable=False)


class Checkout(SQLModel, table=True):
    __tablename__ = "checkouts"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)
    external_id: str = Field(max_length=200)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    campaign: str | None = Field(default=None, max_length=63)
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    total: Decimal = _money()
    currency: str = Field(max_length=3)
    checkout_url: str | None = Field(default=None, max_length=2000)
    abandoned_at: dt.datetime = _utc(nullable=False, index=True)
    completed_at: dt.datetime | None = _utc(nullable=True)
    created_at: dt.datetime = _utc(nullable=False)
    updated_at: dt.datetime = _utc(nullable=False)


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)
    external_id: str = Field(max_length=200)
    checkout_id: int | None = Field(default=None, foreign_key="checkouts.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    total: Decimal = _money()
    currency: str = Field(max_length=3)
    ordered_at: dt.datetime = _utc(nullable=False)
    received_at: dt.datetime = _utc(nullable=False)


class Consent(SQLModel, table=True):
    """A consent as captured, or its withdrawal; the latest one per channel decides."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("contact_id", "channel", "captured_at", "granted"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    channel: str = Field(max_length=8)
    granted: bool
    text_version: str = Field(max_length=100)
    text: str | None = Field(default=None, max_length=4000)
    source: str = Field(max_length=100)
    captured_at: dt.datetime = _utc(nullable=False)
    recorded_at: dt.datetime = _utc(nullable=False)


class DoNotCall(SQLModel, table=True):
    __tablename__ = "do_not_call"

    id: int | None = Field(default=None, primary_key=True)
    phone_e164: str = Field(unique=True, max_length=20)
    reason: str = Field(max_length=40)  # opt_out, imported, complaint, ...
    source: str = Field(max_length=100)
    created_at: dt.datetime = _utc(nullable=False)


class CampaignState(SQLModel, table=True):
    """A campaign's run state; its settings live in config.yaml."""

    __tablename__ = "campaigns"

    name: str = Field(primary_key=True, max_length=63)
    paused: bool = False
    paused_reason: str | None = Field(default=None, max_length=100)
    consecutive_failures: int = 0
    updated_at: dt.datetime = _utc(nullable=False)


class CallJob(SQLModel, table=True):
    """The calls one checkout is owed by one campaign."""

    __tablename__ = "call_jobs"
    __table_args__ = (
        UniqueConstraint("campaign", "checkout_id"),
        Index("ix_call_jobs_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(max_length=63)
    checkout_id: int = Field(foreign_key="checkouts.id", index=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    state: str = Field(default=JobState.PENDING, max_length=16)
    due_at: dt.datetime = _utc(nullable=False)
    attempts: int = 0
    result: str | None = Field(default=None, max_length=40)
    last_reason: str | None = Field(default=None, max_length=40)
    created_at: dt.datetime = _utc(nullable=False)
    updated_at: dt.datetime = _utc(nullable=False)


class CallAttempt(SQLModel, table=True):
    """One dialled call. Written before dialling, so a crash can never hide a call."""

    __tablename__ = "call_attempts"
    # The dashboard's overview groups a period's calls by day, campaign and status:
    # this index answers it without reading the rows.
    __table_args__ = (
        Index("ix_call_attempts_started_campaign_status", "started_at", "campaign", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int | None = Field(default=None, foreign_key="call_jobs.id", index=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    campaign: str = Field(max_length=63, index=True)
    server_id: str = Field(max_length=64)
    call_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=AttemptStatus.DIALING, max_length=16, index=True)
    hangup_cause: int | None = None
    amd: str | None = Field(default=None, max_length=16)
    started_at: dt.datetime = _utc(nullable=False, index=True)
    answered_at: dt.datetime | None = _utc(nullable=True)
    ended_at: dt.datetime | None = _utc(nullable=True)


class Outcome(SQLModel, table=True):
    """What came of an answered call, and a short structured note."""

    __tablename__ = "outcomes"

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="call_attempts.id", unique=True)
    code: str = Field(max_length=40, index=True)
    note: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: dt.datetime = _utc(nullable=False)


class Transcript(SQLModel, table=True):
    """A call's turns; sealed (encrypted JSON of the turns) when encryption at rest is on."""

    __tablename__ = "transcripts"

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="call_attempts.id", unique=True)
    turns: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: dt.datetime = _utc(nullable=False)


class Recording(SQLModel, table=True):
    __tablename__ = "recordings"

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="call_attempts.id", index=True)
    path: str = Field(max_length=1000)
    size_bytes: int = 0
    created_at: dt.datetime = _utc(nullable=False)


class Decision(SQLModel, table=True):
    """The why log: each decision about calling a checkout, with its reason code."""

    __tablename__ = "decisions"

    id: int | None = Field(default=None, primary_key=True)
    checkout_id: int = Field(foreign_key="checkouts.id", index=True)
    campaign: str | None = Field(default=None, max_length=63)
    action: str = Field(max_length=16)  # scheduled, call, wait, skip, close
    reason: str = Field(max_length=40)
    detail: str = Field(default="", max_length=500)
    retry_at: dt.datetime | None = _utc(nullable=True)
    at: dt.datetime = _utc(nullable=False)


class Attribution(SQLModel, table=True):
    """Revenue recovered: an order credited to the call that preceded it."""

    __tablename__ = "attributions"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", unique=True)
    attempt_id: int = Field(foreign_key="call_attempts.id", index=True)
    campaign: str = Field(max_length=63, index=True)
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    created_at: dt.datetime = _utc(nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """The intake inbox: each delivery once, stored before it is acknowledged.

    A repeated delivery (same source and id) changes nothing. Rows are processed
    into checkouts and jobs in batches; ``processed_at`` marks them done, ``error``
    keeps the reason code of a delivery that could not be applied.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id"),
        Index("ix_webhook_deliveries_todo", "processed_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)
    delivery_id: str = Field(max_length=200)
    topic: str = Field(max_length=100)
    records: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    received_at: dt.datetime = _utc(nullable=False)
    processed_at: dt.datetime | None = _utc(nullable=True)
    error: str | None = Field(default=None, max_length=100)


def table(model: type[SQLModel]) -> Table:
    """The Core table of a model, for the hot paths that skip the ORM."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


class ProcessingLog(SQLModel, table=True):
    """Who processed whose data, when and why. Append-only (the database refuses changes).

    ``subjects`` names people by contact id only, so the log keeps no personal data
    and outlives an erasure.
    """

    __tablename__ = "processing_log"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = _utc(nullable=False, index=True)
    actor: str = Field(max_length=200)  # "cli:<user>", "token:<name>", "system:<job>"
    action: str = Field(max_length=40)  # export, erase, purge, access, ...
    subjects: str = Field(default="", max_length=2000)  # "contact:12 contact:40"
    purpose: str = Field(default="", max_length=500)
    detail: str = Field(default="", max_length=2000)


class User(SQLModel, table=True):
    """A person who signs in to the dashboard. ``role`` decides what they may see and do.

    The second factor's secret is sealed with the data keys; recovery codes are kept as
    hashes and each works once.
    """

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)  # owner, admin, analyst, agent
    # For the agent role: the campaigns whose calls they may see (empty: none).
    campaigns: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    password_hash: str = Field(max_length=200)
    totp_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    mfa_enabled: bool = False
    recovery_hashes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    failed_logins: int = 0
    locked_until: dt.datetime | None = _utc(nullable=True)
    disabled: bool = False
    created_at: dt.datetime = _utc(nullable=False)
    updated_at: dt.datetime = _utc(nullable=False)


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random key; only its hash is stored."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    # False between the password and the second factor (or its enrolment).
    mfa_passed: bool = False
    csrf_token: str = Field(max_length=64)
    created_at: dt.datetime = _utc(nullable=False)
    seen_at: dt.datetime = _utc(nullable=False)


class ApiToken(SQLModel, table=True):
    """A bearer token for an integration, with scopes. Only its hash is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = _utc(nullable=False)
    last_used_at: dt.datetime | None = _utc(nullable=True)
    revoked_at: dt.datetime | None = _utc(nullable=True)


class OutboundEvent(SQLModel, table=True):
    """A call outcome waiting to be posted to a configured webhook (an outbox: kept until sent)."""

    __tablename__ = "outbound_events"
    __table_args__ = (Index("ix_outbound_events_due", "delivered_at", "next_at"),)

    id: int | None = Field(default=None, primary_key=True)
    target: str = Field(max_length=2000)  # the webhook's URL
    kind: str = Field(max_length=40)  # call.outcome
    attempt_id: int = Field(foreign_key="call_attempts.id", index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    tries: int = 0
    next_at: dt.datetime = _utc(nullable=False)
    delivered_at: dt.datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = _utc(nullable=False)


class PrivacyRequest(SQLModel, table=True):
    """An export or erasure asked for through the API, and how it went.

    It never holds the phone number or email it was asked for: ``subjects`` names the
    people by contact id, as the processing log does.
    """

    __tablename__ = "privacy_requests"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # export, erase
    state: str = Field(max_length=16)  # pending, done, failed
    requested_by: str = Field(max_length=200)
    purpose: str = Field(default="", max_length=500)
    contacts: int = 0
    subjects: str = Field(default="", max_length=2000)  # "contact:12 contact:40"
    archive_path: str | None = Field(default=None, max_length=1000)  # exports only
    error: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = _utc(nullable=False, index=True)
    done_at: dt.datetime | None = _utc(nullable=True)
