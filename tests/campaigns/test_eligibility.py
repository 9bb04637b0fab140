import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.campaigns.eligibility import (
    IN_CALL_RECHECK,
    CallRules,
    Candidate,
    Reason,
    Verdict,
    check_active_call,
    check_attempts,
    check_calling_window,
    check_consent,
    check_daily_cap,
    check_do_not_call,
    check_phone,
    check_purchased,
    daily_cap,
    evaluate,
)
from agent.campaigns.localtime import CallingWindow
from agent.campaigns.records import Address, Channel, Consent

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)  # Wednesday, 12:00 in New York
RULES = CallRules()
PHONE = "+12125550100"
NOWHERE: frozenset[str] = frozenset()


def consent(granted: bool, captured_at: datetime, channel: Channel = Channel.CALL) -> Consent:
    return Consent(channel, granted, "v1", captured_at, "shopify-checkout")


GRANTED = (consent(True, NOW - timedelta(days=1)),)


def candidate(**changes: object) -> Candidate:
    """A contact who may be called at NOW; ``changes`` break one rule at a time."""
    base = Candidate(phone_e164=PHONE, address=Address(country="US", region="NY"), consents=GRANTED)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def denied(verdict: Verdict, reason: Reason, retry_at: datetime | None = None) -> bool:
    return (verdict.allowed, verdict.reason, verdict.retry_at) == (False, reason, retry_at)


def at_ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


# --- phone ---------------------------------------------------------------------------------


def test_phone_in_e164_passes() -> None:
    assert check_phone(PHONE).allowed


@pytest.mark.parametrize("phone", [None, "", "2125550100", "+0212555", "+1 212 555 0100"])
def test_phone_missing_or_malformed_fails_for_good(phone: str | None) -> None:
    assert denied(check_phone(phone), Reason.INVALID_PHONE)


def test_intake_error_fails_without_quoting_the_number() -> None:
    assert check_phone(PHONE, "not_a_number").detail == "not_a_number"
    verdict = check_phone(None, "cannot parse +12125550100")
    assert denied(verdict, Reason.INVALID_PHONE)
    assert "212" not in verdict.detail


# --- consent -------------------------------------------------------------------------------


def test_granted_consent_passes() -> None:
    assert check_consent(GRANTED, Channel.CALL, NOW).allowed


def test_no_consent_fails_for_good() -> None:
    assert denied(check_consent((), Channel.CALL, NOW), Reason.NO_CONSENT)


def test_consent_for_another_channel_does_not_count() -> None:
    sms_only = (consent(True, NOW - timedelta(days=1), Channel.SMS),)
    assert denied(check_consent(sms_only, Channel.CALL, NOW), Reason.NO_CONSENT)
    assert check_consent(sms_only, Channel.SMS, NOW).allowed


def test_withdrawal_after_grant_wins() -> None:
    records = (consent(True, NOW - timedelta(days=2)), consent(False, NOW - timedelta(days=1)))
    verdict = check_consent(records, Channel.CALL, NOW)
    assert denied(verdict, Reason.NO_CONSENT)
    assert "withdrawn" in verdict.detail
    # Order of the records does not matter, only when they were captured.
    assert denied(check_consent(records[::-1], Channel.CALL, NOW), Reason.NO_CONSENT)


def test_grant_after_withdrawal_wins() -> None:
    records = (consent(False, NOW - timedelta(days=2)), consent(True, NOW - timedelta(days=1)))
    assert check_consent(records, Channel.CALL, NOW).allowed


def test_withdrawal_at_the_same_instant_as_a_grant_wins() -> None:
    instant = NOW - timedelta(days=1)
    for records in [
        (consent(True, instant), consent(False, instant)),
        (consent(False, instant), consent(True, instant)),
    ]:
        assert denied(check_consent(records, Channel.CALL, NOW), Reason.NO_CONSENT)


def test_consent_captured_after_now_counts_from_its_time() -> None:
    later = NOW + timedelta(minutes=2)
    assert denied(
        check_consent((consent(True, later),), Channel.CALL, NOW), Reason.NO_CONSENT, later
    )
    withdrawn_later = (consent(True, later), consent(False, later + timedelta(minutes=1)))
    assert denied(check_consent(withdrawn_later, Channel.CALL, NOW), Reason.NO_CONSENT)
    assert check_consent((consent(True, later),), Channel.CALL, later).allowed


def test_consent_max_age() -> None:
    records = (consent(True, NOW - timedelta(days=30)),)
    assert check_consent(records, Channel.CALL, NOW, timedelta(days=31)).allowed
    assert denied(check_consent(records, Channel.CALL, NOW, timedelta(days=29)), Reason.NO_CONSENT)


# --- do-not-call, purchased, in call -------------------------------------------------------


