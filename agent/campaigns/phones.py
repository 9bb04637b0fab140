"""Phone numbers in, E.164 out: the one place that decides whether a number can be called.

A number is read in the shopper's own country when the address says which, else in the
store's region, so "(201) 555-0123" from a US checkout and "020 7946 0018" from a UK one
both resolve. Errors are stable codes and never contain the number itself, so they can be
logged, counted and shown in the dashboard without leaking personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

PhoneError = Literal["missing", "unparseable", "invalid", "not_a_phone"]

# Lines a person answers. Premium-rate, shared-cost, toll-free, pager and "unknown" numbers are
# not a shopper's phone; VoIP is, since many households now have nothing else.
_CALLABLE_TYPES = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.VOIP,
    }
)

# Far beyond any real number with its formatting; refusing longer input keeps the parser cheap.
_MAX_RAW_LENGTH = 64


@dataclass(frozen=True)
class PhoneResult:
    """The number in E.164 (``"+12015550123"``), or why there is none.

    Exactly one of ``e164`` and ``error`` is set. ``error`` is one of ``"missing"`` (no
    number given), ``"unparseable"`` (not a phone number at all, or no country to read a
    national number in), ``"invalid"`` (a number no carrier assigns) and ``"not_a_phone"``
    (a valid number of a kind that is not a person's line: premium rate, toll free, pager).
    """

    e164: str | None
    error: PhoneError | None = None

    @property
    def ok(self) -> bool:
        return self.e164 is not None


def normalize_phone(raw: str | None, default_region: str | None) -> PhoneResult:
    """Parse ``raw`` as a callable phone number.

    ``default_region`` is an ISO 3166-1 alpha-2 code (any case) used for numbers written
    without a country code: pass the address country when known, else the store's region.
    With no region, only numbers in international form (``+44 ...``) can be read.
    """
    if raw is None or not raw.strip():
        return PhoneResult(None, "missing")
    if len(raw) > _MAX_RAW_LENGTH:
        return PhoneResult(None, "unparseable")
    region = default_region.strip().upper() if default_region else None
    try:
        number = phonenumbers.parse(raw, region or None)
    except NumberParseException:
        return PhoneResult(None, "unparseable")
    if not phonenumbers.is_valid_number(number):
        return PhoneResult(None, "invalid")
    if phonenumbers.number_type(number) not in _CALLABLE_TYPES:
        return PhoneResult(None, "not_a_phone")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneResult(e164)
