"""A customer's data on request: everything Cartline holds on them, exported or erased.

The customer is found by phone number or email. Export writes one zip archive:
``subject.json`` (every row about them, transcripts opened) and their recordings
as WAV files. Erasure deletes the same rows and files everywhere, including the
raw webhook deliveries that carried their details; when they had opted out, a
do-not-call entry (the number, the reason, the date) is kept so that they are
never called again.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.campaigns.phones import normalize_phone
from agent.errors import CartlineError
from agent.privacy.crypto import RECORDING_CONTEXT, TRANSCRIPT_CONTEXT, DataKeys, is_sealed
from agent.privacy.rotation import recording_files
from agent.store.tables import (
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Consent,
    Contact,
    Decision,
    DoNotCall,
    Order,
    OutboundEvent,
    Outcome,
    Recording,
    Transcript,
    WebhookDelivery,
    table,
)


class SubjectNotFound(CartlineError):
    """No contact matches the phone number or email given."""


@dataclass
class Subject:
    """One person's rows, by table name, and the strings that identify them."""

    phones: set[str]
    emails: set[str]
    ids: dict[str, list[int]] = field(default_factory=dict)
    markers: set[str] = field(default_factory=set)


def find_subject(
    s: Session, *, phone: str | None, email: str | None, default_region: str
) -> Subject:
    """Everything held on the person with this number or email (either may be given)."""
    conn = s.connection()
    c = table(Contact).c
    e164 = normalize_phone(phone, default_region).e164 if phone else None
    if phone and e164 is None:
        raise SubjectNotFound("the phone number given is not a valid number")
    conds = []
    if e164:
        conds.append(c.phone_e164 == e164)
    if email:
        conds.append(c.email == email.strip().lower())
    if not conds:
        raise SubjectNotFound("give a phone number or an email")
    where = conds[0] if len(conds) == 1 else conds[0] | conds[1]
    rows = conn.execute(sa_select(c.id, c.phone_e164, c.email).where(where)).all()
    dnc = table(DoNotCall).c
    on_dnc = (
        e164 is not None and conn.execute(sa_select(dnc.id).where(dnc.phone_e164 == e164)).first()
    )
    if not rows and not on_dnc:
        raise SubjectNotFound("no customer with that phone number or email")
    subject = Subject(
        phones={p for _, p, _ in rows if p} | ({e164} if e164 else set()),
        emails={m for _, _, m in rows if m} | ({email.strip().lower()} if email else set()),
    )
    contacts = [int(i) for i, _, _ in rows]
    ids = subject.ids
    ids["contacts"] = contacts

    def select_ids(t: Table, *conditions: Any) -> list[int]:
        return [int(i) for (i,) in conn.execute(sa_select(t.c.id).where(*conditions))]

    k, o, j, a = table(Checkout), table(Order), table(CallJob), table(CallAttempt)
    ids["checkouts"] = select_ids(k, k.c.contact_id.in_(contacts))
    ids["orders"] = select_ids(
        o, o.c.contact_id.in_(contacts) | o.c.checkout_id.in_(ids["checkouts"])
    )
    ids["call_jobs"] = select_ids(
        j, j.c.contact_id.in_(contacts) | j.c.checkout_id.in_(ids["checkouts"])
    )
    ids["call_attempts"] = select_ids(
        a, a.c.contact_id.in_(contacts) | a.c.job_id.in_(ids["call_jobs"])
    )
    for model, name in (
        (Outcome, "outcomes"),
        (Transcript, "transcripts"),
        (Recording, "recordings"),
        (OutboundEvent, "outbound_events"),
    ):
        t = table(model)
        ids[name] = select_ids(t, t.c.attempt_id.in_(ids["call_attempts"]))
    at = table(Attribution)
    ids["attributions"] = select_ids(
        at, at.c.attempt_id.in_(ids["call_attempts"]) | at.c.order_id.in_(ids["orders"])
    )
    d = table(Decision)
    ids["decisions"] = select_ids(d, d.c.checkout_id.in_(ids["checkouts"]))
    cs = table(Consent)
    ids["consents"] = select_ids(cs, cs.c.contact_id.in_(contacts))
    ids["do_not_call"] = select_ids(table(DoNotCall), dnc.phone_e164.in_(subject.phones))
    external = {
        str(x)
        for (x,) in conn.execute(sa_select(k.c.external_id).where(k.c.id.in_(ids["checkouts"])))
    }
    subject.markers = subject.phones | subject.emails | external
    ids["webhook_deliveries"] = _deliveries_about(s, subject.markers)
    return subject


