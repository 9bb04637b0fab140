"""A campaign call's dialogue and what it does in the world: policy, performers, return calls.

:func:`policy_for` builds one call's :class:`DialoguePolicy` from the campaign's
script and only the customer fields the campaign shares. :class:`StoreActions`
performs a plan's effects with the real database, telephone and text sender.
:class:`ReturningCallers` recognises a customer who calls the merchant back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_zones
from sqlmodel import Session, col, select

from agent.campaigns.phones import normalize_phone
from agent.campaigns.placement import CallRequest
from agent.campaigns.settings import CampaignSettings, MerchantSettings
from agent.campaigns.sms import NoConsent
from agent.conversation.actions import available
from agent.conversation.facts import CallFacts, CustomerFacts
from agent.conversation.policy import DialoguePolicy
from agent.conversation.prompts import system_prompt
from agent.speech.protocols import Llm
from agent.store import repository as repo
from agent.store.tables import CallAttempt, CallJob, Checkout, Contact
from agent.telephony.agi import InboundCall, InboundRoute
from agent.telephony.dialer import PlacedCall

log = logging.getLogger(__name__)
T = TypeVar("T")
UTC = ZoneInfo("UTC")


class Store(Protocol):
    async def run(self, fn: Callable[[Session], T]) -> T: ...


class Texts(Protocol):
    async def send(self, phone_e164: str, body: str, *, purpose: str) -> None: ...


class CallControl(Protocol):
    """The telephone's side of a call (``agent.app.Telephony`` fits)."""

    async def hangup(self, call: PlacedCall) -> None: ...
    async def transfer(self, call: PlacedCall, number: str) -> None: ...
    async def hangup_channel(self, channel: str) -> None: ...
    async def transfer_channel(self, channel: str, number: str) -> None: ...


def zone_of(phone_e164: str) -> ZoneInfo:
    """The customer's time zone as their number suggests (the first one where several fit)."""
    try:
        zones = phone_zones.time_zones_for_number(phonenumbers.parse(phone_e164))
        return ZoneInfo(zones[0])
    except (phonenumbers.NumberParseException, IndexError, KeyError, ValueError):
        return UTC


def facts_of(request: CallRequest) -> CustomerFacts:
    return CustomerFacts.from_checkout(
        currency=request.currency,
        first_name=request.first_name,
        last_name=request.last_name,
        city=request.city,
        items=request.items,
        total=request.total,
        checkout_url=request.checkout_url,
    )


def policy_for(
    campaign: CampaignSettings,
    merchant: MerchantSettings,
    request: CallRequest,
    llm: Llm,
    *,
    region: str | None = None,
    returning: bool = False,
) -> DialoguePolicy:
    """One call's dialogue: the campaign's script, and only the fields it shares."""
    return DialoguePolicy(
        campaign.script,
        merchant,
        facts_of(request),
        campaign.customer_fields,
        llm,
        tz=zone_of(request.phone_e164),
        now=lambda: dt.datetime.now(dt.UTC),
        region=region,
        returning=returning,
    )


def default_policy(
    campaign: CampaignSettings, merchant: MerchantSettings, llm: Llm
) -> DialoguePolicy:
    """The dialogue for a caller nobody knows: the campaign's script, no customer facts."""
    return DialoguePolicy(
        campaign.script,
        merchant,
        CustomerFacts(),
        (),
        llm,
        tz=UTC,
        now=lambda: dt.datetime.now(dt.UTC),
    )


def opening_prompt(campaign: CampaignSettings, merchant: MerchantSettings) -> str:
    """The system prompt every call of ``campaign`` starts alike (to warm the model on)."""
    facts = CallFacts(campaign.script, merchant, CustomerFacts())
    actions = available([], link=False, transfer=campaign.script.transfer_to is not None)
    return system_prompt(facts, actions)


