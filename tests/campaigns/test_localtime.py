from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType
from phonenumbers.timezone import time_zones_for_number

from agent.campaigns.localtime import (
    STATE_RULES,
    CallingWindow,
    is_open,
    is_quiet_day,
    next_open,
    open_window,
    region_codes_for,
    state_call_cap,
    us_holidays,
    zones_for,
)
from agent.campaigns.places import US_STATE_ZONES
from agent.campaigns.records import Address

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
DEN = ZoneInfo("America/Denver")
LA = ZoneInfo("America/Los_Angeles")
NONE: frozenset[str] = frozenset()

NY_PHONE = "+12125550100"
LA_PHONE = "+14155550100"
MIAMI_PHONE = "+13055550100"
ATLANTA_PHONE = "+14045550100"
HOUSTON_PHONE = "+17135550100"
TORONTO_PHONE = "+14165550100"


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local wall time in ``zone``, as a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def keys(zones: tuple[ZoneInfo, ...]) -> set[str]:
    return {zone.key for zone in zones}


# --- zones_for -----------------------------------------------------------------------------


def test_zones_from_address_alone() -> None:
    assert zones_for(Address(country="US", region="NY"), None) == (NY,)
    assert keys(zones_for(Address(country="US", region="FL"), None)) == {NY.key, CHI.key}
    assert keys(zones_for(Address(country="CA", region="ON"), None)) == {
        "America/Toronto",
        "America/Winnipeg",
    }
    assert keys(zones_for(Address(country="FR"), None)) == {"Europe/Paris"}


def test_every_state_zone_exists() -> None:
    for names in US_STATE_ZONES.values():
        for name in names:
            ZoneInfo(name)


def test_zones_from_number_alone() -> None:
    assert zones_for(None, LA_PHONE) == (LA,)
    assert zones_for(Address(), NY_PHONE) == (NY,)


def test_nothing_known_gives_no_zone() -> None:
    assert zones_for(None, None) == ()
    assert zones_for(Address(country="ZZ"), "not a number") == ()
    assert zones_for(None, "+") == ()


def test_address_and_number_that_disagree_give_both() -> None:
    assert keys(zones_for(Address(country="US", region="NY"), LA_PHONE)) == {NY.key, LA.key}


def test_number_inside_the_address_zones_changes_nothing() -> None:
    # A Miami number and a Florida address agree; the address (both Florida zones) decides.
    assert keys(zones_for(Address(country="US", region="FL"), MIAMI_PHONE)) == {NY.key, CHI.key}
    # A toll-free number could be anywhere in North America: the address decides.
    assert zones_for(Address(country="US", region="NY"), "+18005550100") == (NY,)


def test_number_narrows_an_address_known_only_by_country() -> None:
    assert zones_for(Address(country="US"), NY_PHONE) == (NY,)
    assert keys(zones_for(Address(country="US"), None)) >= {NY.key, LA.key, "Pacific/Honolulu"}
    assert zones_for(Address(country="AU"), "+61291234567") == (ZoneInfo("Australia/Sydney"),)


def test_uk_mobile_with_uk_address_is_london() -> None:
    assert zones_for(Address(country="GB"), "+447400123456") == (ZoneInfo("Europe/London"),)


def test_mobile_in_a_country_of_several_zones_may_be_anywhere_in_it() -> None:
    # Australian mobiles are not geographic: Perth is as likely as Sydney.
    zones = keys(zones_for(None, "+61412345678"))
    assert {"Australia/Perth", "Australia/Sydney"} <= zones


def test_number_zones_match_the_library() -> None:
    mismatches = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None or number.country_code == 1:
                continue  # NANP: see test_nanp_numbers_resolve_by_area_code
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            expected = {name for name in time_zones_for_number(number) if name != "Etc/Unknown"}
            if keys(zones_for(None, e164)) != expected:
                mismatches.append((region, kind))
    assert mismatches == []


def test_nanp_numbers_resolve_by_area_code() -> None:
    assert zones_for(None, "+18762101234") == (ZoneInfo("America/Jamaica"),)
    assert zones_for(None, TORONTO_PHONE) == (ZoneInfo("America/Toronto"),)


