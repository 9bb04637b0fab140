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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.campaigns.places import Location, locate, region_codes_for, zones_for

__all__ = [
    "DEFAULT_WINDOW",
    "STATE_RULES",
    "CallingWindow",
    "Location",
    "StateRule",
    "is_open",
    "is_quiet_day",
    "locate",
    "next_open",
    "open_window",
    "region_codes_for",
    "state_call_cap",
    "us_holidays",
    "zones_for",
]


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


# Every zone on a clock of its own in a populated part of the state: a state that spans zones
# lists them all, so a window must be legal in each. Arizona lists Denver for the Navajo Nation,
# which keeps daylight saving time while the rest of the state does not.
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
