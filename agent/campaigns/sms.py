"""Text messages: keywords from customers (STOP, HELP, START) and the consent gate for sending.

A customer's STOP (or UNSUBSCRIBE, CANCEL, END, QUIT) takes effect in the same
transaction that reads it: an SMS refusal is recorded and the number goes on the
do-not-call list, so calls stop too. It is confirmed once; a repeated STOP gets no
reply. HELP answers with the merchant's name and contact, every time. START records
consent again and lifts a do-not-call entry that an SMS STOP made (not one made any
other way: a spoken opt-out or an imported list stays).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import enum
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import Session, col, select

from agent.campaigns.phones import normalize_phone
from agent.campaigns.records import Channel
from agent.campaigns.settings import MerchantSettings, SmsSettings
from agent.privacy import audit
from agent.store.repository import add_do_not_call
from agent.store.tables import Consent, Contact, DoNotCall, table
from agent.telephony.ami_events import AmiEvent

log = logging.getLogger(__name__)

SMS_OPT_OUT = "sms_opt_out"  # the do-not-call reason an SMS STOP writes
SYSTEM_ACTOR = "system:sms"


class Keyword(enum.StrEnum):
    STOP = "stop"
    HELP = "help"
    START = "start"


_WORDS = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), Keyword.STOP),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
    **dict.fromkeys(("START", "UNSTOP"), Keyword.START),
}


def keyword(body: str) -> Keyword | None:
    """The keyword a message is, if it is one: the whole message, any case, trailing
    punctuation ignored ("Stop." is STOP; "don't stop" is not)."""
    word = re.sub(r"[\s.!]+$", "", body.strip()).upper()
    return _WORDS.get(word)


@dataclass(frozen=True)
class InboundText:
    """A text message that reached the merchant's number."""

    sender: str  # E.164 when it could be read, else the digits as sent
    body: str


@dataclass(frozen=True)
class Handled:
    keyword: Keyword | None
    reply: str | None
    contact_id: int | None


def _contact(s: Session, phone: str) -> Contact | None:
    return s.exec(select(Contact).where(col(Contact.phone_e164) == phone)).first()


def _sms_refused(s: Session, contact_id: int | None, phone: str) -> bool:
    """True while an SMS STOP is in force for this number."""
    entry = s.exec(select(DoNotCall).where(col(DoNotCall.phone_e164) == phone)).first()
    if entry is not None and entry.reason == SMS_OPT_OUT:
        return True
    if contact_id is None:
        return False
    latest = s.exec(
        select(Consent)
        .where(col(Consent.contact_id) == contact_id, col(Consent.channel) == Channel.SMS.value)
        .order_by(col(Consent.captured_at).desc(), col(Consent.id).desc())
    ).first()
    return latest is not None and not latest.granted and latest.source.startswith("sms:")


def _record_consent(
    s: Session, contact_id: int, granted: bool, word: str, now: dt.datetime
) -> None:
    s.add(
        Consent(
            contact_id=contact_id,
            channel=Channel.SMS.value,
            granted=granted,
            text_version=f"sms-keyword-{word.lower()}",
            text=None,
            source=f"sms:{word.upper()}",
            captured_at=now,
            recorded_at=now,
        )
    )


def handle_inbound(
    s: Session,
    text: InboundText,
    sms: SmsSettings,
    merchant: MerchantSettings,
    now: dt.datetime,
) -> Handled:
    """Acts on one inbound message; returns the reply to send (None: send nothing)."""
    kind = keyword(text.body)
    contact = _contact(s, text.sender)
    contact_id = contact.id if contact is not None else None
    fill = {"merchant": merchant.name, "contact": merchant.contact}
    if kind is None:
        return Handled(None, None, contact_id)
    if kind is Keyword.HELP:
        return Handled(kind, sms.help_reply.format(**fill), contact_id)
    word = text.body.strip().upper().rstrip(".! ")
    refused = _sms_refused(s, contact_id, text.sender)
    if kind is Keyword.STOP:
        if refused:
            return Handled(kind, None, contact_id)  # confirmed once already
        if contact_id is not None:
            _record_consent(s, contact_id, False, word, now)
        add_do_not_call(s, text.sender, SMS_OPT_OUT, f"sms:{word}", now)
        audit.record(
            s, actor=SYSTEM_ACTOR, action="sms_opt_out", contacts=[contact_id] if contact_id else []
        )
        return Handled(kind, sms.stop_reply.format(**fill), contact_id)
    # START
    if contact_id is not None:
        _record_consent(s, contact_id, True, word, now)
    dnc = table(DoNotCall)
    s.connection().execute(
        delete(dnc).where(dnc.c.phone_e164 == text.sender, dnc.c.reason == SMS_OPT_OUT)
    )
    audit.record(
        s, actor=SYSTEM_ACTOR, action="sms_opt_in", contacts=[contact_id] if contact_id else []
    )
    return Handled(kind, sms.start_reply.format(**fill), contact_id)


