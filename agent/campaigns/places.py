"""Where a recipient is: the time zones and US states of an address and a phone number.

From the address (state or province, else the country) and from the number (its
area code, read from phonenumbers' tables); where the two disagree, every zone
of both counts, so callers require hours that are legal in all of them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from agent.campaigns.records import Address

_T = TypeVar("_T")
_NY, _CHI = "America/New_York", "America/Chicago"
_DEN, _LA = "America/Denver", "America/Los_Angeles"


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
