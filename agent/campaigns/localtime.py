"""The recipient's local time and the hours in which they may be called.

Local time comes from the address, else the number; where the two disagree, only hours that
are legal in both count, so every function here takes *all* candidate zones and regions and a
window is open only when it is open in each of them. Windows are local wall-clock times: a
window opening at 8:00 opens at 8:00 on the clock, whatever the UTC offset that day.

``STATE_RULES`` is a starting point, not legal advice: the merchant must confirm it with
counsel for the states they call. The campaign's own window always applies as well, and the
stricter of the two wins.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from agent.campaigns.records import Address

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """Local wall-clock hours ``[start, end)`` within one day; ``start`` must precede ``end``."""

    start: time = time(8)
    end: time = time(21)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a calling window is local wall time: use naive times")
        if self.start >= self.end:
            raise ValueError("a calling window must start before it ends (same day)")


DEFAULT_WINDOW = CallingWindow()
_HORIZON = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class StateRule:
    """A state's own telemarketing hours and limits; ``None`` for a day means no calls."""

    weekdays: CallingWindow
    saturday: CallingWindow | None
    sunday: CallingWindow | None
    max_calls_per_24h: int | None = None
    no_calls_on_holidays: bool = False

    def window_on(self, day: date) -> CallingWindow | None:
        """The state's window on ``day`` (local date), ignoring holidays."""
        weekday = day.weekday()
        if weekday < 5:
            return self.weekdays
        return self.saturday if weekday == 5 else self.sunday


def _window(start: float, end: float) -> CallingWindow:
    return CallingWindow(time(int(start), int(start % 1 * 60)), time(int(end), int(end % 1 * 60)))


def _every_day(window: CallingWindow, max_calls_per_24h: int | None = None) -> StateRule:
    return StateRule(window, window, window, max_calls_per_24h)


_8_20, _8_21, _9_21 = _window(8, 20), _window(8, 21), _window(9, 21)

# Summarised from each state's telemarketing ("mini-TCPA") statute; confirm with counsel.
STATE_RULES: dict[str, StateRule] = {
    "AL": StateRule(_8_20, _8_20, None, no_calls_on_holidays=True),
    "CT": _every_day(_window(9, 20)),
    "FL": _every_day(_8_20, max_calls_per_24h=3),
    "LA": StateRule(_8_20, _8_20, None, no_calls_on_holidays=True),
    "MA": _every_day(_8_20),
    "MD": _every_day(_8_20, max_calls_per_24h=3),
    "MS": StateRule(_8_20, _8_20, None),
    "OK": _every_day(_8_20, max_calls_per_24h=3),
    "PA": StateRule(_8_21, _8_21, _window(13.5, 21)),
    "RI": StateRule(_window(9, 18), _window(10, 17), None, no_calls_on_holidays=True),
    "TX": StateRule(_9_21, _9_21, _window(12, 21)),
    "UT": StateRule(_8_21, _8_21, None, no_calls_on_holidays=True),
    "WA": _every_day(_8_20),
}

_NY, _CHI = "America/New_York", "America/Chicago"
_DEN, _LA = "America/Denver", "America/Los_Angeles"

# Every zone on a clock of its own in a populated part of the state: a state that spans zones
# lists them all, so a window must be legal in each. Arizona lists Denver for the Navajo Nation,
# which keeps daylight saving time while the rest of the state does not.
US_STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": (_CHI,), "AK": ("America/Anchorage", "America/Adak"),
    "AZ": ("America/Phoenix", _DEN), "AR": (_CHI,), "CA": (_LA,), "CO": (_DEN,), "CT": (_NY,),
    "DE": (_NY,), "DC": (_NY,), "FL": (_NY, _CHI), "GA": (_NY,), "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", _LA), "IL": (_CHI,), "IN": ("America/Indiana/Indianapolis", _CHI),
    "IA": (_CHI,), "KS": (_CHI, _DEN), "KY": ("America/Kentucky/Louisville", _CHI),
    "LA": (_CHI,), "ME": (_NY,), "MD": (_NY,), "MA": (_NY,),
    "MI": ("America/Detroit", "America/Menominee"), "MN": (_CHI,), "MS": (_CHI,), "MO": (_CHI,),
    "MT": (_DEN,), "NE": (_CHI, _DEN), "NV": (_LA,), "NH": (_NY,), "NJ": (_NY,), "NM": (_DEN,),
    "NY": (_NY,), "NC": (_NY,), "ND": (_CHI, _DEN), "OH": (_NY,), "OK": (_CHI,),
    "OR": (_LA, "America/Boise"), "PA": (_NY,), "RI": (_NY,), "SC": (_NY,), "SD": (_CHI, _DEN),
    "TN": (_NY, _CHI), "TX": (_CHI, _DEN), "UT": (_DEN,), "VT": (_NY,), "VA": (_NY,),
    "WA": (_LA,), "WV": (_NY,), "WI": (_CHI,), "WY": (_DEN,), "PR": ("America/Puerto_Rico",),
    "VI": ("America/St_Thomas",), "GU": ("Pacific/Guam",), "AS": ("Pacific/Pago_Pago",),
    "MP": ("Pacific/Saipan",),
}  # fmt: skip