class StoreActions:
    """A call's effects with the real database, telephone and text sender.

    ``call`` (a call Cartline placed) or ``channel`` (one that came in) says
    which call to hang up or transfer; the caller is ``request.phone_e164``.
    """

    def __init__(
        self,
        request: CallRequest,
        db: Store,
        control: CallControl,
        texts: Texts,
        merchant: MerchantSettings,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.request = request
        self.db = db
        self.control = control
        self.texts = texts
        self.merchant = merchant
        self.now = now
        self.call: PlacedCall | None = None
        self.channel: str | None = None

    async def add_do_not_call(self, why: str) -> None:
        phone, now = self.request.phone_e164, self.now()
        await self.db.run(lambda s: repo.add_do_not_call(s, phone, "opt_out", f"call:{why}", now))

    async def send_checkout_link(self) -> bool:
        url = self.request.checkout_url
        if url is None:
            return False
        body = f"{self.merchant.name}: here is the link to your checkout: {url}"
        try:
            await self.texts.send(self.request.phone_e164, body, purpose="checkout_link")
        except NoConsent:
            log.info("checkout link not texted: no consent (attempt %d)", self.request.attempt_id)
            return False
        except Exception:
            log.exception("checkout link not texted (attempt %d)", self.request.attempt_id)
            return False
        return True

    async def schedule_callback(self, at: dt.datetime) -> None:
        # The call's job is due again at ``at`` once the attempt is finished
        # (finish_attempt reads the time from the call's note): one job per checkout.
        log.info("callback asked for attempt %d", self.request.attempt_id)

    async def transfer(self, target: str) -> None:
        if self.call is not None:
            await self.control.transfer(self.call, target)
        elif self.channel is not None:
            await self.control.transfer_channel(self.channel, target)

    async def hang_up(self) -> None:
        if self.call is not None:
            await self.control.hangup(self.call)
        elif self.channel is not None:
            await self.control.hangup_channel(self.channel)


def last_call_request(
    s: Session, phone_e164: str, fields_of: Callable[[str], tuple[str, ...]]
) -> CallRequest | None:
    """A request-like view of the caller's last call: its checkout, campaign and shared fields."""
    contact = s.exec(select(Contact).where(Contact.phone_e164 == phone_e164)).first()
    if contact is None or contact.id is None:
        return None
    attempt = s.exec(
        select(CallAttempt)
        .where(CallAttempt.contact_id == contact.id, col(CallAttempt.job_id).is_not(None))
        .order_by(col(CallAttempt.started_at).desc())
    ).first()
    job = s.get(CallJob, attempt.job_id) if attempt is not None else None
    if attempt is None or attempt.id is None or job is None:
        return None
    checkout = s.get(Checkout, job.checkout_id)
    if checkout is None or checkout.id is None:
        return None
    fields = fields_of(attempt.campaign)
    return CallRequest(
        attempt_id=attempt.id,
        job_id=job.id or 0,
        campaign=attempt.campaign,
        phone_e164=phone_e164,
        checkout_id=checkout.id,
        first_name=contact.first_name if "first_name" in fields else None,
        last_name=contact.last_name if "last_name" in fields else None,
        city=contact.city if "city" in fields else None,
        items=list(checkout.items) if "items" in fields else [],
        total=str(checkout.total) if "total" in fields else None,
        currency=checkout.currency,
        checkout_url=checkout.checkout_url if "checkout_url" in fields else None,
    )


class Expecting(Protocol):
    def expect(
        self, media_id: str, policy: DialoguePolicy, actions: StoreActions | None = None
    ) -> None: ...


class ReturningCallers:
    """Routes an inbound call; a customer we called before gets the last call's context.

    The caller is recognised by caller ID (E.164). Anyone else gets the default
    dialogue of ``fallback`` (the campaign inbound calls go to).
    """

    def __init__(
        self,
        db: Store,
        campaigns: dict[str, CampaignSettings],
        merchant: MerchantSettings,
        llm: Llm,
        conversations: Expecting,
        make_actions: Callable[[CallRequest], StoreActions],
        *,
        fallback: str | None,
        default_region: str,
    ) -> None:
        self.db = db
        self.campaigns = campaigns
        self.merchant = merchant
        self.llm = llm
        self.conversations = conversations
        self.make_actions = make_actions
        self.fallback = fallback
        self.default_region = default_region

    def _fields(self, campaign: str) -> tuple[str, ...]:
        c = self.campaigns.get(campaign)
        return tuple(c.customer_fields) if c is not None else ()

    async def route(self, call: InboundCall) -> InboundRoute:
        phone = normalize_phone(call.caller_id or None, self.default_region).e164
        request = None
        if phone is not None:
            request = await self.db.run(lambda s: last_call_request(s, phone, self._fields))
        campaign = self.campaigns.get(request.campaign) if request is not None else None
        if request is None or campaign is None:
            return InboundRoute(campaign=self.fallback, call_id=call.uniqueid)
        route = InboundRoute(campaign=campaign.name, call_id=call.uniqueid, known_customer=True)
        policy = policy_for(campaign, self.merchant, request, self.llm, returning=True)
        actions = self.make_actions(request)
        actions.channel = call.channel or None
        self.conversations.expect(str(route.media_uuid), policy, actions)
        return route


__all__ = [
    "CallControl",
    "ReturningCallers",
    "StoreActions",
    "default_policy",
    "facts_of",
    "last_call_request",
    "opening_prompt",
    "policy_for",
    "zone_of",
]
