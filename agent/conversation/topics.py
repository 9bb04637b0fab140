"""A plain question about shipping or returns gets the merchant's own line, at once.

The merchant writes what the agent may say of shipping and returns
(``script.topics``). Left to the small model, a caller with a cart who asked
"is shipping free for this order?" or "can I return them if they don't fit?"
was offered the campaign's discount instead (scripts/bench-latency), and any
free answer takes the model a second or two on a small machine. So a question
about one of these topics, with no other request in it, is answered with the
merchant's line as written; anything more (a price objection, the link, a
callback, "who is this?") is left to the model, which sees the same lines.
"""

from __future__ import annotations

import re
from typing import Literal

from agent.conversation.rules import normalize
from agent.conversation.script import TopicSettings

Topic = Literal["shipping", "returns"]

_ABOUT: dict[Topic, re.Pattern[str]] = {
    "shipping": re.compile(
        r"\b(?:ship|ships|shipped|shipping|delivery|deliveries|deliver|delivers|delivered|"
        r"postage|arrive|arrives|arrival)\b"
    ),
    "returns": re.compile(
        r"\b(?:return|returns|returned|returning|refund|refunds|refunded|exchange|exchanges|"
        r"send (?:it|them|this|these|that|those) back)\b"
    ),
}
# A clause that opens with a question word, after any "okay, and so...".
_QUESTION_START = re.compile(
    r"^(?:(?:and|so|okay|ok|also|but|um|uh|er|well|oh|hi|hey|then|right|yes|yeah|great|thanks|"
    r"thank you|sure|alright|just)\s+)*"
    r"(?:is|are|do|does|did|can|could|will|would|how|what|when|where|which|any)(?:'s)?\b"
)
_ASKING = re.compile(r"\b(?:wondering|want to know|like to know|tell me)\b")
# Anything else in the words is for the model: a request, an objection, a person.
_OTHER = re.compile(
    r"\b(?:link|text|texts|texted|sms|email|discount|code|coupon|offer|deal|cheaper|expensive|"
    r"too much|afford|person|human|someone|manager|representative|agent|interested|busy|later|"
    r"tomorrow|call me|call back|callback|already|buy|bought|purchase|purchased|paid|checkout|"
    r"check out|guarantee|guaranteed|promise|wrong|who|why|stop|remove|cancel)\b"
)


def asked_topics(said: str) -> tuple[Topic, ...]:
    """The topics ``said`` asks about, in the order named; none if it asks anything more."""
    text = normalize(said)
    if _OTHER.search(text) or not _is_question(said, text):
        return ()
    found = sorted(
        ((m.start(), topic) for topic, p in _ABOUT.items() if (m := p.search(text)) is not None),
    )
    return tuple(topic for _, topic in found)


def answer(topics: tuple[Topic, ...], settings: TopicSettings) -> str | None:
    """The merchant's lines for ``topics``; None when one of them has no line."""
    lines = [getattr(settings, topic) for topic in topics]
    if not lines or any(not line for line in lines):
        return None
    return " ".join(line.strip() for line in lines)


def _is_question(said: str, text: str) -> bool:
    if "?" in said or _ASKING.search(text):
        return True
    return any(_QUESTION_START.match(c.strip()) for c in re.split(r"[.;!?,]", text))


__all__ = ["Topic", "answer", "asked_topics"]
