"""The rules compliance rests on, as plain functions: no model decides them.

An opt-out phrase or key ends the conversation with the number on the
do-not-call list; a voicemail greeting is never answered as a person; the
first thing the agent says is who it calls for, that it is automated and that
the call may be recorded.
"""

from __future__ import annotations

import re

from agent.conversation.facts import CallFacts
from agent.conversation.script import ScriptSettings

_CONTRACTIONS = [
    (r"\bwon't\b", "will not"),
    (r"\bcan't\b", "can not"),
    (r"\bcannot\b", "can not"),
    (r"\bshan't\b", "shall not"),
    (r"\bain't\b", "am not"),
    (r"n't\b", " not"),
    (r"\bi'm\b", "i am"),
    (r"'re\b", " are"),
    (r"'ve\b", " have"),
    (r"'ll\b", " will"),
    (r"'d\b", " would"),
]
_TARGET = r"(?:me|us|this number|my number|here|my phone|this phone)"
_LIST = r"(?:(?:your|the|this|that|a|any|all|of)\s+)*(?:\w+\s+){0,2}list"
# A call, or the whole contact ("text or call", "contact"); bare, only a call ends the request.
_CALL = r"(?:call|ring|phone|contact)"
_CALLS = r"(?:(?:text|message|email)\s+(?:or|and)\s+)?" + _CALL + r"(?:\s+(?:or|and)\s+\w+)?"
_CONTACT = r"(?:" + _CALLS + r"|text|message|email)"
_AGAIN = r"(?:again|anymore|any more|ever again)"
_END = r"(?=\s*(?:[.;!?,]|$))"
_OPT_OUT = [
    r"\b(?:stop|quit|cease|end)\s+(?:calling|ringing|phoning|contacting|bothering|harassing|"
    r"texting|messaging)\b",
    r"\b(?:stop|quit)\s+(?:call|ring|phone|contact)\s+" + _TARGET,
    r"\b(?:take|remove|delete|scratch|drop|get|cross)\s+(?:me|us|my\s+(?:phone\s+)?(?:number|name|"
    r"details|info|information))\s+(?:off|from|out of)\s+" + _LIST,
    r"\b(?:remove|delete|erase|lose)\s+(?:my\s+(?:phone\s+)?number|me|my\s+details)\b",
    r"\b(?:put|add|place)\s+(?:me|us|my\s+(?:phone\s+)?number)\s+(?:on|to|in)\s+" + _LIST,
    r"\bdo not call list\b",
    r"\bdo not (?:ever\s+)?"
    + _CALLS
    + r"(?:\s+"
    + _TARGET
    + r")?(?:\s+(?:again|anymore|any more|back|ever))?"
    + _END,
    r"\bdo not (?:ever\s+)?" + _CONTACT + r"\s+" + _TARGET + r"\s+" + _AGAIN + r"\b",
    r"\b(?:not|never)\s+(?:to\s+)?(?:ever\s+)?" + _CONTACT + r"\s+" + _TARGET + r"\s+" + _AGAIN,
    r"\bnever\s+(?:ever\s+)?" + _CALLS + r"\s+" + _TARGET + r"\b",
    r"\b(?:do not|never)\s+want\s+(?:you\s+|anyone\s+|any of you\s+)?(?:to\s+)?(?:call|calling|"
    r"contact|contacting|ring|ringing)\s+(?:me|us|here)?\s*(?:again|anymore|any more)\b",
    r"\b(?:do not|never)\s+want\s+(?:any\s+more|anymore|more|any|these|your)\s+"
    r"(?:phone\s+)?calls\b",
    # "I never want to hear from your company again", "I don't want to hear from you."
    r"\b(?:do not|never)\s+(?:want|wish)\s+to\s+hear\s+from\s+(?:you|your|this|that|any of you)\b"
    r"(?:(?:\s+\w+){0,3}?\s+" + _AGAIN + r"\b|(?:\s+\w+){0,2}?" + _END + r")",
    # "I do not wish to be contacted", "I don't want to be called again."
    r"\b(?:do not|never)\s+(?:want|wish)\s+to\s+be\s+(?:called|contacted|phoned|rung)"
    r"(?:\s+(?:by you|by your \w+))?(?:\s+" + _AGAIN + r"\b|" + _END + r")",
    r"\bno more (?:phone\s+)?calls\b",
    r"\b(?:rather|prefer)\s+(?:that\s+)?(?:you\s+)?(?:did not|not|never)\s+call\b",
    r"\bunsubscribe\b",
    r"\bopt\s+(?:me\s+)?out\b",
]
_OPT_OUT_RE = re.compile("|".join(f"(?:{p})" for p in _OPT_OUT))
# The whole turn is just this: a plain STOP, as on a text message.
_ALONE = re.compile(
    r"^(?:please\s+|just\s+|ok\s+|okay\s+)?(?:stop|stop it|stop now)(?:\s+please)?$"
)
# Said before an opt-out phrase, these take it back ("I didn't say stop calling").
_NEGATORS = re.compile(r"\b(?:not|never|no need|no reason|nobody|no one|without|neither|nor)\b")
# Negations that do not reach the phrase after them ("not interested, stop calling").
_INERT = re.compile(
    r"\b(?:not|never)\s+(?:interested|now|today|really interested|at all|a good time|right now|"
    r"sure|buying|going to buy|happy)\b|\bno\s+(?:thanks|thank you)\b|\bif not\b"
)
_CLAUSE = re.compile(r"[.;!?,]|\b(?:but|so|and|because|just|instead)\b")
_NEGATION_WINDOW = 6  # words before an opt-out phrase a negation reaches back over


