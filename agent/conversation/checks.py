"""Checks of the model's free answers before they are spoken.

A small model invents: a price, a code, "free shipping", a link, the colours a
product comes in. An answer is spoken only if every amount in it is one the
cart justifies, it names no percentage or code the script does not offer,
promises nothing, describes no product beyond what the cart says, carries no
link (links go by text message) and is short. Otherwise the agent says a
safe line from the script instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from agent.conversation.facts import CallFacts

MAX_SENTENCES = 2
MAX_WORDS = 35

ProblemKind = Literal["amount", "percent", "code", "promise", "detail", "link", "length"]


@dataclass(frozen=True)
class Problem:
    """Why an answer may not be spoken; ``detail`` quotes the offending words."""

    kind: ProblemKind
    detail: str


_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_MONEY = re.compile(
    rf"(?:[$€£]\s?(?P<a>{_NUMBER}))|(?:(?P<b>{_NUMBER})\s?(?:dollars?|bucks|euros?|pounds?|"
    rf"usd|eur|gbp|cad|aud)\b)|(?P<c>\d+\.\d{{2}})\b",
    re.IGNORECASE,
)
_PERCENT = re.compile(rf"(?P<n>{_NUMBER})\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)
_PERCENT_WORDS = re.compile(
    r"\b(five|ten|fifteen|twenty|twenty five|thirty|forty|fifty)\s(?:percent|per cent)\b",
    re.IGNORECASE,
)
_WORD_VALUES = {
    "five": 5,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "twenty five": 25,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
}
# Words shaped like a discount code: capitals with a digit (SAVE10), or whatever follows "code".
_CODE = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9-]{4,}\b")
_AFTER_CODE = re.compile(r"\b(?:code|coupon|promo)\s+(?:is\s+)?[\"']?([A-Za-z0-9-]{3,})", re.I)
_PROMISES = re.compile(
    r"\b(?:guarantee[sd]?|guaranteeing|i promise|we promise|promised|risk[- ]free|no risk|"
    r"lifetime|free gift|free of charge|money[- ]back|100 ?%|always in stock)\b",
    re.IGNORECASE,
)
_FREE_SHIPPING = re.compile(
    r"\bfree (?:shipping|delivery|postage)\b"
    # "Yes, shipping is free for this order": the small model's answer to "is shipping free?"
    r"|\b(?:shipping|delivery|postage)(?:'s|\s+(?:is|are|will be|would be|comes))?\s+"
    r"(?:also\s+|always\s+|completely\s+|totally\s+)?(?:free|at no (?:extra )?cost)\b"
    r"|\bships?\s+(?:for\s+)?free\b",
    re.IGNORECASE,
)
# What a product is like: nothing the call knows, unless the cart's item names say it.
_COLOURS = re.compile(
    r"\b(?:black|white|red|blue|green|yellow|pink|purple|orange|brown|gr[ae]y|navy|beige|"
    r"silver|gold|tan|teal|maroon|khaki|olive)\b",
    re.IGNORECASE,
)
_RANGE = re.compile(
    r"\b(?:comes?|came|available|offered|made|sold)\s+in\s+(?:\w+\s+){0,3}"
    r"(?:sizes?|colou?rs?|styles?|materials?|widths?|shades?|versions?)\b|\bin stock\b",
    re.IGNORECASE,
)
_LINK = re.compile(
    r"https?://|\bwww\.|\b[a-z0-9-]+\.(?:com|net|org|shop|store|io|co|us|uk|biz|info)\b|"
    r"\bdot com\b|\bslash\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def check_answer(text: str, facts: CallFacts) -> list[Problem]:
    """What is wrong with speaking ``text`` on this call (empty: it may be spoken)."""
    problems: list[Problem] = []
    amounts = facts.customer.amounts() | _offer_amounts(facts) - {None}
    for match in _MONEY.finditer(text):
        raw = match["a"] or match["b"] or match["c"]
        if _decimal(raw) not in amounts:
            problems.append(Problem("amount", match[0]))
    percents = {o.percent for o in facts.script.offers if o.percent is not None}
    said_percents = [(m[0], _decimal(m["n"])) for m in _PERCENT.finditer(text)]
    said_percents += [
        (m[0], Decimal(_WORD_VALUES[m[1].lower()])) for m in _PERCENT_WORDS.finditer(text)
    ]
    problems += [
        Problem("percent", words) for words, value in said_percents if value not in percents
    ]
    codes = {m[0] for m in _CODE.finditer(text)} | {m[1] for m in _AFTER_CODE.finditer(text)}
    # Even a real code is only given by the offer line, which checks the offer's conditions.
    problems += [Problem("code", code) for code in sorted(codes)]
    problems += [Problem("promise", m[0]) for m in _PROMISES.finditer(text)]
    shipping = facts.script.topics.shipping or ""
    if not _FREE_SHIPPING.search(shipping):
        problems += [Problem("promise", m[0]) for m in _FREE_SHIPPING.finditer(text)]
    known = " ".join(item.title for item in facts.customer.items).lower()
    problems += [
        Problem("detail", m[0]) for m in _COLOURS.finditer(text) if m[0].lower() not in known
    ]
    problems += [Problem("detail", m[0]) for m in _RANGE.finditer(text)]
    problems += [Problem("link", m[0]) for m in _LINK.finditer(text)]
    sentences = len(_SENTENCE_END.findall(text.strip() + " ")) or 1
    words = len(text.split())
    if sentences > MAX_SENTENCES or words > MAX_WORDS:
        problems.append(Problem("length", f"{sentences} sentences, {words} words"))
    return problems


def _offer_amounts(facts: CallFacts) -> set[Decimal | None]:
    found: set[Decimal | None] = set()
    for text in (facts.script.topics.shipping, facts.script.topics.returns):
        found |= {_decimal(m["a"] or m["b"] or m["c"]) for m in _MONEY.finditer(text or "")}
    for offer in facts.script.offers:
        found.add(offer.min_total)
        if offer.amount is not None:
            found.add(offer.amount)
    return found


def _decimal(raw: str) -> Decimal | None:
    try:
        return Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None


__all__ = ["MAX_SENTENCES", "MAX_WORDS", "Problem", "ProblemKind", "check_answer"]
