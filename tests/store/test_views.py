"""The read side: call and contact lists, their filters and pages, details opened with the keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlmodel import Session

from agent.privacy.crypto import DataKeys
from agent.store import call_views, views
from agent.store.db import Database
from agent.store.tables import CallAttempt, Contact, DoNotCall, table
from tests.store.seed import T0, TURNS, add_call, add_contact

KEYS = DataKeys({"k1": bytes(range(32))}, "k1")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    try:
        yield database
    finally:
        database.close()


def _hour(n: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def test_calls_are_listed_newest_first_with_filters_and_pages(db: Database) -> None:
    def seed(s: Session) -> list[int]:
        dana = add_contact(s)
        sam = add_contact(s, phone="+12125550999", email="sam@example.com", first_name="Sam")
        ids = [
            add_call(s, contact_id=dana, started_at=_hour(0), turns=TURNS).attempt_id,
            add_call(s, contact_id=sam, campaign="winback", started_at=_hour(1)).attempt_id,
            add_call(
                s, contact_id=dana, status="no_answer", outcome=None, started_at=_hour(2)
            ).attempt_id,
            add_call(s, contact_id=sam, outcome="not_interested", started_at=_hour(3)).attempt_id,
        ]
        return ids

    ids = db.call(seed)
    every = db.call(lambda s: views.list_calls(s, views.CallFilter()))
    assert [r.attempt_id for r in every] == ids[::-1]
    first = every[-1]
    assert first.first_name == "Dana" and first.phone_e164 == "+12125550123"
    assert first.has_transcript and not first.has_recording
    assert first.outcome == "interested" and first.duration_s == 60.0
    assert first.total == Decimal("120.00") and first.currency == "USD"
    assert every[1].outcome is None and every[1].duration_s is None

    def ids_of(f: views.CallFilter, **kw: int) -> list[int]:
        return [r.attempt_id for r in db.call(lambda s: views.list_calls(s, f, **kw))]

    assert ids_of(views.CallFilter(campaign="winback")) == [ids[1]]
    assert ids_of(views.CallFilter(campaigns=frozenset({"winback"}))) == [ids[1]]
    assert ids_of(views.CallFilter(campaigns=frozenset())) == []
    assert ids_of(views.CallFilter(outcome="interested")) == [ids[1], ids[0]]
    assert ids_of(views.CallFilter(status="no_answer")) == [ids[2]]
    assert ids_of(views.CallFilter(since=_hour(1), until=_hour(3))) == [ids[2], ids[1]]
    assert ids_of(views.CallFilter(), limit=2) == [ids[3], ids[2]]
    assert ids_of(views.CallFilter(), before_id=ids[2], limit=2) == [ids[1], ids[0]]
    assert db.call(lambda s: views.count_calls(s, views.CallFilter())) == 4
    assert db.call(lambda s: views.count_calls(s, views.CallFilter(outcome="interested"))) == 2
    counts = db.call(lambda s: views.outcome_counts(s))
    assert counts == [
        ("recovery", "interested", 1),
        ("recovery", "not_interested", 1),
        ("winback", "interested", 1),
    ]


def test_a_call_detail_opens_a_sealed_transcript_only_with_the_keys(
    db: Database, tmp_path: Path
) -> None:
    seeded = db.call(
        lambda s: add_call(
            s, turns=TURNS, keys=KEYS, recording=tmp_path / "x", attributed=Decimal("99.50")
        )
    )
    detail = db.call(lambda s: views.get_call(s, seeded.attempt_id, KEYS))
    assert detail is not None
    assert detail.turns == TURNS
    # The customer's last words come from the opened transcript (a sealed call's note
    # does not keep them).
    assert detail.note == {
        "summary": "wants a reminder",
        "customer_said": "Oh hi, yes I meant to finish that.",
    }
    assert detail.recording_id == seeded.recording_id and detail.recording_bytes > 0
    assert detail.items[0]["title"] == "Trail shoes"
    assert detail.checkout_url == "https://shop.example/checkouts/c1"
    assert [(d["action"], d["reason"]) for d in detail.decisions] == [("call", "due")]
    assert [(a["amount"], a["currency"]) for a in detail.attributed] == [(Decimal("99.50"), "USD")]
    locked = db.call(lambda s: views.get_call(s, seeded.attempt_id, None))
    assert locked is not None and locked.turns == [] and locked.transcript_locked
    assert db.call(lambda s: views.get_call(s, seeded.attempt_id + 1, KEYS)) is None
    assert seeded.recording_id is not None
    found = db.call(lambda s: views.recording_file(s, seeded.recording_id or 0))
    assert found is not None
    assert found[:2] == (seeded.contact_id, "recovery") and found[2].endswith(".wav.enc")
    assert db.call(lambda s: views.recording_file(s, 999)) is None


def test_contacts_are_searched_by_number_email_and_name(db: Database) -> None:
    def seed(s: Session) -> tuple[int, int]:
        dana = add_contact(s)
        sam = add_contact(
            s,
            phone="+447946000123",
            email="sam_o@example.co.uk",
            first_name="Sam",
            last_name="Okafor",
        )
        add_call(s, contact_id=dana, started_at=_hour(0))
        add_call(s, contact_id=dana, started_at=_hour(5))
        s.add(DoNotCall(phone_e164="+447946000123", reason="opt_out", source="t", created_at=T0))
        return dana, sam

    dana, sam = db.call(seed)

    def found(q: str | None, **kw: int) -> list[int]:
        return [c.contact_id for c in db.call(lambda s: views.list_contacts(s, query=q, **kw))]

    assert found(None) == [sam, dana]
    assert found("+1 212") == [dana]
    assert found("44794") == [sam]
    assert found("DANA@") == [dana]
    assert found("lee") == [dana] and found("sAm") == [sam]
    assert found("sam_") == [sam] and found("sa%") == []
    assert found(None, before_id=sam) == [dana]
    rows = {c.contact_id: c for c in db.call(lambda s: views.list_contacts(s))}
    assert rows[dana].calls == 2 and rows[dana].last_call_at == _hour(5)
    assert rows[sam].do_not_call and not rows[dana].do_not_call
    detail = db.call(lambda s: views.get_contact(s, dana))
    assert detail is not None
    assert len(detail.calls) == 2 and len(detail.checkouts) == 2
    assert {c["channel"] for c in detail.consents} == {"call"}
    assert db.call(lambda s: views.get_contact(s, 999)) is None
    checkouts = db.call(lambda s: views.list_checkouts(s))
    assert [c.contact_id for c in checkouts] == [dana, dana]
    assert db.call(lambda s: views.list_checkouts(s, completed=True)) == []


def _bulk(s: Session, n: int) -> None:
    conn = s.connection()
    conn.execute(
        insert(table(Contact)),
        [{"phone_e164": f"+1212555{i:05d}", "created_at": T0, "updated_at": T0} for i in range(50)],
    )
    ids = [r[0] for r in conn.execute(text("SELECT id FROM contacts"))]
    conn.execute(
        insert(table(CallAttempt)),
        [
            {
                "contact_id": ids[i % len(ids)],
                "campaign": ("recovery", "winback")[i % 2],
                "server_id": "t",
                "status": "answered",
                "started_at": T0 + dt.timedelta(seconds=i),
            }
            for i in range(n)
        ],
    )


def test_a_page_of_calls_reads_by_index_not_by_scanning(db: Database) -> None:
    db.call(lambda s: _bulk(s, 2000))

    def plan(s: Session) -> str:
        f = views.CallFilter(campaigns=frozenset({"recovery"}))
        query = call_views._call_query(f).order_by(table(CallAttempt).c.id.desc()).limit(50)
        compiled = query.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
        rows = s.connection().exec_driver_sql(prefix + str(compiled)).all()
        return "\n".join(str(r[-1]) for r in rows)

    text_plan = db.call(plan)
    if db.is_sqlite:
        # The outer joins and the flags are looked up by key, never scanned.
        for name in ("contacts", "outcomes", "call_jobs", "checkouts", "recordings", "transcripts"):
            assert f"SCAN {name}" not in text_plan, text_plan
    page = db.call(lambda s: views.list_calls(s, views.CallFilter(), limit=50))
    assert len(page) == 50 and page[0].attempt_id > page[-1].attempt_id