def normalize(text: str) -> str:
    """Lower case, plain apostrophes, contractions spelt out, punctuation kept as clause marks."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("do-not-call", "do not call").replace("opt-out", "opt out")
    text = text.replace("-", " ")
    for pattern, full in _CONTRACTIONS:
        text = re.sub(pattern, full, text)
    text = re.sub(r"[^a-z0-9'.;!?, ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def is_opt_out(text: str) -> bool:
    """Whether the caller asks not to be called (or contacted) again.

    Errs towards yes: a request not honoured breaks the law; an honoured one
    costs a sale. A phrase is taken back only by a negation before it in the
    same clause ("I didn't say stop calling", "don't take me off the list").
    """
    said = normalize(text)
    if _ALONE.match(said.strip(" .!?,")):
        return True
    return any(not _negated(said[: m.start()]) for m in _OPT_OUT_RE.finditer(said))


def _negated(before: str) -> bool:
    clause = _CLAUSE.split(before)[-1]
    clause = _INERT.sub(" ", clause)
    words = clause.split()[-_NEGATION_WINDOW:]
    return bool(_NEGATORS.search(" ".join(words)))


def is_opt_out_key(digit: str, script: ScriptSettings) -> bool:
    """Whether the caller pressed the campaign's opt-out key."""
    return digit.strip() == script.opt_out_key


_VOICEMAIL = re.compile(
    r"\b(?:leave (?:a|your|me a|us a) (?:brief |short |detailed )?message|"
    r"(?:after|at) the (?:tone|beep)|"
    r"(?:is|are) not available|is unavailable|are unavailable|"
    r"voice ?mail|mailbox|voice message system|(?:automatic|automated) voice message|"
    r"the (?:person|party|number|subscriber|customer) you "
    r"(?:are calling|have (?:called|dialed|dialled)|are trying to reach)|"
    r"(?:can|could) not (?:take|answer|come to) (?:your call|the phone)|"
    r"not able to (?:take|answer) (?:your call|the phone)|"
    r"record your message|"
    r"leave your name and (?:phone )?number|"
    r"please hang up and try again)"
)


def sounds_like_voicemail_greeting(text: str) -> bool:
    """Whether the first words heard are an answering machine's, not a person's."""
    return bool(_VOICEMAIL.search(normalize(text)))


def disclosure_first(script: ScriptSettings, region: str | None, facts: CallFacts) -> str:
    """The agent's first words: the disclosure for ``region``, then the greeting."""
    disclosure = facts.fill(script.disclosure.for_region(region))
    return f"{disclosure} {facts.fill(script.greeting)}".strip()


__all__ = [
    "disclosure_first",
    "is_opt_out",
    "is_opt_out_key",
    "normalize",
    "sounds_like_voicemail_greeting",
]