CA_PROVINCE_ZONES: dict[str, tuple[str, ...]] = {
    "AB": ("America/Edmonton",),
    "BC": ("America/Vancouver", "America/Edmonton", "America/Dawson_Creek"),
    "MB": ("America/Winnipeg",), "NB": ("America/Moncton",),
    "NL": ("America/St_Johns", "America/Goose_Bay"), "NS": ("America/Halifax",),
    "NT": ("America/Edmonton",),
    "NU": ("America/Iqaluit", "America/Rankin_Inlet", "America/Cambridge_Bay"),
    "ON": ("America/Toronto", "America/Winnipeg"), "PE": ("America/Halifax",),
    "QC": ("America/Toronto", "America/Halifax"), "SK": ("America/Regina", "America/Edmonton"),
    "YT": ("America/Whitehorse",),
}  # fmt: skip

_REGION_ZONES = {"US": US_STATE_ZONES, "CA": CA_PROVINCE_ZONES}

# Only used when the tzdata package's zone.tab cannot be read (US and Canada have tables above).
_FALLBACK_COUNTRY_ZONES: dict[str, tuple[str, ...]] = {
    "GB": ("Europe/London",), "IE": ("Europe/Dublin",), "DE": ("Europe/Berlin",),
    "FR": ("Europe/Paris",), "ES": ("Europe/Madrid", "Atlantic/Canary"), "IT": ("Europe/Rome",),
    "NL": ("Europe/Amsterdam",), "NZ": ("Pacific/Auckland",), "PR": ("America/Puerto_Rico",),
}  # fmt: skip

US_STATE_NAMES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "Washington State": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC", "District of Columbia": "DC",
    "Puerto Rico": "PR",
}  # fmt: skip

_STATE_SUFFIX = re.compile(r", ([A-Z]{2})$")


@functools.cache
def _country_zone_names() -> dict[str, tuple[str, ...]]:
    try:
        text = resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, OSError):
        return _FALLBACK_COUNTRY_ZONES
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            table.setdefault(fields[0], []).append(fields[2])
    return {country: tuple(names) for country, names in table.items()}


def _load(names: Iterable[str]) -> tuple[ZoneInfo, ...]:
    zones: dict[str, ZoneInfo] = {}
    for name in names:
        if name in zones:
            continue
        try:
            zones[name] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue  # a name this tzdata does not know tells us nothing usable
    return tuple(zones.values())


def _place(address: Address | None) -> tuple[str, str]:
    if address is None or not address.country:
        return "", ""
    country = address.country.strip().upper()
    return country, (address.region or "").strip().upper().removeprefix(f"{country}-")


def _address_zone_names(country: str, region: str) -> tuple[tuple[str, ...], bool]:
    """Zone names for an address, and whether they are as precise as the address allows."""
    regions = _REGION_ZONES.get(country)
    if regions is not None and region in regions:
        return regions[region], True
    names = _country_zone_names().get(country, ())
    # A country-wide guess is precise only where the country itself has a single zone.
    return names, regions is None and len(names) <= 1


def _longest_prefix(table: Mapping[str, _T], longest: int, digits: str) -> _T | None:
    for length in range(min(longest, len(digits)), 0, -1):
        found = table.get(digits[:length])
        if found is not None:
            return found
    return None


@functools.cache
def _nanp_tables() -> tuple[dict[str, str], int]:
    """Prefix -> US state code ("" elsewhere in the NANP), and how many digits decide a +1
    number's zones and state."""
    # Imported on first use: the geocoding tables take a second and tens of MB to load.
    from phonenumbers.geodata import GEOCODE_DATA

    states: dict[str, str] = {}
    for prefix, names in GEOCODE_DATA.items():
        if prefix.startswith("1") and (name := names.get("en")):
            suffix = _STATE_SUFFIX.search(name)
            code = suffix.group(1) if suffix else US_STATE_NAMES.get(name, "")
            # Canadian and Caribbean prefixes stay in (as "") so that a longer prefix outside
            # the US is never overruled by a shorter US one.
            states[prefix] = code if code in US_STATE_ZONES else ""
    zone_prefixes = (key for key in TIMEZONE_DATA if key.startswith("1"))
    return states, max(map(len, (*states, *zone_prefixes)))


