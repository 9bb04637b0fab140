"""What a call's outcome does to its job, the real performers' database writes, return calls."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlmodel import Session, select

from agent.campaigns.attempts import finish_attempt
from agent.campaigns.calling import ReturningCallers, StoreActions, last_call_request
from agent.campaigns.jobs import claim_due
from agent.campaigns.placement import CallRequest, CallResult
from agent.campaigns.sms import NoConsent
from agent.conversation.policy import DialoguePolicy
from agent.privacy.crypto import DataKeys
from agent.store.repository import on_do_not_call
from agent.store.tables import AttemptStatus, CallJob, JobState, Outcome
from agent.store.views import get_call
from agent.telephony.agi import InboundCall
from tests.campaigns.helpers import Clock, Store, checkout, open_store, settings_with
from tests.fakes.speech import FakeLlm

T = TypeVar("T")
PHONE = "+12125550123"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with open_store(database_url, settings_with(max_attempts=3), Clock()) as st:
        yield st


def _campaigns(store: Store) -> dict[str, Any]:
    return {c.name: c for c in store.settings.campaigns}


def _called(store: Store) -> CallRequest:
    store.db.call(lambda s: store.intake.ingest(s, checkout()))
    store.clock.advance(minutes=30)
    now = store.clock()
    ready, _ = store.db.call(
        lambda s: claim_due(s, now, limit=5, server_id="srv-1", campaigns=_campaigns(store))
    )
    [request] = ready
    return request


def _finish(store: Store, request: CallRequest, result: CallResult) -> None:
    now = store.clock()
    store.db.call(lambda s: finish_attempt(s, request.attempt_id, result, now, _campaigns(store)))


def _job(store: Store) -> CallJob:
    return store.db.call(lambda s: s.exec(select(CallJob)).one())


def test_a_callback_leaves_the_job_pending_until_the_asked_time(store: Store) -> None:
    request = _called(store)
    at = store.clock() + dt.timedelta(hours=24)  # 11:30 in New York
    note = {"next_step": "call back", "callback_at": at.isoformat()}
    _finish(store, request, CallResult(AttemptStatus.ANSWERED, outcome="callback", note=note))
    job = _job(store)
    assert job.state == JobState.PENDING
    assert job.due_at == at
    stored = store.db.call(lambda s: s.exec(select(Outcome)).one())
    assert stored.code == "callback" and stored.note["callback_at"] == at.isoformat()
    # Not before the time; at the time the same checkout is called again.
    store.clock.advance(hours=23)
    now = store.clock()
    camps = _campaigns(store)
    again = store.db.call(lambda s: claim_due(s, now, limit=5, server_id="s", campaigns=camps))
    assert again[0] == []
    store.clock.advance(hours=1, minutes=1)
    now = store.clock()
    again = store.db.call(lambda s: claim_due(s, now, limit=5, server_id="s", campaigns=camps))
    assert [r.checkout_id for r in again[0]] == [request.checkout_id]


@pytest.mark.parametrize("code", ["purchased", "wrong_person", "not_interested", "opted_out"])
def test_final_outcomes_close_the_job_for_good(store: Store, code: str) -> None:
    request = _called(store)
    _finish(store, request, CallResult(AttemptStatus.ANSWERED, outcome=code, note={"x": 1}))
    job = _job(store)
    assert (job.state, job.result) == (JobState.DONE, code)
    assert store.db.call(lambda s: s.exec(select(Outcome)).one()).note == {"x": 1}


class _Db:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self.store.db.call, fn)


class _Texts:
    def __init__(self, consent: bool) -> None:
        self.consent = consent
        self.sent: list[tuple[str, str]] = []

    async def send(self, phone_e164: str, body: str, *, purpose: str) -> None:
        if not self.consent:
            raise NoConsent("no")
        self.sent.append((phone_e164, body))


class _Control:
    def __init__(self) -> None:
        self.done: list[str] = []

    async def hangup(self, call: object) -> None:
        self.done.append("hangup")

    async def transfer(self, call: object, number: str) -> None:
        self.done.append(f"transfer {number}")

    async def hangup_channel(self, channel: str) -> None:
        self.done.append(f"hangup {channel}")

    async def transfer_channel(self, channel: str, number: str) -> None:
        self.done.append(f"transfer {channel} {number}")


async def test_the_real_performers_write_and_text(store: Store) -> None:
    request = _called(store)
    texts = _Texts(consent=True)
    actions = StoreActions(
        request, _Db(store), _Control(), texts, store.settings.merchant, now=store.clock
    )
    assert await actions.send_checkout_link()
    assert texts.sent == [
        (
            PHONE,
            f"{store.settings.merchant.name}: here is the link to your "
            "checkout: https://shop.example/checkouts/c1",
        )
    ]
    await actions.add_do_not_call("phrase")
    assert store.db.call(lambda s: on_do_not_call(s, PHONE))
    texts.consent = False
    assert not await actions.send_checkout_link()


async def test_a_returning_caller_gets_the_last_calls_context(store: Store) -> None:
    request = _called(store)
    _finish(store, request, CallResult(AttemptStatus.ANSWERED, outcome="completed"))
    campaigns = _campaigns(store)
    found = store.db.call(
        lambda s: last_call_request(s, PHONE, lambda c: tuple(campaigns[c].customer_fields))
    )
    assert found is not None and found.checkout_id == request.checkout_id
    assert found.first_name == "Dana" and found.checkout_url == request.checkout_url

    expected: dict[str, DialoguePolicy] = {}

    class _Conversations:
        def expect(self, media_id: str, policy: DialoguePolicy, actions: object = None) -> None:
            expected[media_id] = policy

    def make(req: CallRequest) -> StoreActions:
        return StoreActions(req, _Db(store), _Control(), _Texts(True), store.settings.merchant)

    router = ReturningCallers(
        _Db(store),
        campaigns,
        store.settings.merchant,
        FakeLlm(),
        _Conversations(),
        make,
        fallback=None,
        default_region="US",
    )
    known = await router.route(InboundCall("2125550123", "", "100", "PJSIP/t-1", "u1"))
    assert known.known_customer and known.campaign == "checkout-recovery"
    policy = expected[str(known.media_uuid)]
    assert "calling us back" in policy.greeting()
    assert policy.facts.customer.first_name == "Dana"
    stranger = await router.route(InboundCall("2125550999", "", "100", "PJSIP/t-2", "u2"))
    assert not stranger.known_customer and str(stranger.media_uuid) not in expected


@pytest.mark.parametrize(("sealed", "kept"), [(False, True), (True, False)])
def test_the_customers_words_in_the_note_are_kept_only_as_the_transcript_is(
    store: Store, sealed: bool, kept: bool
) -> None:
    keys = DataKeys({"k1": bytes(32)}, "k1") if sealed else None
    request = _called(store)
    note = {"customer_said": "my card was declined", "intent": "objection", "next_step": "x"}
    turns = [{"speaker": "customer", "text": "my card was declined"}]
    result = CallResult(AttemptStatus.ANSWERED, outcome="not_interested", note=note, turns=turns)
    now = store.clock()
    store.db.call(
        lambda s: finish_attempt(s, request.attempt_id, result, now, _campaigns(store), keys=keys)
    )
    stored = store.db.call(lambda s: s.exec(select(Outcome)).one())
    assert ("customer_said" in stored.note) is kept
    assert stored.note["intent"] == "objection"
    # Where the words were left out, the call's view takes them from the opened transcript.
    detail = store.db.call(lambda s: get_call(s, request.attempt_id, keys))
    assert detail is not None and detail.note["customer_said"] == "my card was declined"


def test_no_transcript_kept_means_no_words_in_the_note(store: Store) -> None:
    request = _called(store)
    note = {"customer_said": "my card was declined", "intent": "objection"}
    _finish(store, request, CallResult(AttemptStatus.ANSWERED, outcome="callback", note=note))
    stored = store.db.call(lambda s: s.exec(select(Outcome)).one())
    assert "customer_said" not in stored.note
