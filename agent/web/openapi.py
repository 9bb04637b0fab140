"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to the routes it describes (the schemas of what they send are in
``api_schemas``); a test checks that every route the application registers under
``/api/v1`` is here and nothing else, and fuzzes the server against it.
"""

from __future__ import annotations

import functools
from typing import Any

from agent.store.tables import AttemptStatus
from agent.web.api_common import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT
from agent.web.api_schemas import (
    ANY_OBJECT,
    BOOL,
    INT,
    STR,
    TIME,
    Schema,
    obj,
    ref,
    schemas,
    text,
)

# -- parameters and responses ---------------------------------------------------------------


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "items per page",
)
BEFORE = _query(
    "before",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "the cursor: `next` of the previous page",
)
SINCE = _query("since", TIME, "from this time on (ISO 8601; UTC when no offset is given)")
UNTIL = _query("until", TIME, "before this time")
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> Schema:
    return _json(ref("Error"), description)


def _responses(ok: Schema, status: str = "200", *errors: int) -> dict[str, Schema]:
    out = {
        status: ok,
        "401": _error("not signed in, no valid token, or the second factor is missing"),
        "403": _error("the scope is missing, or a session's CSRF token or origin is wrong"),
    }
    texts = {
        404: "no such item, or not one this principal may see",
        415: "the body is not of the media type this route takes",
        416: "the range is outside the file",
        422: "a parameter or the body is invalid",
        503: "the data keys needed to open sealed data are not loaded",
    }
    for code in errors:
        out[str(code)] = _error(texts[code])
    return out


def _op(
    summary: str,
    scope: str,
    ok: Schema,
    *errors: int,
    parameters: list[Schema] | None = None,
    status: str = "200",
    body: Schema | None = None,
) -> Schema:
    op: Schema = {
        "summary": summary,
        "description": f"Needs the `{scope}` scope.",
        "x-scope": scope,
        "parameters": parameters or [],
        "responses": _responses(ok, status, *errors),
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _paths() -> dict[str, Schema]:
    calls_filters = [
        _query("campaign", text(63), "one campaign"),
        _query("outcome", text(40), "one outcome code"),
        _query("status", {"type": "string", "enum": [s.value for s in AttemptStatus]}, "status"),
        SINCE,
        UNTIL,
        BEFORE,
        LIMIT,
    ]
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    wav = {"schema": {"type": "string", "format": "binary"}}
    recording_ok = {"description": "the recording (WAV)", "content": {"audio/wav": wav}}
    recording = _op("A call's recording", "recordings:read", recording_ok, 404, 416, 503)
    recording["parameters"] = [
        ID,
        {
            "name": "Range",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "one byte range, e.g. bytes=0-1023",
        },
    ]
    recording["responses"]["206"] = {
        "description": "the byte range asked for",
        "headers": {"Content-Range": {"schema": STR}},
        "content": {"audio/wav": wav},
    }
    dnc_list = _op(
        "The do-not-call list",
        "compliance:read",
        {
            "description": "a page (JSON) or the whole list (CSV)",
            "content": {
                "application/json": {"schema": ref("DoNotCallPage")},
                "text/csv": {"schema": STR},
            },
        },
        422,
        parameters=[
            _query("format", {"type": "string", "enum": ["json", "csv"]}, "or Accept: text/csv"),
            BEFORE,
            LIMIT,
        ],
    )
    dnc_body = {
        "type": "object",
        "properties": {
            "phone": text(64),
            "reason": text(40),
        },
        "required": ["phone"],
    }
    dnc_added = _json(ref("DoNotCallAdded"), "added")
    dnc_add = _op(
        "Add a number to the do-not-call list",
        "compliance:write",
        dnc_added,
        415,
        422,
        status="201",
        body=_json_body(dnc_body),
    )
    dnc_add["responses"]["200"] = _json(ref("DoNotCallAdded"), "already on the list")
    erase_body = {**schemas()["Subject"], "required": ["reason"]}
    archive_ok = {
        "description": "the export archive",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
    return {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json(ANY_OBJECT, "the OpenAPI document")},
            }
        },
        "/api/v1/events": {
            "post": {
                "summary": "Checkouts and orders in the generic schema (intake)",
                "description": (
                    "Authenticated by `intake.api_token`, not by an API token's scopes. "
                    "One event object or a list of them; see the generic intake schema."
                ),
                "security": [{"intake": []}],
                "requestBody": _json_body({"type": ["object", "array"]}),
                "responses": {
                    "200": _json(
                        obj(accepted=BOOL, duplicate=BOOL, records=INT), "stored for intake"
                    ),
                    "400": _error("malformed"),
                    "401": _error("no valid intake token"),
                    "503": _error("the delivery could not be stored; retry later"),
                },
            }
        },
        "/api/v1/campaigns": {
            "get": _op(
                "Campaigns and their state",
                "campaigns:read",
                _json(ref("CampaignList"), "the configured campaigns"),
            )
        },
        "/api/v1/campaigns/{name}/pause": {
            "post": {
                **_op("Pause a campaign", "campaigns:write", _json(ref("Campaign"), "paused"), 404),
                "parameters": [name],
            }
        },
        "/api/v1/campaigns/{name}/resume": {
            "post": {
                **_op(
                    "Resume a campaign", "campaigns:write", _json(ref("Campaign"), "resumed"), 404
                ),
                "parameters": [name],
            }
        },
        "/api/v1/calls": {
            "get": _op(
                "Calls, newest first",
                "calls:read",
                _json(ref("CallPage"), "a page of calls"),
                422,
                parameters=calls_filters,
            )
        },
        "/api/v1/calls/{id}": {
            "get": _op(
                "One call",
                "calls:read",
                _json(ref("CallDetail"), "the call"),
                404,
                parameters=[ID],
            )
        },
        "/api/v1/calls/{id}/transcript": {
            "get": _op(
                "A call's transcript",
                "calls:read",
                _json(ref("Transcript"), "the turns"),
                404,
                503,
                parameters=[ID],
            )
        },
        "/api/v1/calls/{id}/recording": {"get": recording},
        "/api/v1/outcomes": {
            "get": _op(
                "Calls per outcome and campaign (aggregates, no customer data)",
                "metrics:read",
                _json(ref("OutcomeCounts"), "the counts"),
                422,
                parameters=[SINCE, UNTIL],
            )
        },
        "/api/v1/contacts": {
            "get": _op(
                "Contacts, newest first",
                "customers:read",
                _json(ref("ContactPage"), "a page of contacts"),
                422,
                parameters=[
                    _query(
                        "q",
                        text(320),
                        "the start of a phone number, email or name",
                    ),
                    BEFORE,
                    LIMIT,
                ],
            )
        },
        "/api/v1/contacts/{id}": {
            "get": _op(
                "One contact with consents, checkouts and calls",
                "customers:read",
                _json(ref("ContactDetail"), "the contact"),
                404,
                parameters=[ID],
            )
        },
        "/api/v1/contacts/{id}/consents": {
            "get": _op(
                "A contact's consents",
                "customers:read",
                _json(ref("Consents"), "oldest first"),
                404,
                parameters=[ID],
            )
        },
        "/api/v1/checkouts": {
            "get": _op(
                "Checkouts, newest first",
                "customers:read",
                _json(ref("CheckoutPage"), "a page of checkouts"),
                422,
                parameters=[
                    _query("campaign", text(63), "one campaign"),
                    _query("completed", BOOL, "only completed (true) or open (false) ones"),
                    BEFORE,
                    LIMIT,
                ],
            )
        },
        "/api/v1/do-not-call": {"get": dnc_list, "post": dnc_add},
        "/api/v1/do-not-call/import": {
            "post": _op(
                "Import numbers from a CSV file with a phone column",
                "compliance:write",
                _json(ref("DoNotCallImport"), "what was added, already there, or invalid"),
                415,
                422,
                body={"required": True, "content": {"text/csv": {"schema": STR}}},
            )
        },
        "/api/v1/exports": {
            "post": _op(
                "Export everything held on one customer",
                "compliance:write",
                _json(ref("PrivacyRequest"), "done; download from archive_url"),
                404,
                415,
                422,
                503,
                status="201",
                body=_json_body(ref("Subject")),
            )
        },
        "/api/v1/erasures": {
            "post": _op(
                "Erase everything held on one customer (reason required)",
                "compliance:write",
                _json(ref("Erasure"), "done"),
                404,
                415,
                422,
                status="201",
                body=_json_body(erase_body),
            )
        },
        "/api/v1/privacy-requests": {
            "get": _op(
                "Export and erasure requests, newest first",
                "compliance:read",
                _json(ref("PrivacyRequestPage"), "a page of requests"),
                422,
                parameters=[
                    _query("kind", {"type": "string", "enum": ["export", "erase"]}, "kind"),
                    _query(
                        "state", {"type": "string", "enum": ["pending", "done", "failed"]}, "state"
                    ),
                    BEFORE,
                    LIMIT,
                ],
            )
        },
        "/api/v1/privacy-requests/{id}/archive": {
            "get": _op("An export's archive", "compliance:write", archive_ok, 404, parameters=[ID])
        },
        "/api/v1/processing-log": {
            "get": _op(
                "The processing log, newest first",
                "compliance:read",
                _json(ref("ProcessingLogPage"), "a page of entries"),
                422,
                parameters=[SINCE, BEFORE, LIMIT],
            )
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once; it depends on nothing at run time)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cartline API",
            "version": "1",
            "description": (
                "Calls, customers, do-not-call and privacy requests. Send "
                "`Authorization: Bearer <token>`, or use the dashboard's session cookie "
                "(unsafe methods then need the `X-CSRF-Token` header). Lists page with "
                "`limit` and `before` (the `next` of the previous page). Every answer that "
                "shows a customer's data is written to the processing log."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": _paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "cartline_session"},
                "intake": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "intake.api_token, for POST /api/v1/events only",
                },
            },
        },
    }