# --- region_codes_for ----------------------------------------------------------------------


def test_regions_from_address_and_number() -> None:
    assert region_codes_for(Address(country="US", region="fl"), None) == {"FL"}
    assert region_codes_for(None, MIAMI_PHONE) == {"FL"}
    assert region_codes_for(None, LA_PHONE) == {"CA"}
    assert region_codes_for(None, "+12065550100") == {"WA"}
    assert region_codes_for(Address(country="US", region="FL"), ATLANTA_PHONE) == {"FL", "GA"}


def test_regions_ignore_non_us_places() -> None:
    assert region_codes_for(Address(country="CA", region="ON"), TORONTO_PHONE) == frozenset()
    assert region_codes_for(None, "+447400123456") == frozenset()
    assert region_codes_for(None, None) == frozenset()


# --- windows in one zone -------------------------------------------------------------------


def test_new_york_opens_at_eight_and_closes_at_nine() -> None:
    day = (2026, 6, 10)  # a Wednesday
    assert not is_open(at(NY, *day, 7, 59), (NY,), NONE)
    assert is_open(at(NY, *day, 8, 0), (NY,), NONE)
    assert is_open(at(NY, *day, 20, 59), (NY,), NONE)
    assert not is_open(at(NY, *day, 21, 0), (NY,), NONE)


def test_los_angeles_uses_its_own_clock() -> None:
    instant = at(NY, 2026, 6, 10, 10, 0)  # 7:00 in Los Angeles
    assert is_open(instant, (NY,), NONE)
    assert not is_open(instant, (LA,), NONE)
    assert next_open(instant, (LA,), NONE) == at(LA, 2026, 6, 10, 8, 0)


def test_no_zone_is_never_open() -> None:
    now = datetime(2026, 6, 10, 16, tzinfo=UTC)
    assert not is_open(now, (), NONE)
    assert next_open(now, (), NONE) is None


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        is_open(datetime(2026, 6, 10, 12), (NY,), NONE)
    with pytest.raises(ValueError):
        next_open(datetime(2026, 6, 10, 12), (NY,), NONE)


def test_next_open_is_now_when_open() -> None:
    now = at(NY, 2026, 6, 10, 12, 0)
    assert next_open(now, (NY,), NONE) == now


def test_next_open_after_close_is_next_morning() -> None:
    assert next_open(at(NY, 2026, 6, 10, 21, 0), (NY,), NONE) == at(NY, 2026, 6, 11, 8, 0)


def test_calling_window_must_be_a_daytime_interval() -> None:
    with pytest.raises(ValueError):
        CallingWindow(time(21), time(8))
    with pytest.raises(ValueError):
        CallingWindow(time(8, tzinfo=UTC), time(21))


# --- daylight saving time ------------------------------------------------------------------


def test_spring_forward_opens_at_eight_wall_time() -> None:
    # 2026-03-08: New York goes from UTC-5 to UTC-4 at 2:00. The day before, 8:00 is 13:00 UTC.
    assert next_open(datetime(2026, 3, 7, 3, tzinfo=UTC), (NY,), NONE) == datetime(
        2026, 3, 7, 13, tzinfo=UTC
    )
    saturday_night = datetime(2026, 3, 8, 3, tzinfo=UTC)  # 22:00 EST on the 7th
    assert next_open(saturday_night, (NY,), NONE) == datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert not is_open(datetime(2026, 3, 8, 11, 59, tzinfo=UTC), (NY,), NONE)
    assert is_open(datetime(2026, 3, 8, 12, 0, tzinfo=UTC), (NY,), NONE)


def test_fall_back_opens_at_eight_wall_time() -> None:
    # 2026-11-01: New York goes from UTC-4 to UTC-5 at 2:00.
    saturday_night = datetime(2026, 11, 1, 2, tzinfo=UTC)  # 22:00 EDT on the 31st
    assert next_open(saturday_night, (NY,), NONE) == datetime(2026, 11, 1, 13, tzinfo=UTC)
    assert not is_open(datetime(2026, 11, 1, 12, 59, tzinfo=UTC), (NY,), NONE)
    assert is_open(datetime(2026, 11, 1, 13, 0, tzinfo=UTC), (NY,), NONE)
    # And it closes at 21:00 EST, 02:00 UTC the next day.
    assert is_open(datetime(2026, 11, 2, 1, 59, tzinfo=UTC), (NY,), NONE)
    assert not is_open(datetime(2026, 11, 2, 2, 0, tzinfo=UTC), (NY,), NONE)


