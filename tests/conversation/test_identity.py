"""Who is on the line, and whether they ask who calls: plain rules, many phrasings."""

from __future__ import annotations

import pytest

from agent.conversation.identity import (
    asks_who_or_why,
    same_name,
    someone_else,
    the_shopper,
    wants_link,
)

SOMEONE_ELSE = [
    "There's no Dana here, you have the wrong number.",
    "Wrong number.",
    "You've got the wrong person, mate.",
    "This is Robert, Dana's husband. She's not home right now.",
    "I'm her son, she's out.",
    "She isn't here at the moment.",
    "Dana isn't home.",
    "Dana doesn't live here anymore.",
    "Nobody by that name lives here.",
    "I've never heard of her.",
    "I don't know any Dana.",
    "This is Robert, not Dana.",
    "I'm not Dana.",
    "Who is Dana?",
]
THE_SHOPPER_OR_UNKNOWN = [
    "It's Dani actually, not Dana. Anyway, what's this about?",
    "Why the hell are you calling me, you stupid robot?",
    "Who is this?",
    "I'm not interested.",
    "I don't know, I'm busy.",
    "Yes, this is Dana.",
    "Hello? Who? I don't understand, what cart?",
    "Oh, my grandson might have put something in there for me, I don't know.",
]


@pytest.mark.parametrize("said", SOMEONE_ELSE)
def test_a_caller_who_says_they_are_not_the_shopper(said: str) -> None:
    assert someone_else(said, "Dana")
    assert not the_shopper(said, "Dana")


@pytest.mark.parametrize("said", THE_SHOPPER_OR_UNKNOWN)
def test_rudeness_a_question_or_a_name_said_differently_is_no_wrong_person(said: str) -> None:
    assert not someone_else(said, "Dana")


def test_without_the_shoppers_name_only_plain_words_count() -> None:
    assert someone_else("You have the wrong number.", None)
    assert someone_else("I'm her husband.", None)
    assert not someone_else("This is Robert, not Dana.", None)
    assert not the_shopper("This is Dana.", None)


@pytest.mark.parametrize("said", ["Yes, this is Dana.", "Dana speaking.", "Hi, it's Dani here."])
def test_the_shopper_on_the_line(said: str) -> None:
    assert the_shopper(said, "Dana")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("dani", "dana", True),
        ("jon", "john", True),
        ("katie", "kate", True),
        ("robert", "dana", False),
        ("dave", "dana", False),  # two letters apart: another person
        ("mana", "dana", False),  # one letter apart, but not at the start
    ],
)
def test_a_name_said_differently_is_the_same_name(a: str, b: str, same: bool) -> None:
    assert same_name(a, b) is same


@pytest.mark.parametrize(
    "said",
    [
        "Who is this?",
        "Hello? Who? I don't understand.",
        "Sorry, what is this call about?",
        "What's this about?",
        "Why the hell are you calling me?",
        "Why do you keep calling?",
        "What cart? I didn't buy anything.",
        "Who am I speaking to?",
    ],
)
def test_questions_about_who_calls_and_why(said: str) -> None:
    assert asks_who_or_why(said)


@pytest.mark.parametrize(
    "said",
    [
        "How much is shipping?",
        "Is this about the tent?",
        "Can you send me the link to my cart?",
        "What's your return policy?",
        "Who do you think I should vote for?",
    ],
)
def test_other_questions_are_not_about_who_calls(said: str) -> None:
    assert not asks_who_or_why(said)


def test_asking_for_the_link_in_words() -> None:
    assert wants_link("Who is this? Text me the link.")
    assert wants_link("I'd like to buy it.")
    assert not wants_link("What cart? I don't use computers much.")
