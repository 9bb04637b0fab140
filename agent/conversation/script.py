"""A campaign's script: who speaks, what it may talk about and offer, and the lines it says exactly.

The model chooses what to do; the facts that matter (the disclosure, the link,
the code, the opt-out confirmation) are spoken from these templates, never
written by the model. Templates use ``{placeholders}`` from a fixed set,
checked when the configuration loads: an unknown placeholder, or one that
needs a customer field the campaign does not share with the conversation, is
a configuration error that names the template and the placeholder.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Iterator
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Placeholders filled from the customer's details, and the customer field each one needs.
CUSTOMER_PLACEHOLDERS: dict[str, str] = {
    "first_name": "first_name",
    "last_name": "last_name",
    "city": "city",
    "item_list": "items",
    "cart_total": "total",
    "checkout_url": "checkout_url",
}
# Placeholders every template may use (the merchant comes from the top-level `merchant:`).
COMMON_PLACEHOLDERS = frozenset(
    {
        "merchant",
        "merchant_phone",
        "merchant_email",
        "merchant_website",
        "agent_name",
        "currency",
        "opt_out_key",
        "shipping_text",
        "returns_text",
    }
)
# Placeholders that only mean something in one template.
CONTEXT_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "offer": frozenset({"discount_code", "discount_text", "offer_expiry"}),
    "callback": frozenset({"callback_time"}),
}
PLACEHOLDERS = (
    COMMON_PLACEHOLDERS
    | set(CUSTOMER_PLACEHOLDERS)
    | frozenset().union(*CONTEXT_PLACEHOLDERS.values())
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DisclosureSettings(_Section):
    """What the agent says first: who calls, that it is automated, that the call may be recorded.

    ``regions`` maps a region code (``US``, or ``US-CA`` for one state) to its own text;
    the most specific match wins, then ``default``.
    """

    default: str = Field(
        "Hi, this is {agent_name}, an automated assistant calling for {merchant}. "
        "This call may be recorded.",
        min_length=1,
        max_length=400,
    )
    regions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _codes(self) -> DisclosureSettings:
        for code in self.regions:
            if not code or not all(part.isalnum() for part in code.split("-")):
                raise ValueError(f"disclosure.regions: {code!r} is not a region code like US-CA")
        return self

    def for_region(self, region: str | None) -> str:
        """The text for ``region`` (``US-CA`` falls back to ``US``, then to the default)."""
        code = (region or "").upper()
        while code:
            if code in self.regions:
                return self.regions[code]
            code = code.rpartition("-")[0]
        return self.default


class TopicSettings(_Section):
    """What the agent may talk about besides the script's own lines."""

    cart_items: bool = True
    totals: bool = True
    # The merchant's own words: said as written to a plain question about the topic, and
    # given to the model for the rest; None: the agent does not discuss it.
    shipping: str | None = Field(None, max_length=300)
    # The same, for returns and refunds.
    returns: str | None = Field(None, max_length=300)


