"""Whether a contact may be called now: one pure rule per check, and their order.

No I/O and no clock: ``now`` is always a timezone-aware parameter, so the scheduler can ask
"may I call at this instant?" for any instant, and tests need no sleeping. Each rule returns a
:class:`Verdict` with a stable :class:`Reason` code; ``retry_at`` says when the same rule could
pass, and is ``None`` on a refusal that time alone will not lift.

A verdict's ``detail`` is for operators and logs: it holds codes, counts, zone names and times,
never a phone number, name or email address.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.campaigns.localtime import (
    DEFAULT_WINDOW,
    CallingWindow,
    is_quiet_day,
    locate,
    next_open,
    state_call_cap,
)
from agent.campaigns.records import Address, Channel, Consent

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SAFE_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DAY = timedelta(hours=24)
_HORIZON = timedelta(days=14)

# A call in progress has no known end; look again after this long.
IN_CALL_RECHECK = timedelta(minutes=5)


class Reason(enum.StrEnum):
    """Why a contact may or may not be called; values are stable (stored and shown)."""

    OK = "ok"
    INVALID_PHONE = "invalid_phone"
    NO_CONSENT = "no_consent"
    DO_NOT_CALL = "do_not_call"
    PURCHASED = "purchased"
    IN_CALL = "in_call"
    MAX_ATTEMPTS = "max_attempts"
    TOO_SOON = "too_soon"
    DAILY_CAP = "daily_cap"
    QUIET_DAY = "quiet_day"
    OUTSIDE_WINDOW = "outside_window"
    UNKNOWN_TIMEZONE = "unknown_timezone"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one rule (or of :func:`evaluate`).

    ``retry_at`` is the earliest instant the rule could pass; with ``allowed=False`` and
    ``retry_at=None`` the refusal is final (no consent, do-not-call, purchased, ...).
    """

    allowed: bool
    reason: Reason
    retry_at: datetime | None = None
    detail: str = ""


ALLOWED = Verdict(True, Reason.OK)


