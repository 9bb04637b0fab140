from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from agent.campaigns.csvimport import CsvError, CsvOk, CsvRow, count_rows, read_checkouts_csv
from agent.campaigns.records import Address, Channel, CheckoutRecord, Consent, Customer, LineItem

DATA = Path(__file__).parent / "data"
NOW = datetime(2024, 3, 10, tzinfo=UTC)
HEADER = "checkout_id,phone,total,currency,abandoned_at,items\n"


def read_text(text: str) -> list[CsvRow]:
    return list(read_checkouts_csv(io.StringIO(text), now=NOW))


def only_record(text: str) -> CheckoutRecord:
    (row,) = read_text(text)
    assert isinstance(row, CsvOk), row
    return row.record


def test_good_file_with_bom_blank_line_and_unknown_column() -> None:
    rows = list(read_checkouts_csv(DATA / "checkouts.csv", now=NOW))
    assert all(isinstance(r, CsvOk) for r in rows), rows
    assert [r.line for r in rows] == [2, 4, 5]  # line 3 is blank
    first, second, third = (r.record for r in rows if isinstance(r, CsvOk))
    assert first == CheckoutRecord(
        source="csv",
        external_id="1001",
        customer=Customer(
            phone="(201) 555-0123",
            email="maria.lopez@example.com",
            first_name="Maria",
            last_name="Lopez",
            address=Address("US", "NJ", "07030", "Hoboken"),
        ),
        total=Decimal("197.10"),
        currency="USD",
        abandoned_at=datetime(2024, 3, 1, 14, 20, 3, tzinfo=UTC),
        items=(
            LineItem("Linen Throw", 2, Decimal("89.00")),
            LineItem("Gift Card Sleeve", 1, Decimal("4.50")),
        ),
        checkout_url="https://shop.example.com/recover/1001",
        consents=(
            Consent(
                Channel.CALL,
                True,
                "call-consent-2024-02",
                datetime(2024, 3, 1, 14, 19, 58, tzinfo=UTC),
                "csv",
            ),
            Consent(
                Channel.SMS,
                False,
                "call-consent-2024-02",
                datetime(2024, 3, 1, 14, 19, 58, tzinfo=UTC),
                "csv",
            ),
        ),
    )
    # A time without an offset is UTC; items as JSON; no consent columns filled: none recorded.
    assert second.abandoned_at == datetime(2024, 3, 4, 13, 5, 40, tzinfo=UTC)
    assert second.items == (LineItem("Stoneware Mug", 3, Decimal("12.50"), "MUG-INK"),)
    assert second.consents == ()
    assert second.campaign == "spring-recovery"
    assert second.customer.address == Address("GB", None, "NW1 6XE", "London")
    # A withdrawal is captured when the checkout was, without a consent_captured_at.
    assert third.total == Decimal("1000")
    assert third.customer.address is None
    assert third.consents == (
        Consent(
            Channel.CALL, False, "checkout-v1", datetime(2024, 3, 6, 21, 45, tzinfo=UTC), "csv"
        ),
    )


def test_source_is_passed_through() -> None:
    rows = list(read_checkouts_csv(DATA / "checkouts.csv", source="csv:legacy", now=NOW))
    records = [r.record for r in rows if isinstance(r, CsvOk)]
    assert {r.source for r in records} == {"csv:legacy"}
    assert {c.source for r in records for c in r.consents} == {"csv:legacy"}


def test_bad_rows_are_reported_by_line_and_column_never_value() -> None:
    rows = list(read_checkouts_csv(str(DATA / "checkouts_bad.csv"), now=NOW))
    summary = [
        (r.line, "ok") if isinstance(r, CsvOk) else (r.line, r.code, r.message) for r in rows
    ]
    assert summary == [
        (2, "ok"),
        (3, "missing", "checkout_id: is required"),
        (4, "invalid", "total: should be a non-negative amount like 19.99"),
        (
            5,
            "invalid",
            "currency: should be a 3-letter currency code; "
            "abandoned_at: should be an ISO 8601 time (2024-03-01T14:05:00Z); "
            "call_consent: should be yes, no or empty",
        ),
        (6, "duplicate", "checkout_id: already on line 2"),
        (7, "invalid", "abandoned_at: is in the future (times without an offset are UTC)"),
        (8, "invalid", "items: item 1: check quantity"),
        (9, "shape", "the row has 8 cells, the header 7 (a comma?)"),
        (10, "ok"),  # a quoted value spans lines 10 and 11
        (12, "invalid", "items: is not valid JSON"),
    ]
    tote = rows[8]
    assert isinstance(tote, CsvOk)
    assert tote.record.items == (LineItem("Tote Bag", 1, Decimal("19.99")),)
    assert tote.record.consents[0].granted is False
    for row in rows:
        if isinstance(row, CsvError):
            assert "+1201555" not in row.message and "dollars" not in row.message