def test_do_not_call() -> None:
    assert check_do_not_call(False).allowed
    assert denied(check_do_not_call(True), Reason.DO_NOT_CALL)


def test_purchased() -> None:
    assert check_purchased(False).allowed
    assert denied(check_purchased(True), Reason.PURCHASED)


def test_active_call_asks_to_look_again_later() -> None:
    assert check_active_call(False, NOW).allowed
    assert denied(check_active_call(True, NOW), Reason.IN_CALL, NOW + IN_CALL_RECHECK)


# --- attempts and spacing ------------------------------------------------------------------


def test_attempts_below_the_limit_and_spaced_pass() -> None:
    assert check_attempts((), RULES, NOW).allowed
    assert check_attempts((NOW - timedelta(hours=4),), RULES, NOW).allowed


def test_max_attempts_fails_for_good() -> None:
    attempts = tuple(NOW - timedelta(days=n) for n in (1, 2, 3))
    assert denied(check_attempts(attempts, RULES, NOW), Reason.MAX_ATTEMPTS)
    assert check_attempts(attempts, CallRules(max_attempts=4), NOW).allowed


def test_too_soon_retries_after_the_spacing() -> None:
    last = NOW - timedelta(hours=1)
    attempts = (NOW - timedelta(days=1), last)
    assert denied(check_attempts(attempts, RULES, NOW), Reason.TOO_SOON, last + timedelta(hours=4))


# --- daily cap -----------------------------------------------------------------------------


def test_no_cap_means_no_limit() -> None:
    assert check_daily_cap((NOW,) * 10, None, NOW).allowed


def test_calls_under_the_cap_pass() -> None:
    calls = (NOW - timedelta(hours=1), NOW - timedelta(hours=30))
    assert check_daily_cap(calls, 2, NOW).allowed


def test_cap_reached_retries_when_the_oldest_call_leaves_the_window() -> None:
    oldest = NOW - timedelta(hours=20)
    calls = (NOW - timedelta(hours=2), oldest, NOW - timedelta(hours=10), NOW - timedelta(days=3))
    verdict = check_daily_cap(calls, 3, NOW)
    assert denied(verdict, Reason.DAILY_CAP, oldest + timedelta(hours=24))
    assert check_daily_cap(calls, 3, oldest + timedelta(hours=24)).allowed


def test_cap_over_by_several_waits_for_enough_calls_to_age_out() -> None:
    calls = tuple(NOW - timedelta(hours=h) for h in (1, 2, 3, 4))
    assert denied(check_daily_cap(calls, 2, NOW), Reason.DAILY_CAP, NOW + timedelta(hours=22))


def test_state_cap_and_campaign_cap_smallest_wins() -> None:
    assert daily_cap(RULES, frozenset({"FL"})) == 3
    assert daily_cap(CallRules(max_calls_per_24h=2), frozenset({"FL"})) == 2
    assert daily_cap(CallRules(max_calls_per_24h=5), frozenset({"FL"})) == 3
    assert daily_cap(RULES, frozenset({"NY"})) is None


# --- calling window ------------------------------------------------------------------------


def test_window_open_passes() -> None:
    assert check_calling_window(NOW, (NY,), NOWHERE, RULES).allowed


def test_unknown_timezone_never_calls() -> None:
    assert denied(check_calling_window(NOW, (), NOWHERE, RULES), Reason.UNKNOWN_TIMEZONE)


def test_outside_window_retries_at_the_next_opening() -> None:
    early = at_ny(2026, 6, 10, 7, 0)
    verdict = check_calling_window(early, (NY, LA), NOWHERE, RULES)
    assert denied(verdict, Reason.OUTSIDE_WINDOW, at_ny(2026, 6, 10, 11, 0))
    assert "America/New_York" in verdict.detail and "America/Los_Angeles" in verdict.detail


def test_quiet_day_retries_on_the_next_open_day() -> None:
    rules = CallRules(quiet_weekdays=frozenset({2}))  # Wednesdays
    verdict = check_calling_window(NOW, (NY,), NOWHERE, rules)
    assert denied(verdict, Reason.QUIET_DAY, at_ny(2026, 6, 11, 8, 0))
    holiday = CallRules(quiet_dates=frozenset({date(2026, 6, 10)}))
    assert check_calling_window(NOW, (NY,), NOWHERE, holiday).reason is Reason.QUIET_DAY


def test_state_sunday_ban_is_a_quiet_day() -> None:
    sunday = at_ny(2026, 6, 14, 12, 0)
    verdict = check_calling_window(sunday, (NY,), frozenset({"RI"}), RULES)
    assert denied(verdict, Reason.QUIET_DAY, at_ny(2026, 6, 15, 9, 0))