def test_window_starting_in_the_spring_gap_opens_when_clocks_jump() -> None:
    window = CallingWindow(time(2, 30), time(5))  # 2:30 never happens on 2026-03-08
    opens = next_open(datetime(2026, 3, 8, 5, tzinfo=UTC), (NY,), NONE, window)
    assert opens == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 3:00 EDT
    assert is_open(opens, (NY,), NONE, window)


def test_window_starting_in_the_repeated_hour_opens_the_first_time() -> None:
    window = CallingWindow(time(1, 30), time(5))  # 1:30 happens twice on 2026-11-01
    opens = next_open(datetime(2026, 11, 1, 4, tzinfo=UTC), (NY,), NONE, window)
    assert opens == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 1:30 EDT


def test_next_open_across_zones_on_a_change_day() -> None:
    # Europe changes on 2026-03-29, the US on 2026-03-08: between, London is 4 h ahead of NY.
    london = ZoneInfo("Europe/London")
    window = CallingWindow(time(8), time(13))
    opens = next_open(datetime(2026, 3, 10, 0, tzinfo=UTC), (NY, london), NONE, window)
    # 8:00 NY is 12:00 London: open for one hour (until 13:00 London).
    assert opens == datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize("first_day", [date(2026, 3, 7), date(2026, 10, 31)])
def test_open_hours_follow_the_wall_clock_through_a_change(first_day: date) -> None:
    start = datetime.combine(first_day, time(), tzinfo=UTC)
    for quarter in range(4 * 24 * 3):
        now = start + timedelta(minutes=15 * quarter)
        assert is_open(now, (NY,), NONE) == (8 <= now.astimezone(NY).hour < 21), now


def test_now_in_any_zone_is_the_same_instant() -> None:
    now = at(NY, 2026, 6, 10, 8, 0)
    assert is_open(now.astimezone(LA), (NY,), NONE)
    assert next_open(at(NY, 2026, 6, 10, 7, 0).astimezone(LA), (NY,), NONE) == now


# --- state rules ---------------------------------------------------------------------------


def test_florida_ends_at_eight_and_caps_three_calls() -> None:
    fl = frozenset({"FL"})
    assert is_open(at(NY, 2026, 6, 10, 19, 59), (NY,), fl)
    assert not is_open(at(NY, 2026, 6, 10, 20, 0), (NY,), fl)
    assert state_call_cap(fl) == 3
    assert state_call_cap(frozenset({"FL", "NY"})) == 3
    assert state_call_cap(frozenset({"NY"})) is None


def test_texas_sunday_starts_at_noon() -> None:
    tx = frozenset({"TX"})
    sunday, saturday = (2026, 6, 14), (2026, 6, 13)
    assert not is_open(at(CHI, *sunday, 11, 59), (CHI,), tx)
    assert is_open(at(CHI, *sunday, 12, 0), (CHI,), tx)
    assert not is_open(at(CHI, *saturday, 8, 59), (CHI,), tx)
    assert is_open(at(CHI, *saturday, 9, 0), (CHI,), tx)
    assert next_open(at(CHI, *sunday, 8, 0), (CHI,), tx) == at(CHI, *sunday, 12, 0)


def test_rhode_island_sunday_waits_for_monday_nine() -> None:
    ri = frozenset({"RI"})
    sunday = at(NY, 2026, 6, 14, 12, 0)
    assert not is_open(sunday, (NY,), ri)
    assert is_quiet_day(date(2026, 6, 14), ri)
    assert next_open(sunday, (NY,), ri) == at(NY, 2026, 6, 15, 9, 0)
    assert open_window(date(2026, 6, 13), ri) == CallingWindow(time(10), time(17))
    assert open_window(date(2026, 6, 15), ri) == CallingWindow(time(9), time(18))


