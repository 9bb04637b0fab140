"""Configuration of the campaign engine: the database, intake, the scheduler and each campaign."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from agent.conversation.script import ScriptSettings, check_script

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """Where Cartline keeps its data."""

    # Empty: a SQLite file in state_dir. PostgreSQL: postgresql+psycopg://user:pw@host/db
    url: SecretStr = SecretStr("")
    echo_sql: bool = False


class IntakeSettings(_Section):
    """Where checkouts come from; a source without a secret is switched off."""

    # Numbers written without a country code are read in this region (ISO 3166 code).
    default_region: str = Field("US", pattern=r"^[A-Z]{2}$")
    shopify_secret: SecretStr | None = None
    woocommerce_secret: SecretStr | None = None
    generic_secret: SecretStr | None = None
    # Seconds a signed generic webhook stays valid (replays after that are refused).
    generic_tolerance_s: int = Field(300, ge=10, le=3600)
    # Bearer token for POST /api/v1/events (checkouts and orders in the generic schema).
    api_token: SecretStr | None = None

    @field_validator(
        "shopify_secret", "woocommerce_secret", "generic_secret", "api_token", mode="before"
    )
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        # ${VAR:-} in config.yaml gives "" when the variable is unset: that source stays off.
        if value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
            return None
        return value


class RetrySettings(_Section):
    """Minutes to wait before calling again after each kind of unanswered call."""

    busy_min: float = Field(30, ge=0)
    no_answer_min: float = Field(120, ge=0)
    voicemail_min: float = Field(240, ge=0)
    failed_min: float = Field(60, ge=0)
    # The server stopped mid-call: the call may have happened, so wait as after a real one.
    interrupted_min: float = Field(240, ge=0)


CustomerField = Literal["first_name", "last_name", "city", "items", "total", "checkout_url"]


class CampaignSettings(_Section):
    """One campaign: what triggers it, when it may call, how often, and what counts as success."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    kind: Literal["abandoned_checkout", "churn_risk", "lead_follow_up"] = "abandoned_checkout"
    enabled: bool = True
    # Minutes after the checkout was abandoned before the first call.
    delay_min: float = Field(30, ge=0)
    # Checkouts below this total (in their own currency) are not called.
    min_total: Decimal = Field(Decimal(0), ge=0)
    max_attempts: int = Field(3, ge=1, le=20)
    # Least time between two calls of the same checkout, whatever the outcome.
    min_spacing_min: float = Field(60, ge=0)
    retry: RetrySettings = RetrySettings()
    # The campaign's calling window in the recipient's local time; stricter state rules win.
    window_start: dt.time = dt.time(8, 0)
    window_end: dt.time = dt.time(21, 0)
    quiet_weekdays: tuple[Weekday, ...] = ()
    quiet_dates: tuple[dt.date, ...] = ()
    max_calls_per_24h: int | None = Field(None, ge=1)
    # Consent older than this no longer counts (None: no limit).
    consent_max_age_days: int | None = Field(None, ge=1)
    # An order within this many days of an answered call is revenue recovered by it.
    attribution_days: int = Field(7, ge=1, le=90)
    # This many failed calls in a row pause the campaign (the trunk is probably down).
    breaker_failures: int = Field(5, ge=1)
    # The customer's details the conversation (and its language model) may see; anything
    # not listed never reaches it. The phone number is used to dial, never shown to it.
    customer_fields: tuple[CustomerField, ...] = ("first_name", "items", "total", "checkout_url")
    # What the agent says and may do in this campaign's calls (docs/conversation.md).
    script: ScriptSettings = ScriptSettings()

    @model_validator(mode="after")
    def _script_fields(self) -> CampaignSettings:
        check_script(self.script, self.customer_fields)
        return self

    @model_validator(mode="after")
    def _window(self) -> CampaignSettings:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self

    @property
    def quiet_weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.quiet_weekdays)


def _default_server_id() -> str:
    return socket.gethostname()[:60] or "cartline"


class SchedulerSettings(_Section):
    """How the scheduler claims and starts call jobs."""

    # Seconds between looks at the job queue.
    poll_s: float = Field(2.0, gt=0, le=300)
    # Voice sessions this server runs at once: a call starts only when one is free.
    voice_slots: int = Field(2, ge=1, le=500)
    # Names this server in the job queue; must differ between servers sharing a database.
    server_id: str = Field(default_factory=_default_server_id, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # How long a call may take from dialling to hang-up before its slot is taken back.
    call_timeout_s: float = Field(900, gt=0)


class MerchantSettings(_Section):
    """Who the customers hear from: named in calls, text messages and their replies."""

    name: str = Field("Example Store", min_length=1, max_length=60)
    # Where customers reach a person: a phone number, an email address or both.
    phone: str | None = Field(None, pattern=r"^\+?[0-9 ()-]{3,25}$")
    email: str | None = Field(None, max_length=320)
    website: str | None = Field(None, max_length=200)

    @property
    def contact(self) -> str:
        parts = [p for p in (self.phone, self.email, self.website) if p]
        return " or ".join(parts) if parts else self.name


class SmsSettings(_Section):
    """Text messages over the merchant's trunk (SIP MESSAGE), and the replies to keywords.

    Templates may use ``{merchant}`` and ``{contact}``. Customers' keywords (STOP,
    UNSUBSCRIBE, CANCEL, END, QUIT; HELP; START) are always honoured, whatever this says.
    """

    enabled: bool = True
    # Appended to every message Cartline sends first (not to keyword replies).
    footer: str = Field("Reply STOP to opt out.", max_length=100)
    stop_reply: str = Field(
        "{merchant}: you are unsubscribed and will get no more texts or calls from us. "
        "Reply START to subscribe again.",
        max_length=320,
    )
    help_reply: str = Field(
        "{merchant}: reminders about your order. For help contact {contact}. "
        "Reply STOP to opt out.",
        max_length=320,
    )
    start_reply: str = Field(
        "{merchant}: you are subscribed again. Reply HELP for help, STOP to opt out.",
        max_length=320,
    )

    @field_validator("stop_reply", "help_reply", "start_reply")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            value.format(merchant="m", contact="c")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"unknown placeholder {exc}; use {{merchant}} and {{contact}}"
            ) from None
        return value


def default_campaigns() -> tuple[CampaignSettings, ...]:
    return (CampaignSettings(name="checkout-recovery"),)


def check_campaign_names(campaigns: tuple[CampaignSettings, ...]) -> tuple[CampaignSettings, ...]:
    names = [c.name for c in campaigns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"campaign names must be unique; repeated: {', '.join(dupes)}")
    return campaigns


__all__ = [
    "CampaignSettings",
    "IntakeSettings",
    "MerchantSettings",
    "RetrySettings",
    "SchedulerSettings",
    "SmsSettings",
    "StoreSettings",
    "check_campaign_names",
    "default_campaigns",
]
