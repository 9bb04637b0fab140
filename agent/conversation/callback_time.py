"""When the customer asked to be called back, from their own words ("tomorrow at 3").

A small pure parser: a day (today, tomorrow, a weekday, next week), a time
(3, 3:30 pm, noon, half past two) or a part of the day (morning, afternoon,
evening), or a delay (in two hours). It knows its limits: anything else, or a
time in the past or too far ahead, gives None, and the agent asks again.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

HORIZON = dt.timedelta(days=14)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PARTS_OF_DAY = {
    "morning": dt.time(10, 0),
    "lunchtime": dt.time(12, 30),
    "lunch": dt.time(12, 30),
    "afternoon": dt.time(14, 0),
    "evening": dt.time(18, 0),
    "tonight": dt.time(19, 0),
    "night": dt.time(19, 0),
}
DEFAULT_TIME = dt.time(10, 0)  # a day without a time: the morning
_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty five": 45,
    "a couple of": 2,
    "a couple": 2,
    "a few": 3,
    "an": 1,
    "a": 1,
}
_NUMBER_WORDS = "|".join(sorted(map(re.escape, _NUMBERS), key=len, reverse=True))
_DELAY = re.compile(
    rf"\bin (?:about |around |roughly )?(\d+|{_NUMBER_WORDS}) ?(minute|min|hour|hr|day)s?\b"
)
_HALF_HOUR = re.compile(r"\bin (?:about |around )?(?:half an hour|thirty minutes|30 minutes)\b")
_CLOCK = re.compile(
    r"\b(?:(?P<half>half past) )?(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))? ?"
    r"(?P<ampm>am|pm|o'?clock)?\b"
)


def _clean(text: str) -> str:
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"\b([ap])\.? ?m\b\.?", r"\1m", text)
    text = re.sub(r"[^a-z0-9:' ]+", " ", text)
    text = re.sub(r"\bnoon\b|\bmidday\b", "12:00 pm", text)
    for word, value in sorted(_NUMBERS.items(), key=lambda kv: -len(kv[0])):
        if word in ("a", "an", "a couple", "a few", "a couple of"):
            continue
        text = re.sub(rf"\b{word}\b", str(value), text)
    return re.sub(r"\s+", " ", text).strip()


def parse_callback_time(
    text: str, now: dt.datetime, tz: ZoneInfo, horizon: dt.timedelta = HORIZON
) -> dt.datetime | None:
    """The moment ``text`` names, in ``tz``; None if none, or not within (now, now + horizon].

    ``now`` must be aware. An hour said without am or pm is read as a waking-hours
    time: 8 to 11 in the morning, 12 to 7 in the afternoon or evening.
    """
    local_now = now.astimezone(tz)
    said = text.lower()
    found = _delay(said, local_now) or _day_and_time(_clean(text), local_now, tz)
    if found is None or not local_now < found <= local_now + horizon:
        return None
    return found


def _delay(said: str, now: dt.datetime) -> dt.datetime | None:
    if _HALF_HOUR.search(said):
        return _minute(now + dt.timedelta(minutes=30))
    match = _DELAY.search(said)
    if match is None:
        return None
    amount = _NUMBERS.get(match[1]) or int(match[1])
    unit = {"minute": "minutes", "min": "minutes", "hour": "hours", "hr": "hours", "day": "days"}
    delta = dt.timedelta(**{unit[match[2]]: amount})
    if match[2] == "day":
        return (now + delta).replace(hour=DEFAULT_TIME.hour, minute=0, second=0, microsecond=0)
    return _minute(now + delta)


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _day_and_time(said: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    day, part = _day(said, now.date())
    clock = _clock(said, part)
    if clock is None and part is not None:
        clock = PARTS_OF_DAY[part]
    if day is None and clock is None:
        return None
    if day is None:
        assert clock is not None
        day = now.date()
        if dt.datetime.combine(day, clock, tz) <= now:
            day += dt.timedelta(days=1)
    return dt.datetime.combine(day, clock or DEFAULT_TIME, tz)


def _day(said: str, today: dt.date) -> tuple[dt.date | None, str | None]:
    part = next((p for p in PARTS_OF_DAY if re.search(rf"\b{p}\b", said)), None)
    if re.search(r"\bday after tomorrow\b", said):
        return today + dt.timedelta(days=2), part
    if re.search(r"\btomorrow\b", said):
        return today + dt.timedelta(days=1), part
    if re.search(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", said):
        return today, part
    for number, name in enumerate(WEEKDAYS):
        if re.search(rf"\b{name}s?\b", said):
            ahead = (number - today.weekday()) % 7 or 7
            return today + dt.timedelta(days=ahead), part
    if re.search(r"\bnext week\b", said):
        return today + dt.timedelta(days=7 - today.weekday()), part
    if re.search(r"\b(?:this |the )?weekend\b", said):
        ahead = (5 - today.weekday()) % 7 or 7
        return today + dt.timedelta(days=ahead), part
    return None, part


def _clock(said: str, part: str | None) -> dt.time | None:
    for match in _CLOCK.finditer(said):
        hour, minute = int(match["hour"]), int(match["minute"] or 0)
        ampm = match["ampm"] or ""
        # A bare number is a time only after "at", "around"... or with am/pm or a colon.
        before = said[: match.start()].split()[-1:] or [""]
        if not (ampm or match["minute"] or match["half"] or before[0] in _TIME_WORDS):
            continue
        if match["half"]:
            minute = 30
        if hour > 23 or minute > 59:
            return None
        if ampm == "pm" and hour < 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        elif ampm not in ("am", "pm") and hour <= 12:
            hour = _waking_hour(hour, part)
        return dt.time(hour, minute)
    return None


_TIME_WORDS = frozenset({"at", "around", "about", "after", "before", "by", "past", "until", "til"})


def _waking_hour(hour: int, part: str | None) -> int:
    if part in ("afternoon", "evening", "tonight", "night"):
        return hour + 12 if hour < 12 else hour
    if part == "morning":
        return hour % 12
    return hour + 12 if 1 <= hour <= 7 else hour


__all__ = ["HORIZON", "parse_callback_time"]