def test_pennsylvania_sunday_starts_half_past_one() -> None:
    assert open_window(date(2026, 6, 14), frozenset({"PA"})) == CallingWindow(
        time(13, 30), time(21)
    )


def test_holiday_states_are_quiet_on_federal_holidays() -> None:
    july_3 = date(2026, 7, 3)  # Independence Day falls on a Saturday: observed Friday
    assert {date(2026, 7, 4), july_3, date(2026, 11, 26)} <= us_holidays(2026)
    assert is_quiet_day(july_3, frozenset({"UT"}))
    assert not is_quiet_day(july_3, frozenset({"FL"}))
    assert open_window(date(2026, 11, 26), frozenset({"LA"})) is None


def test_every_state_rule_is_a_real_state() -> None:
    assert set(STATE_RULES) <= set(US_STATE_ZONES)


def test_florida_address_with_texas_number_keeps_both_rules() -> None:
    address = Address(country="US", region="FL")
    zones = zones_for(address, HOUSTON_PHONE)
    regions = region_codes_for(address, HOUSTON_PHONE)
    assert regions == {"FL", "TX"}
    assert keys(zones) == {NY.key, CHI.key}
    monday = (2026, 6, 15)
    # Texas opens at 9:00 (Chicago); Florida closes at 20:00 (New York).
    assert not is_open(at(CHI, *monday, 8, 59), zones, regions)
    assert is_open(at(CHI, *monday, 9, 0), zones, regions)
    assert is_open(at(NY, *monday, 19, 59), zones, regions)
    assert not is_open(at(NY, *monday, 20, 0), zones, regions)


# --- campaign quiet days -------------------------------------------------------------------


def test_quiet_weekdays_and_dates_skip_whole_days() -> None:
    sundays = frozenset({6})
    saturday_night = at(NY, 2026, 6, 13, 21, 30)
    assert next_open(saturday_night, (NY,), NONE, quiet_weekdays=sundays) == at(
        NY, 2026, 6, 15, 8, 0
    )
    holiday = frozenset({date(2026, 6, 15)})
    assert next_open(saturday_night, (NY,), NONE, quiet_weekdays=sundays, quiet_dates=holiday) == (
        at(NY, 2026, 6, 16, 8, 0)
    )
    assert not is_open(at(NY, 2026, 6, 15, 12, 0), (NY,), NONE, quiet_dates=holiday)


def test_never_open_gives_none() -> None:
    every_day = frozenset(range(7))
    assert next_open(at(NY, 2026, 6, 15, 12), (NY,), NONE, quiet_weekdays=every_day) is None


def test_window_empty_by_intersection_gives_no_open_day() -> None:
    evening = CallingWindow(time(18), time(21))
    assert open_window(date(2026, 6, 15), frozenset({"RI"}), evening) is None


# --- address and number disagree -----------------------------------------------------------


def test_new_york_address_with_los_angeles_number_uses_hours_open_in_both() -> None:
    zones = zones_for(Address(country="US", region="NY"), LA_PHONE)
    regions = region_codes_for(Address(country="US", region="NY"), LA_PHONE)
    day = (2026, 6, 10)
    assert not is_open(at(NY, *day, 10, 59), zones, regions)  # 7:59 in Los Angeles
    assert is_open(at(NY, *day, 11, 0), zones, regions)
    assert is_open(at(NY, *day, 20, 59), zones, regions)
    assert not is_open(at(NY, *day, 21, 0), zones, regions)
    assert next_open(at(NY, *day, 8, 30), zones, regions) == at(NY, *day, 11, 0)
    # After 21:00 New York, the next opening is 8:00 Los Angeles the next day.
    assert next_open(at(NY, *day, 21, 0), zones, regions) == at(LA, 2026, 6, 11, 8, 0)


def test_next_open_is_open_everywhere_for_many_starts() -> None:
    zones = (NY, LA, ZoneInfo("Pacific/Honolulu"), DEN)
    regions = frozenset({"TX", "FL"})
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for hour in range(0, 24 * 70, 7):
        now = start + timedelta(hours=hour)
        opens = next_open(now, zones, regions)
        assert opens is not None
        assert opens >= now
        assert is_open(opens, zones, regions)
        assert not is_open(opens - timedelta(minutes=1), zones, regions) or opens == now