@dataclass(frozen=True, slots=True)
class CallRules:
    """A campaign's calling rules; state rules from ``STATE_RULES`` apply on top (stricter wins)."""

    window: CallingWindow = DEFAULT_WINDOW
    quiet_weekdays: frozenset[int] = frozenset()  # Monday is 0
    quiet_dates: frozenset[date] = frozenset()
    max_attempts: int = 3
    min_spacing: timedelta = timedelta(hours=4)
    max_calls_per_24h: int | None = None
    consent_channel: Channel = Channel.CALL
    consent_max_age: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the rules need to know about one contact for one job.

    ``job_attempts`` are the start times of this job's earlier attempts; ``contact_calls`` the
    start times of every recent call to this contact, whatever the campaign.
    """

    phone_e164: str | None
    phone_error: str | None = None
    address: Address | None = None
    consents: tuple[Consent, ...] = ()
    on_do_not_call: bool = False
    purchased: bool = False
    in_active_call: bool = False
    job_attempts: tuple[datetime, ...] = ()
    contact_calls: tuple[datetime, ...] = ()


def _deny(reason: Reason, detail: str, retry_at: datetime | None = None) -> Verdict:
    return Verdict(False, reason, retry_at, detail)


def check_phone(phone_e164: str | None, phone_error: str | None = None) -> Verdict:
    """A number in E.164 form that intake did not flag."""
    if phone_error is not None:
        # Intake errors are meant to be codes; anything else might quote the number itself.
        code = phone_error if _SAFE_CODE.fullmatch(phone_error) else "rejected_at_intake"
        return _deny(Reason.INVALID_PHONE, code)
    if phone_e164 is None:
        return _deny(Reason.INVALID_PHONE, "missing")
    if not _E164.fullmatch(phone_e164):
        return _deny(Reason.INVALID_PHONE, "not_e164")
    return ALLOWED


def check_consent(
    consents: Iterable[Consent],
    channel: Channel,
    now: datetime,
    max_age: timedelta | None = None,
) -> Verdict:
    """The latest record for ``channel`` captured by ``now`` decides; a withdrawal at the same
    instant as a grant wins. A grant older than ``max_age`` no longer counts."""
    latest: Consent | None = None
    future: list[Consent] = []  # dated after now: clock skew at the source
    for consent in consents:
        if consent.channel != channel:
            continue
        if consent.captured_at > now:
            future.append(consent)
        elif (
            latest is None
            or consent.captured_at > latest.captured_at
            or (consent.captured_at == latest.captured_at and not consent.granted)
        ):
            latest = consent
    # A refusal lifts when the first grant after the last future withdrawal takes effect.
    pending: datetime | None = None
    for consent in sorted(future, key=lambda c: (c.captured_at, not c.granted)):
        if not consent.granted:
            pending = None
        elif pending is None:
            pending = consent.captured_at
    if latest is None:
        return _deny(Reason.NO_CONSENT, f"no {channel} consent", pending)
    if not latest.granted:
        return _deny(Reason.NO_CONSENT, f"{channel} consent withdrawn", pending)
    if max_age is not None and now - latest.captured_at > max_age:
        return _deny(Reason.NO_CONSENT, f"{channel} consent older than {max_age}", pending)
    return ALLOWED


def check_do_not_call(on_do_not_call: bool) -> Verdict:
    """Never call a number on the do-not-call list."""
    return _deny(Reason.DO_NOT_CALL, "on do-not-call list") if on_do_not_call else ALLOWED


def check_purchased(purchased: bool) -> Verdict:
    """Never chase a checkout that has since been paid for."""
    return _deny(Reason.PURCHASED, "checkout completed") if purchased else ALLOWED


def check_active_call(in_active_call: bool, now: datetime) -> Verdict:
    """Never ring someone who is on a call with us already."""
    if in_active_call:
        return _deny(Reason.IN_CALL, "call in progress", now + IN_CALL_RECHECK)
    return ALLOWED


def check_attempts(job_attempts: Iterable[datetime], rules: CallRules, now: datetime) -> Verdict:
    """At most ``rules.max_attempts`` attempts per job, at least ``rules.min_spacing`` apart."""
    attempts = tuple(job_attempts)
    if len(attempts) >= rules.max_attempts:
        return _deny(Reason.MAX_ATTEMPTS, f"{len(attempts)} of {rules.max_attempts} attempts made")
    if attempts:
        retry_at = max(attempts) + rules.min_spacing
        if retry_at > now:
            return _deny(Reason.TOO_SOON, f"spacing {rules.min_spacing}", retry_at)
    return ALLOWED


def check_daily_cap(contact_calls: Sequence[datetime], cap: int | None, now: datetime) -> Verdict:
    """At most ``cap`` calls to the contact in any 24 hours (``None``: no cap)."""
    if cap is None or len(contact_calls) < cap:
        return ALLOWED
    since = now - _DAY
    recent = sorted(call for call in contact_calls if call > since)
    if len(recent) < cap:
        return ALLOWED
    # Calling is allowed again once enough of the recent calls have aged out of the window.
    retry_at = recent[len(recent) - cap] + _DAY if cap > 0 else None
    return _deny(Reason.DAILY_CAP, f"{len(recent)} calls in 24 h, cap {cap}", retry_at)


def daily_cap(rules: CallRules, regions: frozenset[str]) -> int | None:
    """The campaign's cap and every applicable state's cap: the smallest wins."""
    state_cap, campaign_cap = state_call_cap(regions), rules.max_calls_per_24h
    if state_cap is None or campaign_cap is None:
        return campaign_cap if state_cap is None else state_cap
    return min(state_cap, campaign_cap)


def check_calling_window(
    now: datetime,
    zones: Iterable[ZoneInfo],
    regions: frozenset[str],
    rules: CallRules,
) -> Verdict:
    """Inside the allowed hours in every candidate zone; never when the local time is unknown.

    When nothing opens within the search horizon (14 days), ``retry_at`` is the horizon's end:
    look again then.
    """
    zone_list = tuple(zones)
    if not zone_list:
        return _deny(Reason.UNKNOWN_TIMEZONE, "no time zone from address or number")
    window, quiet_weekdays, quiet_dates = rules.window, rules.quiet_weekdays, rules.quiet_dates
    opens = next_open(now, zone_list, regions, window, quiet_weekdays, quiet_dates, _HORIZON)
    if opens == now:
        return ALLOWED
    retry_at = opens or now + _HORIZON
    clocks = []
    for zone in zone_list:
        local = now.astimezone(zone)
        if is_quiet_day(local.date(), regions, quiet_weekdays, quiet_dates):
            return _deny(Reason.QUIET_DAY, f"{local.date()} is quiet in {zone.key}", retry_at)
        clocks.append(f"{local.hour:02d}:{local.minute:02d} in {zone.key}")
    return _deny(Reason.OUTSIDE_WINDOW, f"local time {', '.join(clocks)}", retry_at)


def evaluate(candidate: Candidate, rules: CallRules, now: datetime) -> Verdict:
    """The first failing rule, final refusals before temporary ones; else ``Verdict(True, OK)``.

    Order: phone, consent, do-not-call, purchased, max attempts; then in call, too soon,
    daily cap, calling window.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    verdict = check_phone(candidate.phone_e164, candidate.phone_error)
    if not verdict.allowed:
        return verdict
    verdict = check_consent(candidate.consents, rules.consent_channel, now, rules.consent_max_age)
    if not verdict.allowed:
        return verdict
    if candidate.on_do_not_call:
        return check_do_not_call(True)
    if candidate.purchased:
        return check_purchased(True)
    attempts = check_attempts(candidate.job_attempts, rules, now)
    if attempts.reason is Reason.MAX_ATTEMPTS:
        return attempts
    if candidate.in_active_call:
        return check_active_call(True, now)
    if not attempts.allowed:
        return attempts
    where = locate(candidate.address, candidate.phone_e164)
    verdict = check_daily_cap(candidate.contact_calls, daily_cap(rules, where.regions), now)
    if not verdict.allowed:
        return verdict
    return check_calling_window(now, where.zones, where.regions, rules)