def test_count_rows() -> None:
    assert count_rows(DATA / "checkouts.csv") == 3
    assert count_rows(DATA / "checkouts_bad.csv") == 10


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ("Mug", (LineItem("Mug", 1, Decimal(0)),)),
        ("Mug x 3", (LineItem("Mug", 3, Decimal(0)),)),
        ("Mug X3 @ 5", (LineItem("Mug", 3, Decimal(5)),)),
        (
            "Mug × 2 @ 9.99; Box x; ",
            (LineItem("Mug", 2, Decimal("9.99")), LineItem("Box x", 1, Decimal(0))),
        ),
        ('"[]"', ()),
        (
            '"[{""title"": ""Mug"", ""quantity"": 2, ""unit_price"": 4.5}]"',
            (LineItem("Mug", 2, Decimal("4.5")),),
        ),
    ],
)
def test_item_formats(items: str, expected: tuple[LineItem, ...]) -> None:
    record = only_record(HEADER + f"c1,,10,USD,2024-03-01T10:00:00Z,{items}\n")
    assert record.items == expected


@pytest.mark.parametrize(
    "items",
    ['"{""title"": ""Mug""}"', '"[{""title"": ""Mug"", ""quantity"": 1}]"', "Mug x 0", '"[1]"'],
)
def test_bad_items(items: str) -> None:
    (row,) = read_text(HEADER + f"c1,,10,USD,2024-03-01T10:00:00Z,{items}\n")
    assert isinstance(row, CsvError)
    assert (row.code, row.message.split(":")[0]) == ("invalid", "items")


def test_bom_in_a_stream_and_header_spelling() -> None:
    text = "\ufeffCheckout ID, TOTAL ,Currency,Abandoned-At\nc1,5,eur,2024-03-01T10:00:00+01:00\n"
    record = only_record(text)
    assert (record.external_id, record.total, record.currency) == ("c1", Decimal(5), "EUR")
    assert record.abandoned_at == datetime(2024, 3, 1, 9, tzinfo=UTC)


def test_short_rows_leave_the_last_columns_empty() -> None:
    record = only_record("checkout_id,total,currency,abandoned_at,phone\nc1,5,USD,2024-03-01\n")
    assert record.customer.phone is None
    assert record.abandoned_at == datetime(2024, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("", "empty", "the file has no header row"),
        ("\n\n", "empty", "the file has no header row"),
        (
            "checkout_id,phone\nc1,+12015550123\n",
            "missing_column",
            "required columns missing: total, currency, abandoned_at",
        ),
        (
            "checkout_id,total,currency,abandoned_at,Phone,phone\n",
            "duplicate_column",
            "columns appear twice: phone",
        ),
    ],
)
def test_file_level_problems_stop_the_import(text: str, code: str, message: str) -> None:
    assert read_text(text) == [CsvError(1, code, message)]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "c1,,10,EUR,2024-03-01,Caf\u00e9 x 1\n".encode("latin-1"))
    assert list(read_checkouts_csv(path, now=NOW)) == [
        CsvError(1, "encoding", "the file is not UTF-8 text; export it as CSV UTF-8")
    ]


def test_bad_codes_and_consent_time() -> None:
    header = "checkout_id,total,currency,abandoned_at,country,region,checkout_url,call_consent,"
    header += "consent_captured_at\n"
    (row,) = read_text(header + "c1,5,USD,2024-03-01,USA,N-J,ftp://x,yes,soon\n")
    assert isinstance(row, CsvError)
    assert [part.split(":")[0] for part in row.message.split("; ")] == [
        "country",
        "region",
        "checkout_url",
        "consent_captured_at",
    ]
    record = only_record(header + "c1,5,USD,2024-03-01,us,nj,,Yes,2024-02-28T12:00:00-05:00\n")
    assert record.consents == (
        Consent(Channel.CALL, True, "checkout-v1", datetime(2024, 2, 28, 17, tzinfo=UTC), "csv"),
    )
