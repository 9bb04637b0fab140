"""Abandoned checkouts from a CSV file, row by row, with every bad row reported by line.

For shops without webhooks (or to load history): ``cartline import checkouts FILE.csv``.
Columns are described in docs/intake.md. Each row comes back as :class:`CsvOk` or
:class:`CsvError`; errors name the column and the line, never the value, so an import
report can be shown or logged without copying customer data into it.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TextIO

from pydantic import ValidationError

from agent.campaigns.generic import ItemIn
from agent.campaigns.payload import consent_flag, parse_money, parse_time
from agent.campaigns.records import Address, Channel, CheckoutRecord, Consent, Customer, LineItem

REQUIRED_COLUMNS = ("checkout_id", "total", "currency", "abandoned_at")
OPTIONAL_COLUMNS = (
    "phone",
    "email",
    "first_name",
    "last_name",
    "country",
    "region",
    "postal_code",
    "city",
    "checkout_url",
    "items",
    "call_consent",
    "sms_consent",
    "consent_text_version",
    "consent_captured_at",
    "campaign",
)
DEFAULT_CONSENT_VERSION = "checkout-v1"
# Clock skew between the shop and us; anything later is a time zone mistake.
_FUTURE_SLACK = timedelta(minutes=5)
_ITEM = re.compile(
    r"(?P<title>.+?)(?:\s+[x×]\s*(?P<quantity>\d{1,6}))?(?:\s*@\s*(?P<price>\d+(?:\.\d+)?))?",
    re.DOTALL | re.IGNORECASE,
)
_MAX_TEXT = 500
_MAX_ITEMS_TEXT = 50_000


@dataclass(frozen=True)
class CsvOk:
    """A row that became a checkout; ``line`` is where the row starts in the file (1-based)."""

    line: int
    record: CheckoutRecord


@dataclass(frozen=True)
class CsvError:
    """A row (or, at line 1, the header) that could not be read.

    ``code`` is stable: ``missing``, ``invalid``, ``duplicate``, ``shape`` for a row;
    ``empty``, ``missing_column``, ``duplicate_column``, ``encoding`` for the file (no rows
    follow those). ``message`` names the columns at fault, never their values.
    """

    line: int
    code: str
    message: str


CsvRow = CsvOk | CsvError


def read_checkouts_csv(
    file: str | os.PathLike[str] | TextIO, *, source: str = "csv", now: datetime
) -> Iterator[CsvRow]:
    """Read checkouts from a path (UTF-8, with or without BOM) or an open text stream.

    ``now`` (aware) rejects rows abandoned in the future, the sign of local times
    written without an offset (those are read as UTC).
    """
    if isinstance(file, str | os.PathLike):
        with open(file, encoding="utf-8-sig", newline="") as stream:
            yield from _read(stream, source, now)
    else:
        yield from _read(file, source, now)


def count_rows(path: str | os.PathLike[str]) -> int:
    """How many non-blank data rows the file has (for a progress bar)."""
    # errors="replace": counting must not fail where reading will report the line at fault.
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as stream:
        rows = sum(1 for row in csv.reader(stream) if any(cell.strip() for cell in row))
    return max(rows - 1, 0)


def _column_name(raw: str) -> str:
    return re.sub(r"[\s\-]+", "_", raw.strip().lstrip("\ufeff").strip().lower())


def _read(stream: TextIO, source: str, now: datetime) -> Iterator[CsvRow]:
    reader = csv.reader(stream)
    line = 1
    header: list[str] | None = None
    seen: dict[str, int] = {}  # checkout id -> the line it was first on
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [_column_name(cell) for cell in row]
                problem = _header_problem(header)
                if problem is not None:
                    yield problem
                    return
                continue
            yield _row(header, row, start, seen, source, now)
        if header is None:
            yield CsvError(1, "empty", "the file has no header row")
    except UnicodeDecodeError:
        yield CsvError(line, "encoding", "the file is not UTF-8 text; export it as CSV UTF-8")
    except csv.Error:
        yield CsvError(line, "shape", "the CSV cannot be read here (unbalanced quotes?)")


def _header_problem(header: list[str]) -> CsvError | None:
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        return CsvError(1, "duplicate_column", f"columns appear twice: {', '.join(duplicates)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        return CsvError(1, "missing_column", f"required columns missing: {', '.join(missing)}")
    return None


def _row(
    header: list[str],
    row: list[str],
    line: int,
    seen: dict[str, int],
    source: str,
    now: datetime,
) -> CsvRow:
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        return CsvError(
            line, "shape", f"the row has {len(row)} cells, the header {len(header)} (a comma?)"
        )
    values = {name: cell.strip() for name, cell in zip(header, row, strict=False)}
    checkout_id = values.get("checkout_id", "")
    if checkout_id in seen:
        return CsvError(line, "duplicate", f"checkout_id: already on line {seen[checkout_id]}")
    if checkout_id:
        seen[checkout_id] = line
    parsed = _Row(values, now)
    record = parsed.record(source)
    if parsed.problems or record is None:
        code = parsed.problems[0][0] if parsed.problems else "invalid"
        return CsvError(line, code, "; ".join(message for _, message in parsed.problems))
    return CsvOk(line, record)


class _Row:
    """One row's cells, read field by field, collecting every problem found."""

    def __init__(self, values: dict[str, str], now: datetime) -> None:
        self.values = values
        self.now = now
        self.problems: list[tuple[str, str]] = []

    def problem(self, code: str, column: str, text: str) -> None:
        self.problems.append((code, f"{column}: {text}"))

    def text(self, column: str, required: bool = False, limit: int = _MAX_TEXT) -> str | None:
        value = self.values.get(column) or None
        if value is None and required:
            self.problem("missing", column, "is required")
        elif value is not None and len(value) > limit:
            self.problem("invalid", column, f"is longer than {limit} characters")
            return None
        return value

    def matching(self, column: str, pattern: str, what: str, required: bool = False) -> str | None:
        value = self.text(column, required)
        if value is not None and not re.fullmatch(pattern, value):
            self.problem("invalid", column, f"should be {what}")
            return None
        return value

    def code(self, column: str, pattern: str, what: str, required: bool = False) -> str | None:
        value = self.matching(column, pattern, what, required)
        return value.upper() if value else None

    def time(self, column: str, required: bool = False) -> datetime | None:
        value = self.text(column, required)
        if value is None:
            return None
        try:
            moment = parse_time(value)
        except ValueError:
            self.problem("invalid", column, "should be an ISO 8601 time (2024-03-01T14:05:00Z)")
            return None
        if moment > self.now + _FUTURE_SLACK:
            self.problem("invalid", column, "is in the future (times without an offset are UTC)")
            return None
        return moment

    def money(self, column: str) -> Decimal | None:
        value = self.text(column, required=True)
        if value is None:
            return None
        try:
            return parse_money(value)
        except ValueError:
            self.problem("invalid", column, "should be a non-negative amount like 19.99")
            return None

    def consent(self, column: str) -> bool | None:
        value = self.text(column)
        flag = consent_flag(value)
        if value is not None and flag is None:
            self.problem("invalid", column, "should be yes, no or empty")
        return flag

    def items(self) -> tuple[LineItem, ...]:
        value = self.text("items", limit=_MAX_ITEMS_TEXT)
        if value is None:
            return ()
        try:
            if value.startswith(("[", "{")):
                return _json_items(value)
            return tuple(_text_item(part) for part in value.split(";") if part.strip())
        except ValueError as err:
            self.problem("invalid", "items", str(err))
            return ()

    def record(self, source: str) -> CheckoutRecord | None:
        checkout_id = self.text("checkout_id", required=True)
        total = self.money("total")
        currency = self.code("currency", r"[A-Za-z]{3}", "a 3-letter currency code", True)
        abandoned_at = self.time("abandoned_at", required=True)
        country = self.code("country", r"[A-Za-z]{2}", "a 2-letter country code")
        region = self.code("region", r"[A-Za-z0-9]{1,10}", "a state or province code")
        url = self.matching("checkout_url", r"https?://\S+", "an http(s) URL")
        items = self.items()
        consents = self.consents(abandoned_at, source)
        if checkout_id is None or total is None or currency is None or abandoned_at is None:
            return None
        address_parts = (country, region, self.text("postal_code"), self.text("city"))
        return CheckoutRecord(
            source=source,
            external_id=checkout_id,
            customer=Customer(
                phone=self.text("phone"),
                email=self.text("email"),
                first_name=self.text("first_name"),
                last_name=self.text("last_name"),
                address=Address(*address_parts) if any(address_parts) else None,
            ),
            total=total,
            currency=currency,
            abandoned_at=abandoned_at,
            items=items,
            checkout_url=url,
            consents=consents,
            campaign=self.text("campaign"),
        )

    def consents(self, abandoned_at: datetime | None, source: str) -> tuple[Consent, ...]:
        call = self.consent("call_consent")
        sms = self.consent("sms_consent")
        version = self.text("consent_text_version") or DEFAULT_CONSENT_VERSION
        captured_at = self.time("consent_captured_at") or abandoned_at
        if captured_at is None:
            return ()
        return tuple(
            Consent(channel, granted, version, captured_at, source=source)
            for channel, granted in ((Channel.CALL, call), (Channel.SMS, sms))
            if granted is not None
        )


def _text_item(part: str) -> LineItem:
    match = _ITEM.fullmatch(part.strip())
    if match is None:  # the pattern matches any non-empty text; kept for the type checker
        raise ValueError("an item should read 'Title x 2 @ 19.99'")
    quantity = int(match["quantity"] or 1)
    if quantity < 1:
        raise ValueError("an item quantity should be at least 1")
    return LineItem(
        title=" ".join(match["title"].split()),
        quantity=quantity,
        unit_price=Decimal(match["price"] or 0),
    )


def _json_items(value: str) -> tuple[LineItem, ...]:
    try:
        entries = json.loads(value, parse_float=Decimal)
    except ValueError:
        raise ValueError("is not valid JSON") from None
    if not isinstance(entries, list):
        raise ValueError("should be a JSON list of items")
    items = []
    for index, entry in enumerate(entries):
        try:
            item = ItemIn.model_validate(entry)
        except ValidationError as err:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "item" for e in err.errors()})
            raise ValueError(f"item {index + 1}: check {', '.join(fields)}") from None
        items.append(LineItem(item.title, item.quantity, item.unit_price, item.sku))
    return tuple(items)