def test_nothing_open_in_two_weeks_looks_again_after_them() -> None:
    rules = CallRules(quiet_weekdays=frozenset(range(7)))
    verdict = check_calling_window(NOW, (NY,), NOWHERE, rules)
    assert denied(verdict, Reason.QUIET_DAY, NOW + timedelta(days=14))


def test_campaign_window_applies() -> None:
    rules = CallRules(window=CallingWindow(time(13), time(17)))
    verdict = check_calling_window(NOW, (NY,), NOWHERE, rules)
    assert denied(verdict, Reason.OUTSIDE_WINDOW, at_ny(2026, 6, 10, 13, 0))


# --- evaluate ------------------------------------------------------------------------------


def test_evaluate_allows_a_clean_candidate() -> None:
    assert evaluate(candidate(), RULES, NOW) == Verdict(True, Reason.OK)


def test_evaluate_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError):
        evaluate(candidate(), RULES, NOW.replace(tzinfo=None))


def test_evaluate_returns_the_first_failure_in_order() -> None:
    evening = at_ny(2026, 6, 10, 22, 0)  # outside the window in New York
    recent = (evening - timedelta(hours=1),)
    # Every failure at once, then removed from the top one at a time: each must surface in turn.
    failures: list[tuple[Reason, dict[str, object]]] = [
        (Reason.INVALID_PHONE, {"phone_e164": None}),
        (Reason.NO_CONSENT, {"consents": ()}),
        (Reason.DO_NOT_CALL, {"on_do_not_call": True}),
        (Reason.PURCHASED, {"purchased": True}),
        (Reason.MAX_ATTEMPTS, {"job_attempts": recent * 3}),
        (Reason.IN_CALL, {"in_active_call": True}),
        (Reason.TOO_SOON, {"job_attempts": recent}),
        (Reason.DAILY_CAP, {"contact_calls": recent * 3}),
        (Reason.OUTSIDE_WINDOW, {}),
    ]
    rules = CallRules(max_calls_per_24h=3)
    for index, (expected, _) in enumerate(failures):
        changes: dict[str, object] = {}
        for _, change in reversed(failures[index:]):
            changes.update(change)  # a higher failure's change overrides a lower one's
        assert evaluate(candidate(**changes), rules, evening).reason is expected


def test_evaluate_unknown_timezone() -> None:
    nowhere = candidate(phone_e164="+999123456789", address=None)
    assert evaluate(nowhere, RULES, NOW).reason is Reason.UNKNOWN_TIMEZONE


def test_evaluate_applies_florida_cap_from_the_number() -> None:
    calls = tuple(NOW - timedelta(hours=h) for h in (1, 5, 9))
    miami = candidate(phone_e164="+13055550100", address=None, contact_calls=calls)
    assert denied(evaluate(miami, RULES, NOW), Reason.DAILY_CAP, calls[-1] + timedelta(days=1))
    new_yorker = candidate(contact_calls=calls)
    assert evaluate(new_yorker, RULES, NOW).allowed


def test_evaluate_uses_hours_open_at_both_address_and_number() -> None:
    split = candidate(phone_e164="+14155550100")  # New York address, San Francisco number
    assert evaluate(split, RULES, at_ny(2026, 6, 10, 11, 0)).allowed
    verdict = evaluate(split, RULES, at_ny(2026, 6, 10, 10, 59))
    assert denied(verdict, Reason.OUTSIDE_WINDOW, at_ny(2026, 6, 10, 11, 0))


def test_details_never_hold_the_phone_number() -> None:
    everything_wrong = [
        candidate(phone_error="bad +12125550100"),
        candidate(consents=()),
        candidate(on_do_not_call=True),
        candidate(contact_calls=(NOW,) * 5, address=Address(country="US", region="FL")),
        candidate(),
    ]
    for case in everything_wrong:
        for now in (NOW, at_ny(2026, 6, 10, 22, 0)):
            assert "5550100" not in evaluate(case, RULES, now).detail


def test_evaluate_many_candidates() -> None:
    states = ["NY", "FL", "TX", "CA", "RI", "WA", None]
    area_codes = ["212", "305", "713", "415", "401", "206", "312"]
    rules = CallRules(max_calls_per_24h=2)
    reasons: set[Reason] = set()
    for n in range(20_000):
        region = states[n % len(states)]
        person = Candidate(
            phone_e164=f"+1{area_codes[n % 7]}555{n % 10_000:04d}",
            address=Address(country="US", region=region) if region else None,
            consents=GRANTED,
            job_attempts=(NOW - timedelta(hours=n % 9),) if n % 3 else (),
            contact_calls=(NOW - timedelta(hours=n % 30),) * (n % 4),
        )
        now = NOW + timedelta(minutes=37 * (n % 40))
        reasons.add(evaluate(person, rules, now).reason)
    assert {Reason.OK, Reason.TOO_SOON, Reason.DAILY_CAP, Reason.OUTSIDE_WINDOW} <= reasons
