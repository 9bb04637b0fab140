"""The recovery agent's dialogue policy: from what the caller said to what happens next.

Each caller turn becomes one :class:`TurnPlan`. The rules come first and need
no model: an opt-out phrase or key, a voicemail greeting, the call's limits.
Otherwise the model picks one action under the call's JSON schema. The plan
then says what to do, in order: effects such as the do-not-call entry come
before the words that confirm them, so a caller who hangs up mid-sentence is
still opted out. What is said comes from the script's templates, or from the
model's short answer once it passed :func:`check_answer`.

A choice that ends the call or texts someone must be borne out by the caller's
words (:mod:`agent.conversation.identity`): "wrong person" needs a caller who
said so, and "who is this?" gets the script's answer rather than the link. The
link goes only to the shopper, and at most once a call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Literal
from zoneinfo import ZoneInfo

from agent.campaigns.settings import MerchantSettings
from agent.conversation import identity, topics
from agent.conversation.actions import (
    Action,
    AlreadyPurchased,
    AnswerQuestion,
    EndCall,
    NotInterested,
    OfferDiscount,
    OptOut,
    Reason,
    ScheduleCallback,
    SendCheckoutLink,
    TransferToPerson,
    WrongPerson,
    action_name,
    action_schema,
    available,
    parse_action,
)
from agent.conversation.callback_time import parse_callback_time
from agent.conversation.checks import Problem, check_answer
from agent.conversation.facts import CallFacts, CustomerFacts
from agent.conversation.plans import (
    AddToDoNotCall,
    CallNote,
    Effect,
    HangUp,
    Outcome,
    ScheduleCall,
    SendCheckoutSms,
    Speak,
    Transfer,
    TurnPlan,
)
from agent.conversation.prompts import system_prompt
from agent.conversation.rules import (
    disclosure_first,
    is_opt_out,
    is_opt_out_key,
    sounds_like_voicemail_greeting,
)
from agent.conversation.script import ScriptSettings
from agent.speech.protocols import ChatMessage, Llm
from agent.speech.worker import StopFlag

NOTE_CHARS = 200


class DialoguePolicy:
    """One call's dialogue: the script, the facts the call may share, and the model."""

    def __init__(
        self,
        script: ScriptSettings,
        merchant: MerchantSettings,
        customer: CustomerFacts,
        allowed: Collection[str],
        llm: Llm,
        *,
        tz: ZoneInfo,
        now: Callable[[], dt.datetime],
        region: str | None = None,
        returning: bool = False,
    ) -> None:
        self.script = script
        # A customer calling back after one of our calls: the greeting says so.
        self.returning = returning
        # Forget what the campaign does not share before anything can read it.
        self.facts = CallFacts(script, merchant, customer.only(allowed))
        self._llm = llm
        self._tz = tz
        self._now = now
        self._region = region
        offers = [o.name for o in self.facts.eligible_offers()]
        link = self.facts.customer.checkout_url is not None
        transfer = script.transfer_to is not None
        self.actions = available(offers, link=link, transfer=transfer)
        self.schema = action_schema(offers, link=link, transfer=transfer)
        # For a second look when the model calls the caller a wrong person and nothing
        # they said bears it out.
        self._schema_shopper = action_schema(
            offers, link=link, transfer=transfer, without=(WrongPerson,)
        )
        self._system = system_prompt(self.facts, self.actions)
        # One text a call: the model picks the link for much it cannot answer.
        self._link_sent = False

    # What the call session asks of any policy.

    def system_prompt(self) -> str:
        return self._system

    def greeting(self) -> str:
        if self.returning:
            disclosure = self.facts.fill(self.script.disclosure.for_region(self._region))
            return f"{disclosure} {self.facts.fill(self.script.templates.returning_caller)}"
        return disclosure_first(self.script, self._region, self.facts)

    def acknowledgements(self) -> Sequence[str]:
        return self.script.acknowledgements

    def reprompt(self) -> str:
        return self.facts.fill(self.script.templates.reprompt)

    def goodbye(self) -> str:
        return self.facts.fill(self.script.templates.goodbye)

    def link_not_sent(self) -> str:
        """Said instead of "I've sent you the link" when the text could not be sent."""
        return self.facts.fill(self.script.templates.fallback_no_link)

    @property
    def link_sent(self) -> bool:
        """Whether this call has texted the checkout link."""
        return self._link_sent

    def note_link_sent(self) -> None:
        """Told once the link went out, so later turns say so instead of texting it again.

        Told after the text is sent, not when a plan is made: a speculative plan
        may be dropped, and a text that failed (no consent) went nowhere.
        """
        self._link_sent = True

    # Turns.

    async def warm_up(self, stop: StopFlag, history: Sequence[ChatMessage] = ()) -> None:
        """Has the model read the call so far, while the agent's last words play.

        ``history``: the call's messages up to the agent's last words; none means
        the greeting. llama.cpp keeps the longest common start of the last
        prompt, so the next decision then evaluates only the caller's words
        (BENCHMARKS.md).
        """
        said = list(history) or [ChatMessage("assistant", self.greeting())]
        opening = [ChatMessage("system", self._system), *said]
        reading = self._llm.stream_reply(opening, stop, background=True)
        async with contextlib.aclosing(reading) as tokens:
            async for _ in tokens:
                break

    def on_voicemail(self) -> TurnPlan:
        """An answering machine picked up: leave the message, or just hang up."""
        template = self.script.templates.voicemail
        speak: tuple[Effect, ...] = ()
        if self.script.voicemail == "message" and template is not None:
            speak = (Speak(self.facts.fill(template)),)
        note = CallNote("", "voicemail", next_step="retry later")
        return TurnPlan("voicemail", "rule", (*speak, HangUp("voicemail")), note, "voicemail")

    def on_key(self, digit: str) -> TurnPlan | None:
        """The plan for a key the caller pressed, if that key means anything."""
        if is_opt_out_key(digit, self.script):
            return self._opt_out("", "key", "rule")
        return None

    async def decide(
        self,
        history: Sequence[ChatMessage],
        said: str,
        stop: StopFlag,
        *,
        elapsed_s: float = 0.0,
    ) -> TurnPlan:
        """The plan for the caller's latest words ``said``, after ``history``."""
        if is_opt_out(said):
            return self._opt_out(said, "phrase", "rule")
        first_words = not any(m.role == "user" for m in history)
        if first_words and sounds_like_voicemail_greeting(said):
            return self.on_voicemail()
        turns = sum(m.role == "user" for m in history) + 1
        if turns > self.script.max_turns or elapsed_s >= self.script.max_call_s:
            return self._ending(said, "limit", self.script.templates.goodbye, "completed", "rule")
        line = topics.answer(topics.asked_topics(said), self.script.topics)
        if line is not None:
            # The merchant's own words, at once: the model is neither needed nor reliable here.
            note = self._note(said, "answer_question")
            return TurnPlan("answer_question", "rule", (Speak(line),), note)
        messages = [
            ChatMessage("system", self._system),
            *history,
            ChatMessage("user", said),
        ]
        action = parse_action(await self._llm.choose(messages, self.schema, stop))
        other = self.not_the_shopper(history, said)
        if self._unfounded(action, said, other):
            # The caller asked who calls or why: the script's own answer, not a guess.
            if identity.asks_who_or_why(said):
                return self._about_call(said)
            action = parse_action(await self._llm.choose(messages, self._schema_shopper, stop))
        if action is None or type(action) not in self.actions:
            return self._fallback(said, "invalid", (), not_shopper=other)
        return self.plan(action, said, not_shopper=other)

    @staticmethod
    def _unfounded(action: Action | None, said: str, not_shopper: bool) -> bool:
        # What the small model got wrong (scripts/eval-dialogue): a rude "why are you
        # calling me?" taken for a wrong number; "what cart?" or "what's this about?"
        # met with the link. Each ends the call or texts someone: the words must bear it out.
        if isinstance(action, WrongPerson):
            return not not_shopper
        return (
            isinstance(action, SendCheckoutLink)
            and identity.asks_who_or_why(said)
            and not identity.wants_link(said)
        )

    def not_the_shopper(self, history: Sequence[ChatMessage], said: str) -> bool:
        """Whether the person on the line said they are not the shopper (the latest word counts).

        Read from what was said, not kept: a dropped speculative turn leaves nothing behind.
        """
        first_name = self.facts.customer.first_name
        lines = [m.content for m in history if m.role == "user"] + [said]
        for line in reversed(lines):
            if identity.someone_else(line, first_name):
                return True
            if identity.the_shopper(line, first_name):
                return False
        return False

    def plan(self, action: Action, said: str, *, not_shopper: bool = False) -> TurnPlan:
        """The plan for the model's ``action`` (pure: nothing is done yet).

        ``not_shopper``: the caller said they are not the shopper, so the link is not
        theirs to get; asking for it ends the call as a wrong person.
        """
        t = self.script.templates
        name = action_name(type(action))
        if isinstance(action, SendCheckoutLink) and not_shopper:
            return self._ending(said, "wrong_person", t.wrong_person, "wrong_person", "rule")
        if isinstance(action, AnswerQuestion):
            problems = tuple(check_answer(action.say, self.facts))
            if problems or not action.say.strip():
                return self._fallback(said, name, problems, not_shopper=not_shopper)
            return TurnPlan(name, "model", (Speak(action.say.strip()),), self._note(said, name))
        if isinstance(action, SendCheckoutLink):
            if self._link_sent:
                effects: tuple[Effect, ...] = (Speak(self.facts.fill(t.link_already_sent)),)
                return TurnPlan(name, "model", effects, self._note(said, name))
            return TurnPlan(
                name,
                "model",
                (SendCheckoutSms(), Speak(self.facts.fill(t.checkout_link))),
                self._note(said, name, next_step="link sent"),
            )
        if isinstance(action, OfferDiscount):
            return self._offer(action, said)
        if isinstance(action, ScheduleCallback):
            return self._callback(action, said)
        if isinstance(action, TransferToPerson):
            assert self.script.transfer_to is not None  # not in the schema otherwise
            effects = (Speak(self.facts.fill(t.transfer)), Transfer(self.script.transfer_to))
            note = self._note(said, name, next_step="transferred")
            return TurnPlan(name, "model", effects, note, "transferred")
        if isinstance(action, AlreadyPurchased):
            return self._ending(said, name, t.already_purchased, "purchased", "model")
        if isinstance(action, WrongPerson):
            return self._ending(said, name, t.wrong_person, "wrong_person", "model")
        if isinstance(action, NotInterested):
            plan = self._ending(said, name, t.not_interested, "not_interested", "model")
            note = self._note(said, name, objection=action.reason, next_step="none")
            return TurnPlan(name, "model", plan.effects, note, plan.outcome)
        if isinstance(action, OptOut):
            return self._opt_out(said, "model", "model")
        assert isinstance(action, EndCall)
        return self._ending(said, name, t.goodbye, "completed", "model")

    def _opt_out(
        self, said: str, why: Literal["phrase", "key", "model"], source: Literal["rule", "model"]
    ) -> TurnPlan:
        # The entry is written before the confirmation is spoken: it must not wait on audio.
        effects = (
            AddToDoNotCall(why),
            Speak(self.facts.fill(self.script.templates.opt_out)),
            HangUp("opted_out"),
        )
        note = self._note(said, "opt_out", next_step="do not call")
        return TurnPlan("opt_out", source, effects, note, "opted_out")

    def _ending(
        self,
        said: str,
        name: str,
        template: str,
        outcome: Outcome,
        source: Literal["rule", "model"],
    ) -> TurnPlan:
        effects = (Speak(self.facts.fill(template)), HangUp(outcome))
        return TurnPlan(name, source, effects, self._note(said, name, next_step="none"), outcome)

    def _about_call(self, said: str) -> TurnPlan:
        text = self.facts.fill(self.script.templates.about_call)
        return TurnPlan("answer_question", "rule", (Speak(text),), self._note(said, "about_call"))

    def _offer(self, action: OfferDiscount, said: str) -> TurnPlan:
        offer = next((o for o in self.facts.eligible_offers() if o.name == action.offer), None)
        if offer is None:
            return self._fallback(said, "offer_discount", ())
        values = self.facts.offer_values(offer)
        text = self.facts.fill(self.script.templates.offer, **values)
        note = self._note(
            said, "offer_discount", objection="price", next_step=f"offer {offer.name}"
        )
        return TurnPlan("offer_discount", "model", (Speak(text),), note)

    def _callback(self, action: ScheduleCallback, said: str) -> TurnPlan:
        now = self._now()
        # The caller's own words first: the model's copy of them may be cut short.
        at = parse_callback_time(said, now, self._tz) or parse_callback_time(
            action.when, now, self._tz
        )
        t = self.script.templates
        if at is None:
            note = self._note(said, "schedule_callback", next_step="ask when")
            return TurnPlan(
                "schedule_callback", "model", (Speak(self.facts.fill(t.callback_ask)),), note
            )
        spoken = spoken_time(at, now.astimezone(self._tz))
        effects = (
            ScheduleCall(at),
            Speak(self.facts.fill(t.callback, callback_time=spoken)),
            HangUp("callback"),
        )
        note = self._note(said, "schedule_callback", next_step=f"call back {at.isoformat()}")
        return TurnPlan("schedule_callback", "model", effects, note, "callback")

    def _fallback(
        self, said: str, name: str, problems: tuple[Problem, ...], *, not_shopper: bool = False
    ) -> TurnPlan:
        t = self.script.templates
        effects: tuple[Effect, ...]
        if self._link_sent:
            effects = (Speak(self.facts.fill(t.link_already_sent)),)
        elif self.facts.customer.checkout_url is not None and not not_shopper:
            effects = (SendCheckoutSms(), Speak(self.facts.fill(t.fallback)))
        else:
            effects = (Speak(self.facts.fill(t.fallback_no_link)),)
        return TurnPlan(name, "model", effects, self._note(said, name), problems=problems)

    @staticmethod
    def _note(
        said: str, intent: str, *, objection: Reason | None = None, next_step: str = "continue"
    ) -> CallNote:
        return CallNote(said.strip()[:NOTE_CHARS], intent, objection, next_step)


def spoken_time(at: dt.datetime, now: dt.datetime) -> str:
    """ "today at 3 PM", "tomorrow at 10:30 AM", "on Friday at 10 AM"."""
    clock = at.strftime("%I:%M %p").lstrip("0").replace(":00 ", " ")
    days = (at.date() - now.date()).days
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    if days < 7:
        return f"on {at.strftime('%A')} at {clock}"
    return f"on {at.strftime('%A, %B')} {at.day} at {clock}"


__all__ = [
    "AddToDoNotCall",
    "CallNote",
    "DialoguePolicy",
    "Effect",
    "HangUp",
    "Outcome",
    "ScheduleCall",
    "SendCheckoutSms",
    "Speak",
    "Transfer",
    "TurnPlan",
    "spoken_time",
]
