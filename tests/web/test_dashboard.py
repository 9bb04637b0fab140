"""The dashboard's pages through real HTTP: who sees what, the processing log, the forms."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.privacy import audit
from agent.store import repository as repo
from agent.store.tables import ProcessingLog, User, table
from agent.web import accounts, reports
from agent.web.access import Role
from tests.store.seed import TURNS, Seeded, add_call, add_contact
from tests.web.conftest import Web

NAME = "Dana"
PHONE = "+12125550123"
SAID = "Oh hi, yes I meant to finish that."
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


async def _seed(web: Web, tmp_path: Path, **kw: object) -> Seeded:
    def add(s: Session) -> Seeded:
        contact = add_contact(s, phone=PHONE, first_name=NAME)
        return add_call(
            s,
            contact_id=contact,
            started_at=NOW - dt.timedelta(hours=3),
            turns=TURNS,
            recording=tmp_path / "rec.wav",
            attributed=Decimal("120.00"),
            **kw,  # type: ignore[arg-type]
        )

    return await web.db.run(add)


async def _log(web: Web) -> list[dict[str, object]]:
    return await web.db.run(lambda s: audit.entries(s))


PAGES = ["/", "/campaigns", "/live", "/calls", "/contacts", "/compliance", "/users"]
ALLOWED = {
    Role.OWNER: set(PAGES),
    Role.ADMIN: set(PAGES),
    Role.ANALYST: {"/", "/campaigns"},
    Role.AGENT: {"/", "/campaigns", "/live", "/calls"},
}


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_reaches_its_pages_and_no_others(
    web: Web, tmp_path: Path, role: Role
) -> None:
    await _seed(web, tmp_path)
    await web.sign_in_as(role, campaigns=["recovery"])
    for page in PAGES:
        r = await web.client.get(page, allow_redirects=False)
        body = await r.text()
        assert r.status == (200 if page in ALLOWED[role] else 403), (page, r.status)
        if r.status == 200:
            # The navigation offers exactly the pages this role may open.
            nav = re.search(r"<nav>(.*?)</nav>", body, re.S)
            assert nav is not None
            links = set(re.findall(r'href="([^"]+)"', nav.group(1)))
            assert links == ALLOWED[role]
            assert "Content-Security-Policy" in r.headers


async def test_a_visitor_is_sent_to_sign_in(web: Web) -> None:
    r = await web.client.get("/calls?status=answered", allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"].startswith("/login?next=")
    assert "calls" in r.headers["Location"]


async def test_the_analyst_sees_figures_but_no_customer_data(web: Web, tmp_path: Path) -> None:
    seeded = await _seed(web, tmp_path)
    await web.sign_in_as(Role.ANALYST)
    for page in ("/", "/campaigns", "/?from=2020-01-01"):
        r = await web.client.get(page)
        body = await r.text()
        assert r.status == 200
        for secret in (NAME, PHONE, PHONE[2:], SAID, "dana@example.com"):
            assert secret not in body, (page, secret)
    assert "120.00 USD" in body  # the figures are there
    for page in (f"/calls/{seeded.attempt_id}", f"/contacts/{seeded.contact_id}", "/live/events"):
        r = await web.client.get(page)
        assert r.status == 403
        assert NAME not in await r.text()
    assert await _log(web) == []


async def test_the_overview_adds_up_the_period(web: Web, tmp_path: Path) -> None:
    seeded = await _seed(web, tmp_path)
    await web.db.run(
        lambda s: add_call(
            s,
            contact_id=seeded.contact_id,
            status="no_answer",
            outcome=None,
            started_at=NOW - dt.timedelta(days=2),
        )
    )
    await web.sign_in_as(Role.OWNER)
    body = await (await web.client.get("/")).text()
    assert "120.00 USD" in body
    assert "50.0%" in body  # one checkout recovered of the two called
    old = await (await web.client.get("/?from=2020-01-01&to=2020-01-31")).text()
    assert "120.00 USD" not in old and "No calls in this period." in old
    r = await web.client.get("/?from=yesterday")
    assert r.status == 400

    names = ["recovery", "winback"]
    today = NOW.date()
    period = reports.Period.last(30, today)
    figures = await web.db.run(lambda s: reports.overview(s, period, names))
    assert figures.revenue == {"USD": Decimal("120.00")}
    assert figures.calls_by_status == {"answered": 1, "no_answer": 1}
    assert figures.outcomes == {"interested": 1}
    assert figures.funnel == reports.Funnel(2, 2, 2, 1, 1)
    assert figures.recovery_rate == 0.5
    assert sum(d.calls for d in figures.days) == 2 and len(figures.days) == 30
    by_name = {c.name: c for c in figures.campaigns}
    assert by_name["recovery"].calls == 2 and by_name["recovery"].recovered == 1
    assert by_name["winback"].calls == 0
    theirs = await web.db.run(lambda s: reports.overview(s, period, names, frozenset({"winback"})))
    assert theirs.calls == 0 and theirs.revenue == {} and theirs.funnel.abandoned == 0
    mine = await web.db.run(lambda s: reports.overview(s, period, names, frozenset({"recovery"})))
    assert mine.funnel == figures.funnel and mine.revenue == figures.revenue
    assert [c.name for c in mine.campaigns] == ["recovery"]


async def test_a_call_page_shows_the_call_and_logs_the_view(web: Web, tmp_path: Path) -> None:
    seeded = await _seed(web, tmp_path)
    await web.sign_in_as(Role.AGENT, campaigns=["recovery"])
    r = await web.client.get(f"/calls/{seeded.attempt_id}")
    body = await r.text()
    assert r.status == 200
    assert SAID in body and "Hi Dana, this is the shop." in body
    assert f'src="/api/v1/calls/{seeded.attempt_id}/recording"' in body
    assert "wants a reminder" in body  # the note
    assert "interested" in body  # the outcome
    assert "due" in body  # why it was called
    assert f'href="/contacts/{seeded.contact_id}"' not in body  # agents see no contact page
    entries = await _log(web)
    assert [(e["action"], e["subjects"], e["purpose"]) for e in entries] == [
        ("access", f"contact:{seeded.contact_id}", "dashboard: call")
    ]
    assert str(entries[0]["actor"]).startswith("user:agent-")


async def test_an_agent_sees_only_the_calls_of_their_campaigns(web: Web, tmp_path: Path) -> None:
    seeded = await _seed(web, tmp_path)
    await web.sign_in_as(Role.AGENT, campaigns=["winback"])
    r = await web.client.get(f"/calls/{seeded.attempt_id}")
    assert r.status == 404
    body = await (await web.client.get("/calls")).text()
    assert NAME not in body and "No calls match." in body
    body = await (await web.client.get("/")).text()
    assert "120.00 USD" not in body
    body = await (await web.client.get("/campaigns")).text()
    assert 'id="campaign-winback"' in body and 'id="campaign-recovery"' not in body
    assert await _log(web) == []


async def test_the_call_list_filters_pages_and_logs_whom_it_showed(web: Web) -> None:
    def seed(s: Session) -> list[int]:
        contact = add_contact(s, phone=PHONE, first_name=NAME)
        return [
            add_call(
                s,
                contact_id=contact,
                status="answered" if i % 2 else "busy",
                outcome="interested" if i % 2 else None,
                started_at=NOW - dt.timedelta(minutes=i),
            ).attempt_id
            for i in range(60)
        ]

    ids = await web.db.run(seed)
    await web.sign_in_as(Role.ADMIN)
    first = await (await web.client.get("/calls")).text()
    shown = [int(i) for i in re.findall(r'href="/calls/(\d+)"', first)]
    assert shown == sorted(ids, reverse=True)[:50]
    assert "60 calls" in first
    older = re.search(r'href="(/calls\?before=\d+)" rel="next"', first)
    assert older is not None
    second = await (await web.client.get(older.group(1))).text()
    assert [int(i) for i in re.findall(r'href="/calls/(\d+)"', second)] == sorted(ids)[:10][::-1]
    assert 'rel="next"' not in second
    busy = await (await web.client.get("/calls?status=busy&campaign=recovery")).text()
    assert "30 calls" in busy and "answered</span>" not in busy
    r = await web.client.get("/calls?before=x")
    assert r.status == 400
    entries = await _log(web)
    assert len(entries) == 3  # one per page shown; the refused request showed nothing
    assert {e["purpose"] for e in entries} == {"dashboard: call list"}


async def test_contacts_show_consent_and_do_not_call(web: Web, tmp_path: Path) -> None:
    seeded = await _seed(web, tmp_path)
    await web.db.run(lambda s: repo.add_do_not_call(s, PHONE, "complaint", "test", NOW))
    await web.sign_in_as(Role.ADMIN)
    listing = await (await web.client.get("/contacts?q=dana")).text()
    assert PHONE in listing and "do not call" in listing
    page = await (await web.client.get(f"/contacts/{seeded.contact_id}")).text()
    assert PHONE in page and 'id="dnc">do not call' in page and "given" in page
    assert f'href="/calls/{seeded.attempt_id}"' in page
    assert (await web.client.get("/contacts/999999")).status == 404
    purposes = [e["purpose"] for e in await _log(web)]
    assert purposes == ["dashboard: contact list", "dashboard: contact"]


async def test_pausing_needs_the_csrf_token_and_the_scope(web: Web) -> None:
    async def paused() -> set[str]:
        return await web.db.run(repo.paused_campaigns)

    csrf = await web.sign_in_as(Role.ADMIN)
    r = await web.client.post("/campaigns/recovery/pause", data={}, allow_redirects=False)
    assert r.status == 403 and await paused() == set()
    r = await web.client.post(
        "/campaigns/recovery/pause", data={"csrf_token": "forged"}, allow_redirects=False
    )
    assert r.status == 403 and await paused() == set()
    r = await web.client.post("/campaigns/recovery/pause", data={"csrf_token": csrf})
    assert r.status == 200 and await paused() == {"recovery"}
    body = await r.text()
    assert 'action="/campaigns/recovery/resume"' in body and "paused" in body
    r = await web.client.post("/campaigns/nope/pause", data={"csrf_token": csrf})
    assert r.status == 404
    r = await web.client.post("/campaigns/recovery/resume", data={"csrf_token": csrf})
    assert r.status == 200 and await paused() == set()
    actions = [e["action"] for e in await _log(web)]
    assert actions == ["campaign_paused", "campaign_resumed"]

    web.sign_out()
    csrf = await web.sign_in_as(Role.ANALYST)
    body = await (await web.client.get("/campaigns")).text()
    assert "/pause" not in body
    r = await web.client.post("/campaigns/recovery/pause", data={"csrf_token": csrf})
    assert r.status == 403 and await paused() == set()


async def test_compliance_shows_counts_requests_and_the_log(web: Web, tmp_path: Path) -> None:
    await _seed(web, tmp_path)
    await web.db.run(lambda s: repo.add_do_not_call(s, PHONE, "complaint", "test", NOW))
    await web.db.run(
        lambda s: audit.record(s, actor="cli:ops", action="export", contacts=[7], purpose="DSAR")
    )
    await web.sign_in_as(Role.OWNER)
    body = await (await web.client.get("/compliance")).text()
    assert PHONE not in body and NAME not in body
    assert "complaint" in body and "contact:7" in body and "DSAR" in body
    assert "/api/v1/do-not-call/import" in body and "/static/compliance.js" in body


async def test_users_are_added_and_managed_within_the_role(web: Web) -> None:
    owner_id = await web.user(Role.OWNER, email="boss@shop.example")
    csrf = await web.sign_in_as(Role.ADMIN)
    body = await (await web.client.get("/users")).text()
    assert "boss@shop.example" in body
    assert f'action="/users/{owner_id}/disable"' not in body  # admins leave owners alone
    assert '<option value="owner">' not in body

    r = await web.client.post(
        "/users",
        data={"csrf_token": csrf, "email": "Ann@Shop.example", "role": "agent",
              "campaigns": ["winback", "nope"]},
    )  # fmt: skip
    body = await r.text()
    assert r.status == 200 and "ann@shop.example" in body
    password = re.search(r'id="new-password">.*?<code>([^<]+)</code>', body, re.S)
    assert password is not None

    def ann(s: Session) -> User:
        user = accounts.find_user(s, "ann@shop.example")
        assert user is not None
        return user

    user = await web.db.run(ann)
    assert user.role == "agent" and user.campaigns == ["winback"]
    assert accounts.verify_password(user, password.group(1))

    r = await web.client.post("/users", data={"csrf_token": csrf, "email": "o@x.example",
                                              "role": "owner"})  # fmt: skip
    assert r.status == 403
    r = await web.client.post(f"/users/{owner_id}/reset-mfa", data={"csrf_token": csrf})
    assert r.status == 403
    r = await web.client.post(f"/users/{user.id}/disable", data={"csrf_token": csrf})
    assert r.status == 200 and "Disabled" in await r.text()
    assert (await web.db.run(ann)).disabled

    r = await web.client.post(
        "/tokens", data={"csrf_token": csrf, "name": "crm", "scopes": ["calls:read"]}
    )
    body = await r.text()
    token = re.search(r'id="token-value">([^<]+)<', body)
    assert token is not None and token.group(1).startswith("cl_")
    r = await web.client.get(
        "/api/v1/nothing-here", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert r.status == 404  # the token was accepted; the path does not exist
    again = await (await web.client.get("/users")).text()
    assert token.group(1) not in again  # shown once
    r = await web.client.post("/tokens/revoke", data={"csrf_token": csrf, "name": "crm"})
    assert r.status == 200 and "Token revoked." in await r.text()
    actions = [e["action"] for e in await _log(web)]
    assert actions == ["user_added", "user_disable", "token_added", "token_revoked"]


async def test_the_processing_log_names_only_contact_ids(web: Web, tmp_path: Path) -> None:
    seeded = await _seed(web, tmp_path)
    await web.sign_in_as(Role.OWNER)
    await web.client.get(f"/calls/{seeded.attempt_id}")
    rows = await web.db.run(lambda s: list(s.connection().execute(sa_select(table(ProcessingLog)))))
    for row in rows:
        text = " ".join(str(v) for v in row)
        assert NAME not in text and PHONE not in text
