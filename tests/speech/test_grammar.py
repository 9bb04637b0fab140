"""What the schema already decides, the model skips: the opening, what is forced, the ending."""

from __future__ import annotations

import json

import pytest

from agent.conversation.actions import action_schema, parse_action
from agent.speech.grammar import ahead, continuation, settled_json

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


@pytest.mark.parametrize(
    ("start", "forced"),
    [
        ('{"action": "answer', '_question", "say": "'),
        ('{"action": "answer_question", "', 'say": "'),
        ('{"action": "answer_question", "say": "', ""),
        ('{"action": "sch', 'edule_callback", "when": "'),
    ],
)
def test_what_leads_to_a_free_string_is_forced_and_the_string_left_open(
    start: str, forced: str
) -> None:
    step = ahead(start, SCHEMA)
    assert step is not None
    assert step.text == forced
    assert step.grammar is None  # the string is written without a grammar
    assert parse_action(start + forced + "Hi there." + step.closing) is not None


def test_what_leads_to_a_choice_is_forced_and_the_choice_left_to_a_grammar() -> None:
    step = ahead('{"action": "offer', SCHEMA)
    assert step is not None
    assert step.text == '_discount", "offer": '
    assert step.grammar is not None
    assert step.grammar.splitlines()[0] == r'root ::= ("\"ten\"" | "\"big\"") "}"'
    step = ahead('{"action": "not_', SCHEMA)
    assert step is not None and step.text == 'interested", "reason": '
    assert step.grammar is not None and '"\\"bought_elsewhere\\""' in step.grammar


def test_the_grammar_for_the_rest_is_one_llama_cpp_reads() -> None:
    pytest.importorskip("llama_cpp")
    from llama_cpp.llama_grammar import LlamaGrammar

    step = ahead('{"action": "not', SCHEMA)
    assert step is not None and step.grammar is not None
    assert LlamaGrammar.from_string(step.grammar, verbose=False) is not None


@pytest.mark.parametrize(
    "start",
    [
        '{"action": "',  # every action fits
        '{"action": "a',  # answer_question or already_purchased
        '{"action": "send',  # nothing left to choose: settled instead
        '{"action": "off',  # one offer: settled instead
        '{"action": "answer_question", "say": "Hi',  # inside the string: the model writes it
        '{"action": "offer_discount", "offer": "t',  # inside the choice: the grammar goes on
    ],
)
def test_nothing_is_forced_while_a_choice_is_open(start: str) -> None:
    schema = ONE_OFFER if start.endswith("off") else SCHEMA
    assert ahead(start, schema) is None


def test_a_free_string_before_another_property_is_not_forced() -> None:
    schema = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "action": {"const": "x"},
                    "say": {"type": "string"},
                    "n": {"enum": ["a", "b"]},
                },
                "required": ["action", "say", "n"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"action": {"const": "y"}},
                "required": ["action"],
                "additionalProperties": False,
            },
        ]
    }
    assert ahead('{"action": "x', schema) is None
