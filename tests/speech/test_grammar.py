"""What the schema already decides, the model skips: the fixed opening and the forced ending."""

from __future__ import annotations

import json

import pytest

from agent.conversation.actions import action_schema, parse_action
from agent.speech.grammar import continuation, open_string, settled_json

SCHEMA = action_schema(["ten", "big"], link=True, transfer=True)
ONE_OFFER = action_schema(["ten"], link=True, transfer=True)


def test_the_opening_and_the_grammar_of_the_rest() -> None:
    rest = continuation(SCHEMA)
    assert rest is not None
    assert rest.opening == '{"action": "'
    root, char = rest.grammar.splitlines()
    assert root.startswith("root ::= (")
    assert char.startswith("char ::= ")
    # One alternative per action, each the rest of its object after the opening.
    assert r'("send_checkout_link\"" "}")' in root
    assert r'("answer_question\"" ", \"say\": " "\"" char* "\"" "}")' in root
    assert r'("offer_discount\"" ", \"offer\": " ("\"ten\"" | "\"big\"") "}")' in root
    assert root.count(" | (") == len(SCHEMA["oneOf"]) - 1


def test_every_ending_the_grammar_allows_makes_a_valid_action() -> None:
    rest = continuation(SCHEMA)
    assert rest is not None
    for ending in ['send_checkout_link"}', 'answer_question", "say": "Hi."}', 'opt_out"}']:
        assert parse_action(rest.opening + ending) is not None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},
        {"oneOf": [{"type": "object", "properties": {"a": {"type": "string"}}}]},
        {"oneOf": SCHEMA["oneOf"], "title": "x"},
        # A property of a kind the continuation does not write: the plain grammar is used.
        {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"action": {"const": "x"}, "n": {"type": "integer"}},
                    "required": ["action", "n"],
                    "additionalProperties": False,
                }
            ]
        },
    ],
)
def test_other_schemas_get_no_continuation(schema: dict[str, object]) -> None:
    assert continuation(schema) is None


@pytest.mark.parametrize(
    ("start", "whole"),
    [
        ('{"action": "send', {"action": "send_checkout_link"}),
        ('{ "action": "already', {"action": "already_purchased"}),
        ('{"action":"w', {"action": "wrong_person"}),
        ('{"action": "opt', {"action": "opt_out"}),
        ('{"action": "end_call"', {"action": "end_call"}),
        ('{"action": "tr', {"action": "transfer_to_person"}),
        ('{"action": "off', {"action": "offer_discount", "offer": "ten"}),
    ],
)
def test_an_action_without_choices_left_is_settled_by_its_start(start: str, whole: object) -> None:
    got = settled_json(start, ONE_OFFER)
    assert got is not None and json.loads(got) == whole
    assert parse_action(got) is not None


@pytest.mark.parametrize(
    "start",
    [
        "",
        "{",
        '{"action": "',
        '{"action": "a',  # answer_question or already_purchased
        '{"action": "answer',  # has a "say" still to write
        '{"action": "schedule',  # has a "when"
        '{"action": "offer',  # has an "offer" to choose
        '{"action": "not_',  # has a "reason"
    ],
)
def test_anything_still_open_is_left_to_the_model(start: str) -> None:
    assert settled_json(start, SCHEMA) is None


def test_settling_needs_a_schema_of_alternatives() -> None:
    assert settled_json('{"action": "x', {"type": "object"}) is None


def test_a_free_string_is_left_open_for_plain_writing() -> None:
    assert open_string('{"action": "answer_question", "say": "', SCHEMA) == '"}'
    assert open_string('{"action": "schedule_callback", "when": "', SCHEMA) == '"}'
    # Not yet at the string, inside it, or a property with choices: the grammar goes on.
    assert open_string('{"action": "answer_question", "say', SCHEMA) is None
    assert open_string('{"action": "answer_question", "say": "Hi', SCHEMA) is None
    assert open_string('{"action": "offer_discount", "offer": "', SCHEMA) is None
    assert open_string('{"action": "not_interested", "reason": "', SCHEMA) is None
    assert open_string('{"action": "send_checkout_link"}', SCHEMA) is None
