from __future__ import annotations

import pytest

from agent.campaigns.phones import PhoneResult, normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["(201) 555-0123", "201-555-0123", "201.555.0123", "+1 201 555 0123", "1 201 555 0123"],
)
def test_us_numbers_in_any_format_resolve_to_e164(raw: str) -> None:
    assert normalize_phone(raw, "US") == PhoneResult("+12015550123")


def test_region_is_case_insensitive() -> None:
    assert normalize_phone("(201) 555-0123", "us").e164 == "+12015550123"


def test_uk_national_number_is_read_in_the_address_country() -> None:
    assert normalize_phone("020 7946 0018", "GB") == PhoneResult("+442079460018")
    assert normalize_phone("07400 123456", "GB") == PhoneResult("+447400123456")


def test_international_form_needs_no_region() -> None:
    assert normalize_phone("+44 20 7946 0018", None).e164 == "+442079460018"
    # The written country code wins over the region guess.
    assert normalize_phone("+44 20 7946 0018", "US").e164 == "+442079460018"


def test_national_number_without_a_region_cannot_be_read() -> None:
    assert normalize_phone("(201) 555-0123", None) == PhoneResult(None, "unparseable")


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing(raw: str | None) -> None:
    result = normalize_phone(raw, "US")
    assert result == PhoneResult(None, "missing")
    assert not result.ok


@pytest.mark.parametrize("raw", ["call me maybe", "+", "x" * 100, "1" * 80])
def test_unparseable(raw: str) -> None:
    assert normalize_phone(raw, "US").error == "unparseable"


@pytest.mark.parametrize("raw", ["201 555 01", "+1 011 555 0123", "+44 20 7946 001"])
def test_invalid_numbers(raw: str) -> None:
    assert normalize_phone(raw, "US") == PhoneResult(None, "invalid")


@pytest.mark.parametrize(
    ("raw", "region"),
    [("1-900-234-5678", "US"), ("800 234 5678", "US"), ("09012 345678", "GB")],
)
def test_premium_and_toll_free_numbers_are_not_a_shoppers_phone(raw: str, region: str) -> None:
    assert normalize_phone(raw, region) == PhoneResult(None, "not_a_phone")


def test_errors_never_carry_the_number() -> None:
    for raw in ["201 555 01", "+1 011 555 0123", "1-900-234-5678"]:
        result = normalize_phone(raw, "US")
        assert result.e164 is None
        assert result.error is not None
        assert "555" not in result.error and "234" not in result.error