class OfferSettings(_Section):
    """A discount the agent may offer; the model only ever picks one of these by name."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,30}$")
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,23}$")
    percent: Decimal | None = Field(None, gt=0, le=100)
    amount: Decimal | None = Field(None, gt=0)
    # The cart total (in its own currency) the offer needs.
    min_total: Decimal = Field(Decimal(0), ge=0)
    # Spoken after the offer, e.g. "It is valid for 48 hours."
    expiry_text: str | None = Field(None, max_length=120)

    @model_validator(mode="after")
    def _one_kind(self) -> OfferSettings:
        if (self.percent is None) == (self.amount is None):
            raise ValueError(f"offer {self.name}: give exactly one of percent and amount")
        return self

    def applies_to(self, total: Decimal | None) -> bool:
        """Whether a cart of ``total`` qualifies (an unknown total: only with no minimum)."""
        if total is None:
            return self.min_total == 0
        return total >= self.min_total

    def discount_text(self, currency_word: str) -> str:
        if self.percent is not None:
            return f"{_plain(self.percent)} percent off"
        assert self.amount is not None
        return f"{_plain(self.amount)} {currency_word} off"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


class TemplateSettings(_Section):
    """Lines spoken exactly as written, once their placeholders are filled."""

    checkout_link: str = "I've just sent the link to your checkout by text message."
    # Said when the caller asks who calls or why and the model's choice does not fit
    # (the link, a wrong number).
    about_call: str = (
        "I'm {agent_name}, an automated assistant calling for {merchant} "
        "about the items left in your online cart."
    )
    # Said instead of texting the link a second time in one call.
    link_already_sent: str = (
        "I've already sent the link to your checkout by text message; "
        "you'll find all the details there."
    )
    offer: str = "I can offer you {discount_text} with the code {discount_code}. {offer_expiry}"
    opt_out: str = (
        "Understood. I've removed your number and {merchant} won't call you again. Goodbye."
    )
    goodbye: str = "Thank you for your time. Goodbye!"
    # None: no message is left on voicemail.
    voicemail: str | None = (
        "Hi, this is {agent_name}, an automated assistant for {merchant}, about items left "
        "in your cart. You can reach us at {merchant_phone}. Goodbye."
    )
    callback: str = "Sure, I'll call you back {callback_time}. Goodbye!"
    callback_ask: str = "When would be a good time to call you back?"
    transfer: str = "Please hold on, I'm connecting you to someone at {merchant}."
    already_purchased: str = "Oh, thank you for your order! Have a great day. Goodbye."
    wrong_person: str = "I'm sorry for the trouble, I must have the wrong number. Goodbye."
    not_interested: str = "No problem at all. Thank you for your time. Goodbye."
    # Said instead of a free answer that failed the checks, or with no link to send.
    fallback: str = "Let me send you the link so you can see the details."
    fallback_no_link: str = "I'm sorry, I can't help with that on this call."
    reprompt: str = "Are you still there?"
    # Instead of the greeting when a customer calls back after one of our calls.
    returning_caller: str = "Thanks for calling us back about your cart. How can I help?"

    def items(self) -> Iterator[tuple[str, str]]:
        """(name, text) of each template that is set."""
        for name in type(self).model_fields:
            text = getattr(self, name)
            if text is not None:
                yield name, text


class ScriptSettings(_Section):
    """One campaign's conversation: persona, disclosure, topics, offers, lines and limits."""

    agent_name: str = Field("Ava", min_length=1, max_length=40)
    # A Piper voice for this campaign (.onnx); None: the one in speech.tts.
    voice: str | None = None
    greeting: str = Field(
        "I'm calling about the items you left in your cart. Do you have a minute?",
        min_length=1,
        max_length=400,
    )
    disclosure: DisclosureSettings = DisclosureSettings()
    topics: TopicSettings = TopicSettings()
    offers: tuple[OfferSettings, ...] = ()
    templates: TemplateSettings = TemplateSettings()
    # Said while the model is still deciding an answer (speech.turn.acknowledge_after_ms),
    # in turn. Empty: never. No placeholders: each is synthesised once per process.
    acknowledgements: tuple[Annotated[str, Field(min_length=1, max_length=40)], ...] = (
        "Okay.",
        "Alright.",
    )
    max_call_s: float = Field(300, gt=0, le=3600)
    max_turns: int = Field(12, ge=1, le=100)
    opt_out_key: str = Field("9", pattern=r"^[0-9*#]$")
    voicemail: Literal["message", "hang_up"] = "message"
    # An extension or phone number a person answers; None: no transfers.
    transfer_to: str | None = Field(None, pattern=r"^\+?[0-9A-Za-z*#_-]{1,40}$")

    @model_validator(mode="after")
    def _check(self) -> ScriptSettings:
        names = [o.name for o in self.offers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"offers: names must be unique; repeated: {', '.join(repeated)}")
        if self.voicemail == "message" and self.templates.voicemail is None:
            raise ValueError('voicemail is "message" but templates.voicemail is not set')
        for i, text in enumerate(self.acknowledgements):
            if placeholders(f"acknowledgements[{i}]", text):
                raise ValueError(f"acknowledgements[{i}]: takes no placeholders")
        for where, text in self.texts():
            for name in placeholders(where, text):
                context = next((t for t, p in CONTEXT_PLACEHOLDERS.items() if name in p), None)
                if name not in PLACEHOLDERS:
                    known = ", ".join(sorted(PLACEHOLDERS))
                    raise ValueError(f"{where}: unknown placeholder {{{name}}}; known: {known}")
                if context is not None and where != f"templates.{context}":
                    raise ValueError(
                        f"{where}: {{{name}}} is only available in templates.{context}"
                    )
        return self

    def texts(self) -> Iterator[tuple[str, str]]:
        """(YAML path, text) of every template of the script, the disclosure and greeting too."""
        yield "greeting", self.greeting
        yield "disclosure.default", self.disclosure.default
        for code, text in self.disclosure.regions.items():
            yield f"disclosure.regions.{code}", text
        for name, text in self.templates.items():
            yield f"templates.{name}", text

    def offer(self, name: str) -> OfferSettings | None:
        return next((o for o in self.offers if o.name == name), None)


def placeholders(where: str, text: str) -> list[str]:
    """The placeholder names ``text`` uses; a malformed template is an error naming ``where``."""
    names = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"{where}: {{{name}}} is not a placeholder name")
        if spec or conversion:
            raise ValueError(f"{where}: {{{name}}} takes no format (write just {{{name}}})")
        names.append(name)
    return names


def check_script(script: ScriptSettings, customer_fields: Collection[str]) -> None:
    """Raises ValueError when a template needs a customer field the campaign does not share."""
    allowed = set(customer_fields)
    for where, text in script.texts():
        for name in placeholders(where, text):
            needs = CUSTOMER_PLACEHOLDERS.get(name)
            if needs is not None and needs not in allowed:
                raise ValueError(
                    f"script.{where}: {{{name}}} needs the customer field {needs!r}, "
                    "which this campaign's customer_fields does not include"
                )


__all__ = [
    "CUSTOMER_PLACEHOLDERS",
    "PLACEHOLDERS",
    "DisclosureSettings",
    "OfferSettings",
    "ScriptSettings",
    "TemplateSettings",
    "TopicSettings",
    "check_script",
    "placeholders",
]
