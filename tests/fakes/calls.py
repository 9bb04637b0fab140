"""A fake of a call's performers, and a short dialogue policy for session tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from agent.campaigns.settings import MerchantSettings
from agent.conversation.facts import CustomerFacts
from agent.conversation.policy import DialoguePolicy
from agent.conversation.script import ScriptSettings, TemplateSettings
from agent.speech.protocols import Llm

NEW_YORK = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 11, 25, 19, 20, tzinfo=dt.UTC)  # Wednesday, 14:20 in New York
MERCHANT = MerchantSettings(name="Acme", phone="+1 212 555 0100")
CUSTOMER = CustomerFacts.from_checkout(
    currency="USD",
    first_name="Dana",
    items=[{"title": "Trail Tent", "quantity": 1, "unit_price": "120.00"}],
    total="120.00",
    checkout_url="https://acme.example/checkouts/c0ffee",
)
SCRIPT = ScriptSettings(
    templates=TemplateSettings(
        opt_out="Understood. Goodbye.",
        checkout_link="I've sent you the link.",
        callback="Sure, I'll call you {callback_time}. Bye!",
        reprompt="Still there?",
        goodbye="Bye now.",
        voicemail="Hi, this is Acme about your cart. Goodbye.",
    )
)


class ShortPolicy(DialoguePolicy):
    """The dialogue policy with a one-line greeting, so tests wait little."""

    def greeting(self) -> str:
        return "Hello there."


def short_policy(llm: Llm, script: ScriptSettings = SCRIPT) -> ShortPolicy:
    allowed = ("first_name", "items", "total", "checkout_url")
    return ShortPolicy(script, MERCHANT, CUSTOMER, allowed, llm, tz=NEW_YORK, now=lambda: NOW)


def answer(say: str) -> str:
    """The model's choice to answer with ``say``."""
    return json.dumps({"action": "answer_question", "say": say})


@dataclass
class FakeActions:
    """Records each effect with the monotonic time it was done; ``delay_s`` per effect."""

    delay_s: float = 0.0
    consent: bool = True
    done: list[tuple[str, object, float]] = field(default_factory=list)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    media: object = None

    async def _do(self, name: str, arg: object = None) -> None:
        await asyncio.sleep(self.delay_s)
        self.done.append((name, arg, time.monotonic()))

    async def add_do_not_call(self, why: str) -> None:
        await self._do("add_do_not_call", why)

    async def send_checkout_link(self) -> bool:
        await self._do("send_checkout_link", self.consent)
        return self.consent

    async def schedule_callback(self, at: dt.datetime) -> None:
        await self._do("schedule_callback", at)

    async def transfer(self, target: str) -> None:
        await self._do("transfer", target)

    async def hang_up(self) -> None:
        await self._do("hang_up")
        self.hung_up.set()
        if self.media is not None:
            await self.media.hangup()  # type: ignore[attr-defined]

    def names(self) -> list[str]:
        return [name for name, _, _ in self.done]

    def at(self, name: str) -> float:
        return next(t for n, _, t in self.done if n == name)
