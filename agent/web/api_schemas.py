"""The schemas of the API's JSON, for its OpenAPI document (``agent.web.openapi``).

Each mirrors what a route sends: the views' rows as ``dataclasses.asdict`` gives them,
money as decimal strings, times as ISO 8601 strings.
"""

from __future__ import annotations

from typing import Any

from agent.store.tables import AttemptStatus

Schema = dict[str, Any]

_ERROR_CODES = (
    "unauthorized, mfa_required, forbidden, csrf, not_found, subject_not_found, "
    "invalid_parameter, invalid_body, invalid_phone, invalid_csv, unsupported_media_type, "
    "range_not_satisfiable, keys_unavailable"
)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(**props: Schema) -> Schema:
    """An object with exactly these properties, all present."""
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def text(max_length: int) -> Schema:
    """A string the API takes: no control characters (a 422 otherwise)."""
    return {"type": "string", "maxLength": max_length, "pattern": _PRINTABLE}


_PRINTABLE = "^[^\\x00-\\x1f\\x7f]*$"
STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
MONEY: Schema = {"type": "string", "description": 'a decimal amount, e.g. "120.00"'}
ANY_OBJECT: Schema = {"type": "object"}

_CALL: dict[str, Schema] = {
    "attempt_id": INT,
    "campaign": STR,
    "status": {"type": "string", "enum": [s.value for s in AttemptStatus]},
    "outcome": nullable(STR),
    "started_at": TIME,
    "answered_at": nullable(TIME),
    "ended_at": nullable(TIME),
    "duration_s": nullable({"type": "number"}),
    "contact_id": INT,
    "first_name": nullable(STR),
    "phone_e164": nullable(STR),
    "checkout_id": nullable(INT),
    "total": nullable(MONEY),
    "currency": nullable(STR),
    "has_recording": BOOL,
    "has_transcript": BOOL,
}

_CONTACT: dict[str, Schema] = {
    "contact_id": INT,
    "first_name": nullable(STR),
    "last_name": nullable(STR),
    "phone_e164": nullable(STR),
    "email": nullable(STR),
    "country": nullable(STR),
    "region": nullable(STR),
    "do_not_call": BOOL,
    "calls": INT,
    "last_call_at": nullable(TIME),
}

_REQUEST: dict[str, Schema] = {
    "id": INT,
    "kind": {"type": "string", "enum": ["export", "erase"]},
    "state": {"type": "string", "enum": ["pending", "done", "failed"]},
    "requested_by": STR,
    "purpose": STR,
    "contacts": INT,
    "created_at": TIME,
    "done_at": nullable(TIME),
    "error": nullable(STR),
    "archive_url": nullable(STR),
}


def _page(item: str) -> Schema:
    return obj(items={"type": "array", "items": ref(item)}, next=nullable(INT))


def schemas() -> dict[str, Schema]:
    """The components: every object the API sends or takes."""
    consent = obj(channel=STR, granted=BOOL, text_version=STR, source=STR, captured_at=TIME)
    checkout_of_contact = obj(
        id=INT,
        campaign=nullable(STR),
        total=MONEY,
        currency=STR,
        abandoned_at=TIME,
        completed_at=nullable(TIME),
    )
    return {
        "Error": obj(
            error={"type": "string", "description": f"a stable code: {_ERROR_CODES}"},
            message=STR,
        ),
        "Campaign": obj(
            name=STR,
            kind=STR,
            enabled=BOOL,
            paused=BOOL,
            paused_reason=nullable(STR),
            settings={**ANY_OBJECT, "description": "as configured in config.yaml (read-only)"},
        ),
        "CampaignList": obj(
            items={"type": "array", "items": ref("Campaign")}, next={"type": "null"}
        ),
        "Call": obj(**_CALL),
        "CallPage": _page("Call"),
        "CallDetail": obj(
            **_CALL,
            note=ANY_OBJECT,
            recording=nullable(obj(id=INT, bytes=INT, url=STR)),
            items={"type": "array", "items": ANY_OBJECT},
            checkout_url=nullable(STR),
            decisions={
                "type": "array",
                "items": obj(at=TIME, campaign=nullable(STR), action=STR, reason=STR, detail=STR),
            },
            attributed={"type": "array", "items": obj(amount=MONEY, currency=STR, at=TIME)},
        ),
        "Transcript": obj(
            attempt_id=INT,
            turns={
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"speaker": nullable(STR), "text": nullable(STR)},
                    "required": ["speaker", "text"],
                    "additionalProperties": {"type": "number"},
                },
            },
        ),
        "OutcomeCounts": obj(
            items={
                "type": "array",
                "items": obj(campaign=STR, outcome=STR, calls=INT),
            }
        ),
        "Contact": obj(**_CONTACT),
        "ContactPage": _page("Contact"),
        "ContactDetail": obj(
            **_CONTACT,
            consents={"type": "array", "items": consent},
            checkouts={"type": "array", "items": checkout_of_contact},
            recent_calls={"type": "array", "items": ref("Call")},
        ),
        "Consents": obj(contact_id=INT, items={"type": "array", "items": consent}),
        "Checkout": obj(
            checkout_id=INT,
            source=STR,
            campaign=nullable(STR),
            contact_id=INT,
            first_name=nullable(STR),
            total=MONEY,
            currency=STR,
            abandoned_at=TIME,
            completed_at=nullable(TIME),
        ),
        "CheckoutPage": _page("Checkout"),
        "DoNotCall": obj(id=INT, phone_e164=STR, reason=STR, source=STR, created_at=TIME),
        "DoNotCallPage": _page("DoNotCall"),
        "DoNotCallAdded": obj(phone_e164=STR, added=BOOL),
        "DoNotCallImport": obj(
            rows=INT,
            added=INT,
            duplicates=INT,
            invalid={
                "type": "array",
                "items": obj(
                    row={**INT, "description": "the line in the file (the header is 1)"},
                    error={
                        "type": "string",
                        "enum": ["missing", "unparseable", "invalid", "not_a_phone"],
                    },
                ),
            },
        ),
        "PrivacyRequest": obj(**_REQUEST),
        "PrivacyRequestPage": _page("PrivacyRequest"),
        "Erasure": obj(
            **_REQUEST,
            erased={"type": "object", "additionalProperties": INT},
            files_removed=INT,
        ),
        "ProcessingLogEntry": obj(
            id=INT, at=TIME, actor=STR, action=STR, subjects=STR, purpose=STR, detail=STR
        ),
        "ProcessingLogPage": _page("ProcessingLogEntry"),
        "Subject": {
            "type": "object",
            "properties": {
                "phone": text(64),
                "email": text(320),
                "reason": text(500),
            },
            "additionalProperties": False,
            "anyOf": [{"required": ["phone"]}, {"required": ["email"]}],
            "description": "the customer, by phone number or email (at least one)",
        },
    }
