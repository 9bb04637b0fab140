"""The fixed set of things the agent can do in a turn, as JSON the model must follow.

The model never answers in free text: it writes one action object, constrained
by :func:`action_schema` (a grammar in llama.cpp, ``response_format`` on an
OpenAI-compatible server), so what it writes always parses. The schema of one
call lists only what that call can do: the offers its cart qualifies for, a
transfer only when there is someone to transfer to, the link only when there
is one.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SAY_MAX_CHARS = 160
Reason = Literal["price", "shipping", "timing", "bought_elsewhere", "changed_mind", "other"]


class ActionModel(BaseModel):
    """What every action has in common: frozen, and nothing beyond its own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerQuestion(ActionModel):
    """Answer briefly from the facts given (checked before it is spoken)."""

    action: Literal["answer_question"]
    say: str = Field(max_length=SAY_MAX_CHARS)


class SendCheckoutLink(ActionModel):
    """The customer wants the link, or to finish the order."""

    action: Literal["send_checkout_link"]


class OfferDiscount(ActionModel):
    """The customer hesitates over the price; ``offer`` names a configured offer."""

    action: Literal["offer_discount"]
    offer: str = Field(max_length=31)


class ScheduleCallback(ActionModel):
    """The customer asks to be called later; ``when`` is the time in their words."""

    action: Literal["schedule_callback"]
    when: str = Field(max_length=60)


class TransferToPerson(ActionModel):
    """The customer wants to talk to a person."""

    action: Literal["transfer_to_person"]


class AlreadyPurchased(ActionModel):
    """The customer already bought."""

    action: Literal["already_purchased"]


class WrongPerson(ActionModel):
    """The agent has the wrong person or number."""

    action: Literal["wrong_person"]


class NotInterested(ActionModel):
    """The customer declines."""

    action: Literal["not_interested"]
    reason: Reason


class OptOut(ActionModel):
    """The customer asks not to be called again."""

    action: Literal["opt_out"]


class EndCall(ActionModel):
    """The conversation is over (the customer says goodbye)."""

    action: Literal["end_call"]


ACTIONS: tuple[type[ActionModel], ...] = (
    AnswerQuestion,
    SendCheckoutLink,
    OfferDiscount,
    ScheduleCallback,
    TransferToPerson,
    AlreadyPurchased,
    WrongPerson,
    NotInterested,
    OptOut,
    EndCall,
)
Action = Annotated[
    AnswerQuestion
    | SendCheckoutLink
    | OfferDiscount
    | ScheduleCallback
    | TransferToPerson
    | AlreadyPurchased
    | WrongPerson
    | NotInterested
    | OptOut
    | EndCall,
    Field(discriminator="action"),
]
ActionName = Literal[
    "answer_question",
    "send_checkout_link",
    "offer_discount",
    "schedule_callback",
    "transfer_to_person",
    "already_purchased",
    "wrong_person",
    "not_interested",
    "opt_out",
    "end_call",
]
_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def action_name(model: type[ActionModel]) -> str:
    return str(model.model_fields["action"].annotation.__args__[0])  # type: ignore[union-attr]


def available(
    offers: Sequence[str],
    *,
    link: bool,
    transfer: bool,
    without: Collection[type[ActionModel]] = (),
) -> tuple[type[ActionModel], ...]:
    """The actions one call can take (less those ``without``)."""
    return tuple(
        a
        for a in ACTIONS
        if a not in without
        and (a is not OfferDiscount or offers)
        and (a is not SendCheckoutLink or link)
        and (a is not TransferToPerson or transfer)
    )


def action_schema(
    offers: Sequence[str],
    *,
    link: bool,
    transfer: bool,
    without: Collection[type[ActionModel]] = (),
) -> dict[str, Any]:
    """The JSON schema of one action among those available (``offers``: offer names)."""
    alternatives = []
    for model in available(offers, link=link, transfer=transfer, without=without):
        schema = _untitled(model.model_json_schema())
        schema.pop("description", None)
        if model is OfferDiscount:
            schema["properties"]["offer"]["enum"] = list(offers)
        alternatives.append(schema)
    return {"oneOf": alternatives}


def _untitled(node: Any) -> Any:
    # Titles add nothing to the grammar and only lengthen a server's prompt.
    if isinstance(node, dict):
        return {k: _untitled(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_untitled(v) for v in node]
    return node


def parse_action(text: str) -> Action | None:
    """The action the model wrote, or None when it is not one (an endpoint ignoring the schema)."""
    try:
        return _ADAPTER.validate_python(json.loads(text))
    except (ValueError, ValidationError):
        return None


__all__ = [
    "ACTIONS",
    "Action",
    "ActionModel",
    "ActionName",
    "AlreadyPurchased",
    "AnswerQuestion",
    "EndCall",
    "NotInterested",
    "OfferDiscount",
    "OptOut",
    "Reason",
    "ScheduleCallback",
    "SendCheckoutLink",
    "TransferToPerson",
    "WrongPerson",
    "action_name",
    "action_schema",
    "available",
    "parse_action",
]
