"""The JSON API's customers, do-not-call list, privacy requests and processing log."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from agent.privacy import audit
from agent.store.tables import CallAttempt, Contact, DoNotCall, PrivacyRequest
from agent.web.access import Scope
from tests.store.seed import TURNS, add_call, add_contact, wav_bytes
from tests.web.conftest import Web
from tests.web.test_api import bearer, log_of


@pytest.fixture
def exports_in(web: Web, tmp_path: Path) -> Path:
    web.served.settings = web.served.settings.model_copy(update={"state_dir": tmp_path})
    return tmp_path / "exports"


def _files(folder: Path, pattern: str) -> list[Path]:
    return list(folder.glob(pattern))


async def test_contacts_their_consents_and_checkouts(web: Web) -> None:
    dana = await web.db.run(lambda s: add_call(s, turns=TURNS))
    sam = await web.db.run(
        lambda s: add_contact(s, phone="+12125550999", email="sam@example.com", first_name="Sam")
    )
    token = await web.token(Scope.CUSTOMERS_READ)
    r = await web.client.get("/api/v1/contacts", headers=bearer(token))
    body = await r.json()
    assert [c["contact_id"] for c in body["items"]] == [sam, dana.contact_id]
    assert body["items"][1]["calls"] == 1
    r = await web.client.get("/api/v1/contacts?q=sam", headers=bearer(token))
    assert [c["contact_id"] for c in (await r.json())["items"]] == [sam]
    r = await web.client.get(f"/api/v1/contacts/{dana.contact_id}", headers=bearer(token))
    detail = await r.json()
    assert detail["email"] == "dana@example.com"
    assert [c["channel"] for c in detail["consents"]] == ["call"]
    assert [c["id"] for c in detail["checkouts"]] == [dana.checkout_id]
    assert [c["attempt_id"] for c in detail["recent_calls"]] == [dana.attempt_id]
    r = await web.client.get(f"/api/v1/contacts/{dana.contact_id}/consents", headers=bearer(token))
    assert [c["text_version"] for c in (await r.json())["items"]] == ["checkout-v1"]
    r = await web.client.get("/api/v1/contacts/999/consents", headers=bearer(token))
    assert r.status == 404
    r = await web.client.get("/api/v1/checkouts?completed=false", headers=bearer(token))
    assert [c["checkout_id"] for c in (await r.json())["items"]] == [dana.checkout_id]
    r = await web.client.get("/api/v1/checkouts?completed=yes", headers=bearer(token))
    assert r.status == 422
    assert [e["purpose"] for e in await log_of(web)] == [
        "api: contacts",
        "api: contacts",
        "api: contact",
        "api: consents",
        "api: checkouts",
    ]


async def test_numbers_are_added_to_the_do_not_call_list(web: Web) -> None:
    contact = await web.db.run(lambda s: add_contact(s, phone="+12015550123"))
    writer = await web.token(Scope.COMPLIANCE_WRITE)
    reader = await web.token(Scope.COMPLIANCE_READ)
    r = await web.client.post(
        "/api/v1/do-not-call",
        json={"phone": "(201) 555-0123", "reason": "complaint"},
        headers=bearer(writer),
    )
    assert r.status == 201
    assert await r.json() == {"phone_e164": "+12015550123", "added": True}
    r = await web.client.post(
        "/api/v1/do-not-call", json={"phone": "+1 201 555 0123"}, headers=bearer(writer)
    )
    assert r.status == 200 and (await r.json())["added"] is False
    r = await web.client.post("/api/v1/do-not-call", json={"phone": "12"}, headers=bearer(writer))
    assert r.status == 422 and (await r.json())["error"] == "invalid_phone"
    r = await web.client.post("/api/v1/do-not-call", json=["x"], headers=bearer(writer))
    assert r.status == 422 and (await r.json())["error"] == "invalid_body"
    r = await web.client.post("/api/v1/do-not-call", data="phone", headers=bearer(writer))
    assert r.status == 415
    r = await web.client.post(
        "/api/v1/do-not-call", json={"phone": "+12015550123"}, headers=bearer(reader)
    )
    assert r.status == 403
    r = await web.client.get("/api/v1/do-not-call", headers=bearer(reader))
    items = (await r.json())["items"]
    assert [(i["phone_e164"], i["reason"]) for i in items] == [("+12015550123", "complaint")]
    r = await web.client.get("/api/v1/do-not-call?format=csv", headers=bearer(reader))
    assert r.content_type == "text/csv"
    assert (await r.text()).splitlines()[1].startswith("+12015550123,complaint,token:")
    r = await web.client.get(
        "/api/v1/do-not-call", headers={**bearer(reader), "Accept": "text/csv"}
    )
    assert r.content_type == "text/csv"
    subjects = [e["subjects"] for e in await log_of(web)]
    assert subjects == [f"contact:{contact}"] * 5  # two adds, three reads


async def test_a_csv_import_reports_added_duplicates_and_invalid_rows(web: Web) -> None:
    writer = await web.token(Scope.COMPLIANCE_WRITE)
    await web.client.post(
        "/api/v1/do-not-call", json={"phone": "+12015550123"}, headers=bearer(writer)
    )
    text = "\n".join(
        [
            "name,Phone",
            "a,+12015550123",  # already on the list
            "b,(212) 555-0188",
            "c,not a number",
            ",",
            "d,+1 212 555 0188",  # twice in the file
            "e,",
        ]
    )
    r = await web.client.post(
        "/api/v1/do-not-call/import",
        data=text.encode(),
        headers={**bearer(writer), "Content-Type": "text/csv"},
    )
    assert r.status == 200
    assert await r.json() == {
        "rows": 5,
        "added": 1,
        "duplicates": 2,
        "invalid": [{"row": 4, "error": "unparseable"}, {"row": 7, "error": "missing"}],
    }
    numbers = await web.db.run(lambda s: set(s.exec(select(DoNotCall.phone_e164)).all()))
    assert numbers == {"+12015550123", "+12125550188"}
    r = await web.client.post(
        "/api/v1/do-not-call/import",
        data=b"name\nx",
        headers={**bearer(writer), "Content-Type": "text/csv"},
    )
    assert r.status == 422 and (await r.json())["error"] == "invalid_csv"
    r = await web.client.post(
        "/api/v1/do-not-call/import", json={"phone": "x"}, headers=bearer(writer)
    )
    assert r.status == 415


async def test_an_export_is_archived_and_downloaded(
    web: Web, tmp_path: Path, exports_in: Path
) -> None:
    dana = await web.db.run(
        lambda s: add_call(s, turns=TURNS, keys=web.served.keys, recording=tmp_path / "x")
    )
    token = await web.token(Scope.COMPLIANCE_WRITE, Scope.COMPLIANCE_READ)
    r = await web.client.post(
        "/api/v1/exports", json={"phone": "+1 212 555 0123"}, headers=bearer(token)
    )
    assert r.status == 201
    request = await r.json()
    assert request["kind"] == "export" and request["state"] == "done"
    assert request["contacts"] == 1 and request["archive_url"].endswith("/archive")
    r = await web.client.get(request["archive_url"], headers=bearer(token))
    assert r.status == 200 and r.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(await r.read())) as z:
        subject = json.loads(z.read("subject.json"))
        assert subject["transcripts"][0]["turns"] == TURNS
        assert z.read(f"recordings/call-{dana.attempt_id}.wav") == wav_bytes()
    stored = await web.db.run(lambda s: s.exec(select(PrivacyRequest)).one())
    assert "5550123" not in stored.model_dump_json()  # the request keeps no number
    # The archive is sealed at rest: no zip header, no name, on disk.
    assert stored.archive_path is not None and stored.archive_path.endswith(".zip.enc")
    on_disk = await asyncio.to_thread(Path(stored.archive_path).read_bytes)
    assert not on_disk.startswith(b"PK") and b"Dana" not in on_disk
    assert stored.subjects == f"contact:{dana.contact_id}"
    r = await web.client.get("/api/v1/privacy-requests", headers=bearer(token))
    assert [(i["kind"], i["state"]) for i in (await r.json())["items"]] == [("export", "done")]
    actions = [(e["action"], e["purpose"]) for e in await log_of(web)]
    assert actions == [("export", "customer request"), ("access", "api: export archive")]
    r = await web.client.post(
        "/api/v1/exports", json={"email": "nobody@example.com"}, headers=bearer(token)
    )
    assert r.status == 404 and (await r.json())["error"] == "subject_not_found"
    r = await web.client.post("/api/v1/exports", json={}, headers=bearer(token))
    assert r.status == 422
    r = await web.client.get("/api/v1/privacy-requests/999/archive", headers=bearer(token))
    assert r.status == 404


async def test_an_erasure_leaves_only_the_opt_out(
    web: Web, tmp_path: Path, exports_in: Path
) -> None:
    dana = await web.db.run(
        lambda s: add_call(s, turns=TURNS, keys=web.served.keys, recording=tmp_path / "x")
    )
    other = await web.db.run(
        lambda s: add_call(s, contact_id=add_contact(s, phone="+12125550999", email="o@x.com"))
    )
    token = await web.token(Scope.COMPLIANCE_WRITE, Scope.COMPLIANCE_READ)
    await web.client.post(
        "/api/v1/exports", json={"email": "dana@example.com"}, headers=bearer(token)
    )
    await web.client.post(
        "/api/v1/do-not-call",
        json={"phone": "+12125550123", "reason": "opt_out"},
        headers=bearer(token),
    )
    r = await web.client.post(
        "/api/v1/erasures", json={"phone": "+12125550123"}, headers=bearer(token)
    )
    assert r.status == 422  # a reason is required
    r = await web.client.post(
        "/api/v1/erasures",
        json={"phone": "+12125550123", "reason": "asked by email"},
        headers=bearer(token),
    )
    assert r.status == 201
    body = await r.json()
    assert body["kind"] == "erase" and body["state"] == "done"
    assert body["erased"]["contacts"] == 1 and body["erased"]["call_attempts"] == 1
    assert body["files_removed"] == 4  # three recording files and the earlier export
    assert _files(tmp_path, "call-*") == [] and _files(exports_in, "*") == []

    def left(s: Any) -> tuple[list[int | None], list[int | None], list[str]]:
        return (
            list(s.exec(select(Contact.id)).all()),
            list(s.exec(select(CallAttempt.id)).all()),
            list(s.exec(select(DoNotCall.phone_e164)).all()),
        )

    contacts, attempts, dnc = await web.db.run(left)
    assert contacts == [other.contact_id] and attempts == [other.attempt_id]
    assert dnc == ["+12125550123"]
    r = await web.client.get("/api/v1/privacy-requests?kind=export", headers=bearer(token))
    export = (await r.json())["items"][0]
    assert export["archive_url"] is None  # its archive went with the erasure
    erased = [e for e in await log_of(web) if e["action"] == "erase"]
    assert len(erased) == 1 and erased[0]["purpose"] == "asked by email"
    assert erased[0]["subjects"] == f"contact:{dana.contact_id}"


async def test_the_processing_log_pages_newest_first(web: Web) -> None:
    def write(s: Any) -> None:
        for n in range(5):
            audit.record(s, actor="cli:test", action="access", contacts=[n], purpose=f"p{n}")

    await web.db.run(write)
    token = await web.token(Scope.COMPLIANCE_READ)
    r = await web.client.get("/api/v1/processing-log?limit=3", headers=bearer(token))
    body = await r.json()
    assert [e["purpose"] for e in body["items"]] == ["p4", "p3", "p2"]
    r = await web.client.get(
        f"/api/v1/processing-log?limit=3&before={body['next']}", headers=bearer(token)
    )
    body = await r.json()
    assert [e["purpose"] for e in body["items"]] == ["p1", "p0"] and body["next"] is None
    r = await web.client.get(
        "/api/v1/processing-log?since=2999-01-01T00:00:00Z", headers=bearer(token)
    )
    assert (await r.json())["items"] == []
    r = await web.client.get("/api/v1/processing-log?since=soon", headers=bearer(token))
    assert r.status == 422
    assert len(await log_of(web)) == 5  # reading the log names no one and is not logged
