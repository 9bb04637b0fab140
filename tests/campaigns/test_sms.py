"""Text keywords (STOP, HELP, START) and the consent gate, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlmodel import col, select

from agent.campaigns.jobs import claim_due
from agent.campaigns.records import Channel, Consent
from agent.campaigns.settings import MerchantSettings, SmsSettings
from agent.campaigns.sms import (
    InboundText,
    Keyword,
    NoConsent,
    TextInbox,
    TextSender,
    handle_inbound,
    keyword,
    may_text,
    sender_number,
    with_footer,
)
from agent.privacy import audit
from agent.store.repository import add_do_not_call, on_do_not_call
from agent.store.tables import Consent as ConsentRow
from agent.telephony.ami_events import AmiEvent
from tests.campaigns.helpers import T0, Clock, Store, checkout, consent, open_store, settings_with

PHONE = "+12125550123"
MERCHANT = MerchantSettings(name="Trail Shop", phone="+1 212 555 0199")
SMS = SmsSettings()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(delay_min=0), Clock()) as st:
        yield st


def _ingest(store: Store, *, sms_consent: bool = True) -> None:
    consents = (consent(),) + (
        (Consent(Channel.SMS, True, "sms-v1", T0 - dt.timedelta(hours=1), "test"),)
        if sms_consent
        else ()
    )
    rec = checkout("c1", phone=PHONE, consents=consents)
    store.db.call(lambda s: store.intake.ingest(s, rec))


def _text(store: Store, body: str, at: dt.datetime = T0) -> tuple[Keyword | None, str | None]:
    handled = store.db.call(
        lambda s: handle_inbound(s, InboundText(PHONE, body), SMS, MERCHANT, at)
    )
    return handled.keyword, handled.reply


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", Keyword.STOP),
        ("stop", Keyword.STOP),
        (" Unsubscribe. ", Keyword.STOP),
        ("CANCEL", Keyword.STOP),
        ("end", Keyword.STOP),
        ("Quit!", Keyword.STOP),
        ("HELP", Keyword.HELP),
        ("start", Keyword.START),
        ("please stop", None),
        ("don't stop me now", None),
        ("Is my order shipped?", None),
        ("", None),
    ],
)
def test_keywords_are_whole_messages(body: str, expected: Keyword | None) -> None:
    assert keyword(body) is expected


def test_stop_opts_out_of_texts_and_calls_and_is_confirmed_once(store: Store) -> None:
    _ingest(store)
    assert store.db.call(lambda s: may_text(s, PHONE))
    kind, reply = _text(store, "STOP")
    assert kind is Keyword.STOP
    assert reply is not None and reply.startswith("Trail Shop:") and "START" in reply
    assert store.db.call(lambda s: on_do_not_call(s, PHONE))
    assert not store.db.call(lambda s: may_text(s, PHONE))
    # The pending call job was closed with the opt-out: nobody calls this number now.
    campaigns = {c.name: c for c in store.settings.campaigns}
    due, _ = store.db.call(
        lambda s: claim_due(
            s, T0 + dt.timedelta(hours=1), limit=5, server_id="t", campaigns=campaigns
        )
    )
    assert due == []
    for word in ("STOP", "unsubscribe", "QUIT"):
        assert _text(store, word) == (Keyword.STOP, None)  # confirmed once only
    refusals = store.db.call(
        lambda s: s.exec(
            select(ConsentRow).where(col(ConsentRow.channel) == "sms", ~col(ConsentRow.granted))
        ).all()
    )
    assert [r.source for r in refusals] == ["sms:STOP"]
    log = store.db.call(audit.entries)
    assert [e["action"] for e in log] == ["sms_opt_out"]
    assert PHONE not in str(log)


def test_help_names_the_merchant_and_how_to_reach_it_every_time(store: Store) -> None:
    _ingest(store)
    for _ in range(2):
        kind, reply = _text(store, "help")
        assert kind is Keyword.HELP
        assert reply == (
            "Trail Shop: reminders about your order. For help contact +1 212 555 0199. "
            "Reply STOP to opt out."
        )
    assert store.db.call(lambda s: may_text(s, PHONE))  # HELP changes nothing


def test_start_opts_back_in_after_an_sms_stop(store: Store) -> None:
    _ingest(store)
    _text(store, "STOP", T0)
    kind, reply = _text(store, "START", T0 + dt.timedelta(minutes=1))
    assert kind is Keyword.START and reply is not None and "subscribed again" in reply
    assert not store.db.call(lambda s: on_do_not_call(s, PHONE))
    assert store.db.call(lambda s: may_text(s, PHONE))
    # After START, a new STOP is confirmed again.
    assert _text(store, "STOP", T0 + dt.timedelta(minutes=2))[1] is not None


def test_start_does_not_lift_an_opt_out_made_another_way(store: Store) -> None:
    _ingest(store)
    store.db.call(lambda s: add_do_not_call(s, PHONE, "opt_out", "call", T0))
    _text(store, "START")
    assert store.db.call(lambda s: on_do_not_call(s, PHONE))
    assert not store.db.call(lambda s: may_text(s, PHONE))


def test_stop_from_an_unknown_number_still_stops_calls(store: Store) -> None:
    stranger = "+13125550188"
    handled = store.db.call(
        lambda s: handle_inbound(s, InboundText(stranger, "STOP"), SMS, MERCHANT, T0)
    )
    assert handled.reply is not None and handled.contact_id is None
    assert store.db.call(lambda s: on_do_not_call(s, stranger))


def test_other_messages_change_nothing_and_get_no_reply(store: Store) -> None:
    _ingest(store)
    assert _text(store, "When does my order ship?") == (None, None)
    assert store.db.call(lambda s: may_text(s, PHONE))


def test_texts_need_sms_consent(store: Store) -> None:
    _ingest(store, sms_consent=False)
    assert not store.db.call(lambda s: may_text(s, PHONE))  # a call consent is not enough
    assert not store.db.call(lambda s: may_text(s, "+13125550100"))  # nobody we know


async def test_the_sender_refuses_without_consent_and_adds_the_footer(store: Store) -> None:
    sent: list[tuple[str, str]] = []

    async def send_text(number: str, body: str) -> None:
        sent.append((number, body))

    sender = TextSender(store.db.run, send_text, SMS)
    with pytest.raises(NoConsent):
        await sender.send(PHONE, "Your cart: https://shop.example/c/1", purpose="checkout link")
    _ingest(store)
    await sender.send(PHONE, "Your cart: https://shop.example/c/1", purpose="checkout link")
    assert sent == [(PHONE, "Your cart: https://shop.example/c/1 Reply STOP to opt out.")]
    assert with_footer("Reply stop to opt out.", SMS) == "Reply stop to opt out."
    off = TextSender(store.db.run, send_text, SmsSettings(enabled=False))
    with pytest.raises(NoConsent, match="switched off"):
        await off.send(PHONE, "hello", purpose="test")


@pytest.mark.parametrize(
    ("sip_from", "expected"),
    [
        ('"+12125550123" <sip:+12125550123@10.0.0.5:5060>', "+12125550123"),
        ("<sip:12125550123@carrier.example;user=phone>", "+12125550123"),
        ("sip:2125550123@carrier.example", "+12125550123"),  # national form, read in the US
        ("<sip:anonymous@anonymous.invalid>", None),
        ("", None),
    ],
)
def test_the_sender_number_is_read_from_the_sip_from(sip_from: str, expected: str | None) -> None:
    assert sender_number(sip_from, "US") == expected


async def test_the_inbox_acts_on_the_ami_event_and_replies(store: Store) -> None:
    _ingest(store)
    sent: list[tuple[str, str]] = []

    async def send_text(number: str, body: str) -> None:
        sent.append((number, body))

    inbox = TextInbox(store.db.run, send_text, SMS, MERCHANT, "US", clock=lambda: T0)
    body = base64.b64encode(b"STOP").decode()
    inbox.on_ami_event(
        AmiEvent(
            "UserEvent",
            {"UserEvent": "CartlineMessage", "From": f"<sip:{PHONE}@10.0.0.5>", "Body": body},
            0.0,
        )
    )
    inbox.on_ami_event(AmiEvent("UserEvent", {"UserEvent": "Other"}, 0.0))
    await inbox.drain()
    assert [n for n, _ in sent] == [PHONE]
    assert store.db.call(lambda s: on_do_not_call(s, PHONE))
