"""Who is on the line, and whether they ask who calls: plain rules over the caller's words.

The checkout link goes only to the person whose cart it is, and "wrong person"
ends the call with an apology: neither may rest on the small model alone. It
took a rude "why the hell are you calling me?" for a wrong number, and met
"what's this about?" from someone correcting their name with the link.
:func:`someone_else` says when the caller has said they are not the shopper
(or that the number is wrong); :func:`the_shopper` when they say they are, as
when the shopper comes to the phone. A name close to the shopper's ("It's
Dani, not Dana") corrects how the name is said: the same person.
:func:`asks_who_or_why` is a caller asking who calls or what the call is about.
"""

from __future__ import annotations

import re

from agent.conversation.rules import normalize

_RELATION = (
    r"(?:husband|wife|partner|boyfriend|girlfriend|fiance|fiancee|son|daughter|mother|mom|mum|"
    r"father|dad|brother|sister|grandson|granddaughter|grandmother|grandma|grandfather|grandpa|"
    r"aunt|uncle|cousin|roommate|flatmate|housemate|friend|neighbor|neighbour|colleague|"
    r"assistant|secretary|carer|caregiver|nurse|babysitter|nanny)"
)
_AWAY = r"(?:here|home|in|around|available|back|at home|in right now|here right now|home right now)"
_WRONG = [
    r"\bwrong (?:number|person|guy|lady|house|people)\b",
    r"\b(?:no one|nobody|no body|noone)\s+(?:here\s+)?(?:by that name|called|named|of that name|"
    r"with that name|lives here)\b",
    r"\b(?:no one|nobody) here\b",
    r"\bnever heard of (?:her|him|them|that name|that person|anyone|anybody)\b",
    r"\bdo not know (?:anyone|anybody|any one) (?:by that name|called|named)\b",
    r"\b(?:she|he|they|who)(?:'s| is| are) not " + _AWAY + r"\b",
    r"\b(?:does|do) not live here\b",
    r"\b(?:this is|i am|it is) (?:her|his|their) " + _RELATION + r"\b",
    r"\b(?:this is|i am|it is) not (?:her|him|them|the person|who you)\b",
    r"\bnot (?:me|the person) you (?:want|are looking for|are after|think)\b",
    r"\byou (?:have|got) (?:the )?wrong\b",
]
_WRONG_RE = re.compile("|".join(f"(?:{p})" for p in _WRONG))
# The caller's own name, when they give it ("this is Robert", "it's Dani actually").
_OWN_NAME = re.compile(
    r"\b(?:this is|it is|it's|i am|my name is|name is|you are speaking to)\s+"
    r"(?P<name>[a-z]+)\b"
)
_NOT_NAMES = frozenset(
    {
        "not",
        "the",
        "a",
        "an",
        "her",
        "his",
        "their",
        "just",
        "me",
        "actually",
        "only",
        "really",
        "fine",
        "ok",
        "okay",
        "good",
        "busy",
        "driving",
        "sorry",
        "so",
        "about",
        "who",
        "what",
    }
)


def someone_else(said: str, first_name: str | None) -> bool:
    """Whether ``said`` tells that the caller is not the shopper ``first_name``, or that the
    number is wrong."""
    text = normalize(said)
    if _WRONG_RE.search(text):
        return True
    shopper = _first(first_name)
    if shopper is None:
        return False
    name = re.escape(shopper)
    about_them = [
        rf"\bno {name}\b",
        rf"\b{name}(?:'s| is) not " + _AWAY + r"\b",
        rf"\b{name} (?:does not live|moved|passed away|died|is out|is away|is at work)\b",
        rf"\b{name}'s " + _RELATION + r"\b",
        rf"\b(?:i am|this is|it is) not {name}\b",
        rf"\bwho is {name}\b",
        rf"\bdo not know (?:any |a |who )?{name}\b",
    ]
    if any(re.search(p, text) for p in about_them):
        return True
    own = _own_name(text)
    said_not = re.search(rf"\bnot {name}\b", text) is not None
    return own is not None and said_not and not same_name(own, shopper)


def the_shopper(said: str, first_name: str | None) -> bool:
    """Whether the caller says they are the shopper ("this is Dana", "Dana speaking")."""
    shopper = _first(first_name)
    if shopper is None or someone_else(said, first_name):
        return False
    text = normalize(said)
    own = _own_name(text)
    if own is not None and same_name(own, shopper):
        return True
    return re.search(rf"\b{re.escape(shopper)} (?:speaking|here)\b", text) is not None


_WHO_OR_WHY = re.compile(
    r"\bwho (?:is|are) (?:this|you|calling|it|that)\b|"
    r"\bwho am i (?:speaking|talking) (?:to|with)\b|"
    r"(?:^|[.!?,] ?)who\?|\bwho is calling\b|"
    r"\bwhat(?:'s| is) (?:this|it|the call|this call) (?:about|regarding|for)\b|"
    r"\bwhat (?:are|were) you calling (?:about|for)\b|"
    r"\bwhy(?: the hell| on earth| exactly| again)? (?:are|were|would|do|did) you (?:keep )?"
    r"(?:calling|ringing|phoning|call|ring|phone)\b|"
    r"\bwhat (?:cart|basket|items|order)\b"
)


def asks_who_or_why(said: str) -> bool:
    """Whether the caller asks who is calling, why, or what cart the call is about."""
    return _WHO_OR_WHY.search(normalize(said)) is not None


_WANTS_LINK = re.compile(r"\b(?:link|text|texts|send|sms|buy|order|checkout|check out)\b")


def wants_link(said: str) -> bool:
    """Whether the caller's words ask for the link or to buy (the words, not their sense)."""
    return _WANTS_LINK.search(normalize(said)) is not None


def same_name(a: str, b: str) -> bool:
    """Whether two first names are one name said or spelt differently (Dani, Dana; Jon, John)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    return a[:2] == b[:2] and _distance(a, b) <= 1


def _first(first_name: str | None) -> str | None:
    words = normalize(first_name or "").split()
    return words[0] if words else None


def _own_name(text: str) -> str | None:
    for match in _OWN_NAME.finditer(text):
        if match["name"] not in _NOT_NAMES:
            return match["name"]
    return None


def _distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


__all__ = ["asks_who_or_why", "same_name", "someone_else", "the_shopper", "wants_link"]
