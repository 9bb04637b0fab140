"""The JSON API's calls, outcomes and campaigns: scopes, the agent's campaigns, recordings
streamed and opened, pages and parameters, and one processing-log entry per answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from agent.privacy import audit
from agent.web.access import Role, Scope
from tests.store.seed import T0, TURNS, Seeded, add_call, add_contact, wav_bytes
from tests.web.conftest import Web


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def log_of(web: Web) -> list[dict[str, Any]]:
    return await web.db.run(audit.entries)


async def seed_calls(web: Web, folder: Path) -> tuple[Seeded, Seeded]:
    """A sealed answered call of campaign recovery (recording, transcript) and one of winback."""
    keys = web.served.keys

    def seed(s: Any) -> tuple[Seeded, Seeded]:
        dana = add_call(s, turns=TURNS, keys=keys, recording=folder / "x")
        sam = add_contact(s, phone="+12125550999", email="sam@example.com", first_name="Sam")
        other = add_call(
            s, contact_id=sam, campaign="winback", started_at=T0 + dt.timedelta(hours=1)
        )
        return dana, other

    return await web.db.run(seed)


async def test_calls_are_listed_with_their_outcomes_and_logged(web: Web, tmp_path: Path) -> None:
    dana, other = await seed_calls(web, tmp_path)
    token = await web.token(Scope.CALLS_READ)
    r = await web.client.get("/api/v1/calls", headers=bearer(token))
    assert r.status == 200
    body = await r.json()
    assert [c["attempt_id"] for c in body["items"]] == [other.attempt_id, dana.attempt_id]
    assert body["next"] is None
    first = body["items"][1]
    assert first["outcome"] == "interested" and first["total"] == "120.00"
    assert first["has_recording"] and first["has_transcript"]
    assert first["started_at"] == T0.isoformat()
    entries = await log_of(web)
    assert len(entries) == 1
    assert entries[0]["action"] == "access" and entries[0]["purpose"] == "api: calls"
    assert entries[0]["subjects"] == f"contact:{dana.contact_id} contact:{other.contact_id}"
    assert entries[0]["actor"].startswith("token:")

    r = await web.client.get("/api/v1/calls?limit=1", headers=bearer(token))
    body = await r.json()
    assert [c["attempt_id"] for c in body["items"]] == [other.attempt_id]
    assert body["next"] == other.attempt_id
    r = await web.client.get(f"/api/v1/calls?limit=1&before={body['next']}", headers=bearer(token))
    assert [c["attempt_id"] for c in (await r.json())["items"]] == [dana.attempt_id]
    r = await web.client.get("/api/v1/calls?campaign=winback", headers=bearer(token))
    assert [c["attempt_id"] for c in (await r.json())["items"]] == [other.attempt_id]
    r = await web.client.get("/api/v1/calls?campaign=nothing", headers=bearer(token))
    assert (await r.json())["items"] == []
    assert len(await log_of(web)) == 4  # an empty page shows no one and is not logged


async def test_a_call_its_transcript_and_its_note(web: Web, tmp_path: Path) -> None:
    dana, _ = await seed_calls(web, tmp_path)
    token = await web.token(Scope.CALLS_READ)
    r = await web.client.get(f"/api/v1/calls/{dana.attempt_id}", headers=bearer(token))
    assert r.status == 200
    call = await r.json()
    assert call["note"] == {"summary": "wants a reminder"}
    assert call["recording"]["url"] == f"/api/v1/calls/{dana.attempt_id}/recording"
    assert call["items"][0]["title"] == "Trail shoes"
    assert [d["reason"] for d in call["decisions"]] == ["due"]
    r = await web.client.get(f"/api/v1/calls/{dana.attempt_id}/transcript", headers=bearer(token))
    assert r.status == 200
    assert (await r.json())["turns"] == TURNS
    r = await web.client.get("/api/v1/calls/99999/transcript", headers=bearer(token))
    assert r.status == 404 and (await r.json())["error"] == "not_found"
    assert [e["purpose"] for e in await log_of(web)] == ["api: call", "api: call transcript"]


async def test_a_sealed_transcript_without_keys_is_unavailable(web: Web, tmp_path: Path) -> None:
    dana, _ = await seed_calls(web, tmp_path)
    token = await web.token(Scope.CALLS_READ)
    web.served.keys = None
    r = await web.client.get(f"/api/v1/calls/{dana.attempt_id}/transcript", headers=bearer(token))
    assert r.status == 503 and (await r.json())["error"] == "keys_unavailable"


async def test_scopes_are_checked(web: Web, tmp_path: Path) -> None:
    dana, _ = await seed_calls(web, tmp_path)
    r = await web.client.get("/api/v1/calls")
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    metrics_only = await web.token(Scope.METRICS_READ)
    for path in (
        "/api/v1/calls",
        f"/api/v1/calls/{dana.attempt_id}",
        f"/api/v1/calls/{dana.attempt_id}/recording",
        "/api/v1/contacts",
        "/api/v1/do-not-call",
        "/api/v1/processing-log",
        "/api/v1/campaigns",
    ):
        r = await web.client.get(path, headers=bearer(metrics_only))
        assert r.status == 403, path
        assert (await r.json())["error"] == "forbidden"
    r = await web.client.get("/api/v1/outcomes", headers=bearer(metrics_only))
    assert r.status == 200
    calls_only = await web.token(Scope.CALLS_READ)
    r = await web.client.get(
        f"/api/v1/calls/{dana.attempt_id}/recording", headers=bearer(calls_only)
    )
    assert r.status == 403
    assert await log_of(web) == []


async def test_an_agent_sees_only_the_calls_of_their_campaigns(web: Web, tmp_path: Path) -> None:
    dana, other = await seed_calls(web, tmp_path)
    await web.sign_in_as(Role.AGENT, campaigns=["recovery"])
    r = await web.client.get("/api/v1/calls")
    assert [c["attempt_id"] for c in (await r.json())["items"]] == [dana.attempt_id]
    r = await web.client.get("/api/v1/calls?campaign=winback")
    assert (await r.json())["items"] == []
    for suffix in ("", "/transcript", "/recording"):
        r = await web.client.get(f"/api/v1/calls/{other.attempt_id}{suffix}")
        assert r.status == 404, suffix
    r = await web.client.get(f"/api/v1/calls/{dana.attempt_id}")
    assert r.status == 200
    r = await web.client.get("/api/v1/outcomes")
    assert (await r.json())["items"] == [
        {"campaign": "recovery", "outcome": "interested", "calls": 1}
    ]
    r = await web.client.get("/api/v1/contacts")
    assert r.status == 403
    entries = await log_of(web)
    assert [e["subjects"] for e in entries] == [f"contact:{dana.contact_id}"] * 2
    assert entries[0]["actor"].startswith("user:agent-")


async def test_a_recording_is_streamed_opened_and_seekable(web: Web, tmp_path: Path) -> None:
    dana, _ = await seed_calls(web, tmp_path)
    token = await web.token(Scope.RECORDINGS_READ)
    url = f"/api/v1/calls/{dana.attempt_id}/recording"
    assert (tmp_path / f"call-{dana.attempt_id}.wav.enc").is_file()
    r = await web.client.get(url, headers=bearer(token))
    assert r.status == 200
    assert r.content_type == "audio/wav" and r.headers["Accept-Ranges"] == "bytes"
    original = wav_bytes()
    assert await r.read() == original
    r = await web.client.get(url, headers={**bearer(token), "Range": "bytes=100-199"})
    assert r.status == 206
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(original)}"
    assert await r.read() == original[100:200]
    r = await web.client.get(url, headers={**bearer(token), "Range": "bytes=-10"})
    assert r.status == 206 and await r.read() == original[-10:]
    r = await web.client.get(url, headers={**bearer(token), "Range": "bytes=4000-"})
    assert r.status == 206 and await r.read() == original[4000:]
    r = await web.client.get(url, headers={**bearer(token), "Range": f"bytes={len(original)}-"})
    assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(original)}"
    r = await web.client.get(url, headers={**bearer(token), "Range": "bytes=0-1,5-6"})
    assert r.status == 200 and await r.read() == original  # several ranges: the whole file
    assert [e["purpose"] for e in await log_of(web)] == ["api: recording"] * 5


async def test_a_plain_recording_and_a_missing_one(web: Web, tmp_path: Path) -> None:
    seeded = await web.db.run(lambda s: add_call(s, recording=tmp_path / "x"))
    no_recording = await web.db.run(lambda s: add_call(s, contact_id=seeded.contact_id))
    token = await web.token(Scope.RECORDINGS_READ)
    r = await web.client.get(f"/api/v1/calls/{seeded.attempt_id}/recording", headers=bearer(token))
    assert r.status == 200 and await r.read() == wav_bytes()
    (tmp_path / f"call-{seeded.attempt_id}.wav").unlink()
    r = await web.client.get(f"/api/v1/calls/{seeded.attempt_id}/recording", headers=bearer(token))
    assert r.status == 404
    url = f"/api/v1/calls/{no_recording.attempt_id}/recording"
    r = await web.client.get(url, headers=bearer(token))
    assert r.status == 404 and (await r.json())["error"] == "not_found"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=ten",
        "before=-1",
        "before=99999999999999999999",
        "since=yesterday",
        "until=2026-13-01",
        "status=ringing",
        "campaign=" + "x" * 64,
        "outcome=a%00b",
    ],
)
async def test_invalid_parameters_are_422(web: Web, query: str) -> None:
    token = await web.token(Scope.CALLS_READ)
    r = await web.client.get(f"/api/v1/calls?{query}", headers=bearer(token))
    assert r.status == 422
    assert (await r.json())["error"] == "invalid_parameter"


async def test_ids_that_cannot_exist_are_not_found(web: Web) -> None:
    token = await web.token(Scope.CALLS_READ, Scope.CUSTOMERS_READ)
    for path in ("/api/v1/calls/abc", "/api/v1/calls/0", "/api/v1/contacts/9" + "9" * 30):
        r = await web.client.get(path, headers=bearer(token))
        assert r.status == 404 and (await r.json())["error"] == "not_found", path


async def test_campaigns_are_listed_paused_and_resumed(web: Web) -> None:
    reader = await web.token(Scope.CAMPAIGNS_READ)
    writer = await web.token(Scope.CAMPAIGNS_WRITE, Scope.CAMPAIGNS_READ)
    r = await web.client.get("/api/v1/campaigns", headers=bearer(reader))
    items = (await r.json())["items"]
    assert [c["name"] for c in items] == ["recovery", "winback"]
    assert items[0]["paused"] is False and items[0]["settings"]["max_attempts"] == 3
    r = await web.client.post("/api/v1/campaigns/recovery/pause", headers=bearer(reader))
    assert r.status == 403
    r = await web.client.post("/api/v1/campaigns/recovery/pause", headers=bearer(writer))
    assert r.status == 200
    assert (await r.json())["paused"] is True
    r = await web.client.get("/api/v1/campaigns", headers=bearer(reader))
    paused = (await r.json())["items"][0]
    assert paused["paused"] is True and paused["paused_reason"] == "by hand"
    r = await web.client.post("/api/v1/campaigns/recovery/resume", headers=bearer(writer))
    assert (await r.json())["paused"] is False
    r = await web.client.post("/api/v1/campaigns/nope/pause", headers=bearer(writer))
    assert r.status == 404


async def test_a_session_needs_its_csrf_token_to_pause(web: Web) -> None:
    csrf = await web.sign_in_as(Role.ADMIN)
    r = await web.client.post("/api/v1/campaigns/recovery/pause")
    assert r.status == 403 and (await r.json())["error"] == "csrf"
    r = await web.client.post("/api/v1/campaigns/recovery/pause", headers={"X-CSRF-Token": csrf})
    assert r.status == 200