def may_text(s: Session, phone_e164: str) -> bool:
    """True when this number gave SMS consent (the latest record) and is not opted out."""
    contact = _contact(s, phone_e164)
    if contact is None or contact.id is None:
        return False
    if s.exec(select(DoNotCall.id).where(col(DoNotCall.phone_e164) == phone_e164)).first():
        return False
    latest = s.exec(
        select(Consent)
        .where(col(Consent.contact_id) == contact.id, col(Consent.channel) == Channel.SMS.value)
        .order_by(col(Consent.captured_at).desc(), col(Consent.id).desc())
    ).first()
    return latest is not None and latest.granted


def with_footer(body: str, sms: SmsSettings) -> str:
    footer = sms.footer.strip()
    if not footer or footer.lower() in body.lower():
        return body
    return f"{body.rstrip()} {footer}"


# -- over the trunk ----------------------------------------------------------------------

_SIP_USER = re.compile(r"sips?:([^@;>\s]+)@")


def sender_number(sip_from: str, default_region: str) -> str | None:
    """The sender's number from a SIP From header value (E.164 when it can be read)."""
    found = _SIP_USER.search(sip_from)
    user = found[1] if found else sip_from.strip()
    digits = re.sub(r"[^0-9+]", "", user)
    if not re.fullmatch(r"\+?[0-9]{3,20}", digits):
        return None
    parsed = normalize_phone(digits, default_region)
    if parsed.e164 is not None:
        return parsed.e164
    return digits if digits.startswith("+") else f"+{digits}"


def decode_body(encoded: str) -> str:
    return base64.b64decode(encoded).decode("utf-8", errors="replace")


SendText = Callable[[str, str], Awaitable[None]]


class NoConsent(Exception):
    """The number has not agreed to text messages (or has opted out)."""


@dataclass
class TextSender:
    """Sends the merchant's own messages (the checkout link, follow-ups) only with consent."""

    run: Callable[[Callable[[Session], bool]], Awaitable[bool]]
    send_text: SendText
    sms: SmsSettings

    async def send(self, phone_e164: str, body: str, *, purpose: str) -> None:
        if not self.sms.enabled:
            raise NoConsent("text messages are switched off (sms.enabled)")

        def allowed(s: Session) -> bool:
            ok = may_text(s, phone_e164)
            contact = _contact(s, phone_e164)
            if ok and contact is not None and contact.id is not None:
                audit.record(
                    s, actor=SYSTEM_ACTOR, action="sms_sent", contacts=[contact.id], purpose=purpose
                )
            return ok

        if not await self.run(allowed):
            raise NoConsent("this number has not agreed to text messages")
        await self.send_text(phone_e164, with_footer(body, self.sms))


MESSAGE_EVENT = "CartlineMessage"  # the UserEvent the dialplan raises for each inbound text


class TextInbox:
    """Acts on text messages to the merchant's number as Asterisk reports them (AMI).

    Each message is handled in its own task, in the order received per sender; a
    message that cannot be handled is logged (without the number or the text) and
    dropped, and the carrier's own STOP handling remains as a backstop.
    """

    def __init__(
        self,
        run: Callable[[Callable[[Session], Handled]], Awaitable[Handled]],
        send_text: SendText,
        sms: SmsSettings,
        merchant: MerchantSettings,
        default_region: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._run = run
        self._send_text = send_text
        self.sms = sms
        self.merchant = merchant
        self.default_region = default_region
        self.clock = clock
        self._tasks: set[asyncio.Task[Handled]] = set()
        self._lock = asyncio.Lock()

    def on_ami_event(self, event: AmiEvent) -> None:
        if event.name != "UserEvent" or event.get("UserEvent") != MESSAGE_EVENT:
            return
        sender = sender_number(event.get("From"), self.default_region)
        if sender is None:
            log.warning("a text message with an unreadable sender was dropped")
            return
        try:
            body = decode_body(event.get("Body"))
        except ValueError:
            log.warning("a text message with an unreadable body was dropped")
            return
        task = asyncio.get_running_loop().create_task(self.receive(InboundText(sender, body)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def receive(self, text: InboundText) -> Handled:
        """Handles one message and sends its reply, if any."""
        # One at a time, so a STOP and a START sent back to back are applied in order.
        async with self._lock:
            now = self.clock()
            handled = await self._run(
                lambda s: handle_inbound(s, text, self.sms, self.merchant, now)
            )
        if handled.keyword is not None:
            log.info("text keyword %s handled", handled.keyword.value)
        if handled.reply is not None:
            try:
                await self._send_text(text.sender, handled.reply)
            except Exception:
                log.exception("the reply to a text keyword could not be sent")
        return handled

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