@functools.lru_cache(maxsize=65536)
def _number_facts(key: str) -> tuple[tuple[str, ...], str | None]:
    """Zone names and US state of a number (or, in the NANP, of its deciding prefix).

    Zones are those ``phonenumbers.timezone.time_zones_for_number`` gives. That call costs
    about 60 µs (it parses and types the number), too slow for every contact, so the prefix
    table is read directly where the answer cannot depend on the number's type: in the NANP,
    where every area code lies in one place (the library spreads Caribbean mobiles over all of
    North America; the prefix names the island), and elsewhere when the prefix names the same
    zones as the whole country. Otherwise a mobile may be anywhere in a country of several
    zones, and only the library can tell.
    """
    digits = key[1:]
    names = _longest_prefix(TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX, digits)
    if digits.startswith("1"):
        states, longest = _nanp_tables()
        state = _longest_prefix(states, longest, digits) or None
    else:
        state = None
        code = next(
            (digits[:n] for n in (1, 2, 3) if int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE), ""
        )
        if not code or TIMEZONE_DATA.get(code) != names:
            try:
                names = time_zones_for_number(phonenumbers.parse(key))
            except phonenumbers.NumberParseException:
                names = ()
    return tuple(name for name in names or () if name != "Etc/Unknown"), state


def _number_key(phone_e164: str | None) -> str:
    if not phone_e164 or phone_e164[:1] != "+" or not phone_e164[1:].isdigit():
        return ""
    if phone_e164[1] == "1":
        return phone_e164[: 1 + _nanp_tables()[1]]  # the rest of the number changes nothing
    return phone_e164


@dataclass(frozen=True, slots=True)
class Location:
    """Where a recipient may be: every candidate zone, and the US states whose rules apply."""

    zones: tuple[ZoneInfo, ...]
    regions: frozenset[str]


@functools.lru_cache(maxsize=16384)
def _locate(country: str, region: str, number_key: str) -> Location:
    number_names, number_state = _number_facts(number_key) if number_key else ((), None)
    address_names, precise = _address_zone_names(country, region) if country else ((), False)
    if not address_names or (not precise and set(number_names) <= set(address_names)):
        # No address, or the number narrows a country-wide guess without contradicting it.
        zones = _load(number_names or address_names)
    elif set(address_names) <= set(number_names):
        # A vaguer number (toll-free, a mobile range) agrees with the address: it decides.
        zones = _load(address_names)
    else:
        zones = _load((*address_names, *number_names))
    states = {region} if country == "US" and region in US_STATE_ZONES else set()
    if number_state is not None:
        states.add(number_state)
    return Location(zones, frozenset(states))


def locate(address: Address | None, phone_e164: str | None) -> Location:
    """The recipient's candidate zones and applicable US states (see :func:`zones_for`)."""
    return _locate(*_place(address), _number_key(phone_e164))


def zones_for(address: Address | None, phone_e164: str | None) -> tuple[ZoneInfo, ...]:
    """Candidate time zones of a recipient; empty when nothing is known.

    The address decides; without one, the number does. When they point to different places
    (neither's zones contain the other's), the union is returned: callers must find the window
    open in every zone. A number only refines an address known to its country alone.
    """
    return locate(address, phone_e164).zones


def region_codes_for(address: Address | None, phone_e164: str | None) -> frozenset[str]:
    """US state codes whose rules apply: the address's state and the number's, when they differ."""
    return locate(address, phone_e164).regions


@functools.lru_cache(maxsize=4096)
def state_call_cap(regions: frozenset[str]) -> int | None:
    """The strictest per-24-hour call cap among ``regions``; ``None`` when none has one."""
    caps = [rule.max_calls_per_24h for code in regions if (rule := STATE_RULES.get(code))]
    return min((cap for cap in caps if cap is not None), default=None)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    if n > 0:
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@functools.cache
def us_holidays(year: int) -> frozenset[date]:
    """US federal holidays of ``year``, both the date itself and the day it is observed."""
    fixed = [date(year, 1, 1), date(year, 6, 19), date(year, 7, 4), date(year, 11, 11)]
    fixed.append(date(year, 12, 25))
    observed = [d + timedelta(days=1 if d.weekday() == 6 else -1) for d in fixed if d.weekday() > 4]
    movable = [
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
    ]
    return frozenset(fixed + observed + movable)


@functools.lru_cache(maxsize=8192)
def is_quiet_day(
    day: date,
    regions: frozenset[str],
    quiet_weekdays: frozenset[int] = frozenset(),
    quiet_dates: frozenset[date] = frozenset(),
) -> bool:
    """Whether no call at all may be made on local date ``day`` (campaign or state rule)."""
    if day.weekday() in quiet_weekdays or day in quiet_dates:
        return True
    for code in regions:
        rule = STATE_RULES.get(code)
        if rule is None:
            continue
        if rule.window_on(day) is None:
            return True
        if rule.no_calls_on_holidays and day in us_holidays(day.year):
            return True
    return False