def _deliveries_about(s: Session, markers: set[str]) -> list[int]:
    # The inbox keeps the records as delivered: look for the person in each of them.
    w = table(WebhookDelivery)
    found = []
    for row_id, records in s.connection().execute(sa_select(w.c.id, w.c.records)):
        text = json.dumps(records)
        if any(m and m in text for m in markers):
            found.append(int(row_id))
    return found


def _rows(s: Session, name: str, ids: list[int]) -> list[dict[str, Any]]:
    t = _TABLES[name]
    return [dict(r._mapping) for r in s.connection().execute(sa_select(t).where(t.c.id.in_(ids)))]


_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        table(m)
        for m in (
            Contact, Checkout, Order, Consent, DoNotCall, CallJob, CallAttempt, Outcome,
            Transcript, Recording, Decision, Attribution, WebhookDelivery, OutboundEvent,
        )
    )
}  # fmt: skip


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    return value


def export_document(s: Session, subject: Subject, keys: DataKeys | None) -> dict[str, Any]:
    """Every row about the subject, transcripts opened, as plain JSON values."""
    doc: dict[str, Any] = {"exported_at": dt.datetime.now(dt.UTC).isoformat()}
    for name, ids in subject.ids.items():
        rows = _rows(s, name, ids)
        if name == "transcripts":
            for row in rows:
                sealed = row.get("sealed")
                if sealed and keys is not None:
                    row["turns"] = json.loads(keys.open(sealed, TRANSCRIPT_CONTEXT))
        doc[name] = [{k: _json_value(v) for k, v in row.items() if k != "sealed"} for row in rows]
    return doc


def recording_paths(s: Session, subject: Subject) -> list[Path]:
    paths: list[Path] = []
    for row in _rows(s, "recordings", subject.ids.get("recordings", [])):
        path = Path(row["path"])
        paths.extend(recording_files(path) if path.name.endswith(".enc") else [path])
    return paths


def write_archive(
    target: Path, document: dict[str, Any], recordings: Iterable[Path], keys: DataKeys | None
) -> int:
    """One zip: subject.json and the recordings as WAV files; returns the files written."""
    count = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("subject.json", json.dumps(document, indent=2))
        for path in recordings:
            if not path.is_file():
                continue
            data = path.read_bytes()
            if is_sealed(data):
                if keys is None:
                    raise CartlineError("the recordings are sealed and no data keys are loaded")
                data = keys.open(data, RECORDING_CONTEXT)
            z.writestr(f"recordings/{path.name.removesuffix('.enc')}", data)
            count += 1
    return count


_ERASE_ORDER = (
    "attributions", "outcomes", "transcripts", "recordings", "outbound_events",
    "call_attempts", "decisions",
    "call_jobs", "orders", "checkouts", "consents", "webhook_deliveries", "contacts",
)  # fmt: skip


def erase(s: Session, subject: Subject) -> dict[str, int]:
    """Deletes every row about the subject; an opt-out leaves its do-not-call entry."""
    conn = s.connection()
    counts: dict[str, int] = {}
    for name in _ERASE_ORDER:
        ids = subject.ids.get(name, [])
        if ids:
            t = _TABLES[name]
            conn.execute(delete(t).where(t.c.id.in_(ids)))
        counts[name] = len(ids)
    dnc = table(DoNotCall)
    # An opt-out must outlive the erasure, or the person could be called again.
    gone = conn.execute(
        delete(dnc).where(
            dnc.c.id.in_(subject.ids.get("do_not_call", [])), dnc.c.reason != "opt_out"
        )
    )
    counts["do_not_call"] = int(gone.rowcount or 0)
    return counts


def recording_contacts(s: Session, sealed: Path) -> list[int]:
    """The contact(s) a recording file belongs to (for the processing log)."""
    rec, att = table(Recording), table(CallAttempt)
    mix = sealed.name.replace("-in.wav", ".wav").replace("-out.wav", ".wav")
    rows = s.connection().execute(
        sa_select(att.c.contact_id)
        .select_from(rec.join(att, att.c.id == rec.c.attempt_id))
        .where(rec.c.path.like(f"%/{mix}"))
    )
    return [int(c) for (c,) in rows]
