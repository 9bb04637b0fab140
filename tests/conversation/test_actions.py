"""The action schema, its llama.cpp grammar, and the callback time parser."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from llama_cpp.llama_grammar import LlamaGrammar

from agent.conversation.actions import (
    ACTIONS,
    NotInterested,
    OfferDiscount,
    ScheduleCallback,
    SendCheckoutLink,
    TransferToPerson,
    WrongPerson,
    action_name,
    action_schema,
    parse_action,
)
from agent.conversation.callback_time import parse_callback_time

NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 25 November 2026, 14:20 in New York.
NOW = dt.datetime(2026, 11, 25, 19, 20, tzinfo=dt.UTC)


def names(schema: dict[str, object]) -> list[str]:
    return [alt["properties"]["action"]["const"] for alt in schema["oneOf"]]  # type: ignore[attr-defined]


def test_the_schema_lists_every_action_a_call_can_take() -> None:
    schema = action_schema(["ten", "big"], link=True, transfer=True)
    assert names(schema) == [action_name(a) for a in ACTIONS]
    offer = schema["oneOf"][names(schema).index("offer_discount")]
    assert offer["properties"]["offer"]["enum"] == ["ten", "big"]
    assert offer["required"] == ["action", "offer"]
    answer = schema["oneOf"][0]
    assert answer["properties"]["say"]["maxLength"] == 160
    assert "title" not in json.dumps(schema)


def test_what_a_call_cannot_do_is_not_in_its_schema() -> None:
    schema = action_schema([], link=False, transfer=False)
    got = names(schema)
    for missing in (OfferDiscount, SendCheckoutLink, TransferToPerson):
        assert action_name(missing) not in got
    assert "opt_out" in got and "answer_question" in got


def test_an_action_can_be_left_out_for_a_second_look() -> None:
    full = names(action_schema([], link=True, transfer=False))
    second = names(action_schema([], link=True, transfer=False, without=(WrongPerson,)))
    assert second == [n for n in full if n != "wrong_person"] and "wrong_person" in full


@pytest.mark.parametrize(
    ("offers", "link", "transfer"), [(["ten"], True, True), ([], False, False)]
)
def test_the_grammar_builds_from_the_schema(offers: list[str], link: bool, transfer: bool) -> None:
    grammar = LlamaGrammar.from_json_schema(
        json.dumps(action_schema(offers, link=link, transfer=transfer)), verbose=False
    )
    assert "root" in grammar._grammar and "answer_question" in grammar._grammar


def test_parse_action() -> None:
    action = parse_action('{"action": "schedule_callback", "when": "tomorrow at 3"}')
    assert isinstance(action, ScheduleCallback) and action.when == "tomorrow at 3"
    action = parse_action('{"action":"not_interested","reason":"price"}')
    assert isinstance(action, NotInterested) and action.reason == "price"
    assert parse_action("Sure! I can help.") is None
    assert parse_action('{"action": "fly_to_the_moon"}') is None
    assert parse_action('{"action": "send_checkout_link", "extra": 1}') is None
    assert parse_action('{"action": "answer_question", "say": "' + "x" * 200 + '"}') is None
    assert parse_action('{"action": "answer_question"') is None


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("tomorrow at 3", at(26, 15)),
        ("Call me tomorrow at 3:30 p.m.", at(26, 15, 30)),
        ("tomorrow at three", at(26, 15)),
        ("tomorrow morning", at(26, 10)),
        ("in two hours", at(25, 16, 20)),
        ("in 30 minutes", at(25, 14, 50)),
        ("in half an hour", at(25, 14, 50)),
        ("in an hour", at(25, 15, 20)),
        ("maybe in a couple of hours", at(25, 16, 20)),
        ("Friday morning", at(27, 10)),
        ("Saturday afternoon", at(28, 14)),
        ("monday at 10am", at(30, 10)),
        ("next week", at(30, 10)),
        ("this evening", at(25, 18)),
        ("tonight at 8", at(25, 20)),
        ("at 5", at(25, 17)),
        ("at 9", at(26, 9)),  # 9 this morning has passed: tomorrow
        ("at 2", at(26, 14)),  # 2 pm today has passed too
        ("around noon", at(26, 12)),
        ("half past four", at(25, 16, 30)),
        ("the day after tomorrow at 11", at(27, 11)),
        ("15:00 tomorrow", at(26, 15)),
        ("Wednesday", dt.datetime(2026, 12, 2, 10, tzinfo=NEW_YORK)),  # today is Wednesday
    ],
)
def test_callback_times(said: str, expected: dt.datetime) -> None:
    got = parse_callback_time(said, NOW, NEW_YORK)
    assert got == expected
    assert got is not None and got.tzinfo == NEW_YORK


@pytest.mark.parametrize(
    "said",
    ["later", "whenever", "some other time", "never", "at 25", "in 3 weeks", "in 20 days", ""],
)
def test_callback_times_it_cannot_place(said: str) -> None:
    assert parse_callback_time(said, NOW, NEW_YORK) is None


def test_callback_time_follows_the_customers_time_zone() -> None:
    # 19:20 UTC is 11:20 in Los Angeles: "at 1" is still today there.
    la = ZoneInfo("America/Los_Angeles")
    assert parse_callback_time("at 1", NOW, la) == dt.datetime(2026, 11, 25, 13, tzinfo=la)
    # Across the change from summer time the wall-clock hour is kept.
    march = dt.datetime(2026, 3, 7, 15, tzinfo=dt.UTC)
    got = parse_callback_time("tomorrow at 10", march, NEW_YORK)
    assert got is not None and got.hour == 10 and got.utcoffset() == dt.timedelta(hours=-4)