@functools.lru_cache(maxsize=8192)
def open_window(
    day: date,
    regions: frozenset[str],
    window: CallingWindow = DEFAULT_WINDOW,
    quiet_weekdays: frozenset[int] = frozenset(),
    quiet_dates: frozenset[date] = frozenset(),
) -> CallingWindow | None:
    """The local hours on ``day`` allowed by the campaign and every state rule, or ``None``."""
    if is_quiet_day(day, regions, quiet_weekdays, quiet_dates):
        return None
    start, end = window.start, window.end
    for code in regions:
        rule = STATE_RULES.get(code)
        state_window = rule.window_on(day) if rule is not None else None
        if state_window is not None:
            start, end = max(start, state_window.start), min(end, state_window.end)
    return CallingWindow(start, end) if start < end else None


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now if now.tzinfo is UTC else now.astimezone(UTC)


def _first_instant_at(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the clock in ``zone`` shows ``wall`` (or later) on ``day``:
    the first of two repeated wall times, and the moment the clocks jump for a skipped one."""
    naive = datetime.combine(day, wall)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the earlier offset
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    low, high = naive.replace(tzinfo=zone, fold=1).astimezone(UTC), instant
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _intersect(
    left: list[tuple[datetime, datetime]], right: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    both, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        start, end = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if start < end:
            both.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return both


@functools.lru_cache(maxsize=4096)
def _schedule(
    zones: tuple[ZoneInfo, ...],
    regions: frozenset[str],
    window: CallingWindow,
    quiet_weekdays: frozenset[int],
    quiet_dates: frozenset[date],
    utc_day: date,
    days: int,
) -> tuple[tuple[datetime, ...], tuple[datetime, ...]]:
    """Starts and ends of the UTC spans, from ``utc_day`` on for ``days`` days, that are open in
    every zone. Computed once per recipient kind and day, so each check is a binary search."""
    common: list[tuple[datetime, datetime]] | None = None
    for zone in zones:
        spans = []
        for offset in range(-1, days + 2):  # local dates run a day either side of UTC
            day = utc_day + timedelta(days=offset)
            allowed = open_window(day, regions, window, quiet_weekdays, quiet_dates)
            if allowed is not None:
                start = _first_instant_at(day, allowed.start, zone)
                end = _first_instant_at(day, allowed.end, zone)
                if start < end:
                    spans.append((start, end))
        common = spans if common is None else _intersect(common, spans)
    return tuple(start for start, _ in common or ()), tuple(end for _, end in common or ())


def _open_span(
    now: datetime,
    zones: Iterable[ZoneInfo],
    regions: frozenset[str],
    window: CallingWindow,
    quiet_weekdays: frozenset[int],
    quiet_dates: frozenset[date],
    horizon: timedelta,
) -> tuple[datetime, datetime] | None:
    """The first span open in every zone that ends after ``now``."""
    days = max(_HORIZON.days, horizon.days) + 1  # one size for both callers: one cache entry
    zone_tuple = zones if isinstance(zones, tuple) else tuple(zones)
    if not zone_tuple:
        return None
    starts, ends = _schedule(
        zone_tuple, regions, window, quiet_weekdays, quiet_dates, now.date(), days
    )
    index = bisect.bisect_right(ends, now)
    return (starts[index], ends[index]) if index < len(ends) else None


def is_open(
    now: datetime,
    zones: Iterable[ZoneInfo],
    regions: frozenset[str],
    window: CallingWindow = DEFAULT_WINDOW,
    quiet_weekdays: frozenset[int] = frozenset(),
    quiet_dates: frozenset[date] = frozenset(),
) -> bool:
    """Whether ``now`` falls inside the allowed hours in every zone (``False`` with no zones).

    A zone's hours on a local date run from the first instant its clock shows the window's
    start to the first instant it shows the window's end.
    """
    now = _utc(now)
    span = _open_span(now, zones, regions, window, quiet_weekdays, quiet_dates, _HORIZON)
    return span is not None and span[0] <= now


def next_open(
    now: datetime,
    zones: Iterable[ZoneInfo],
    regions: frozenset[str],
    window: CallingWindow = DEFAULT_WINDOW,
    quiet_weekdays: frozenset[int] = frozenset(),
    quiet_dates: frozenset[date] = frozenset(),
    horizon: timedelta = _HORIZON,
) -> datetime | None:
    """The earliest UTC instant at or after ``now`` that is open in every zone.

    ``None`` when there are no zones or nothing opens within ``horizon``.
    """
    now = _utc(now)
    span = _open_span(now, zones, regions, window, quiet_weekdays, quiet_dates, horizon)
    if span is None:
        return None
    opens = max(span[0], now)
    return opens if opens <= now + horizon else None
