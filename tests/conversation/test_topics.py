"""Shipping and returns questions: which words ask only that, and the merchant's lines said."""

from __future__ import annotations

import pytest

from agent.conversation.script import TopicSettings
from agent.conversation.topics import answer, asked_topics

TOPICS = TopicSettings(
    shipping="Shipping is 4.99 dollars and takes 3 to 5 days.",
    returns="Returns are free within 30 days.",
)


@pytest.mark.parametrize(
    ("said", "topics"),
    [
        ("How much is shipping?", ("shipping",)),
        ("is shipping free for this order.", ("shipping",)),  # the question mark lost
        ("Okay, and how long does delivery take?", ("shipping",)),
        ("When will it arrive", ("shipping",)),
        ("Do you ship for free?", ("shipping",)),
        ("Thank you, how long does shipping take", ("shipping",)),
        ("Can I return them if they don't fit?", ("returns",)),
        ("What's your return policy?", ("returns",)),
        ("I was wondering about refunds.", ("returns",)),
        ("Can I send them back?", ("returns",)),
        ("Is shipping free? And can I return them?", ("shipping", "returns")),
        ("Can I return them, and how much is shipping?", ("returns", "shipping")),
    ],
)
def test_a_plain_question_about_a_topic(said: str, topics: tuple[str, ...]) -> None:
    assert asked_topics(said) == topics


@pytest.mark.parametrize(
    "said",
    [
        # Not a question.
        "I want to return it.",
        "Shipping is too expensive.",
        "It already shipped.",
        # Something more than the topic: the model decides.
        "How much is shipping, and can you text me the link?",
        "Is shipping free? If not I'm not interested.",
        "Do you have a discount code for shipping?",
        "Can you call me back tomorrow about the delivery?",
        "I already returned them, why are you calling?",
        "Can I speak to a person about a refund?",
        "Can I buy them now and have them shipped to my office?",
        "Can you guarantee it arrives by Friday?",
        "Who is this? Is it about my delivery?",
        # Neither topic.
        "What colors do the shoes come in?",
        "Can you send me the link?",
        "Thanks, that is all I needed.",
        "",
    ],
)
def test_anything_else_is_not_a_topic_question(said: str) -> None:
    assert asked_topics(said) == ()


def test_the_merchants_lines_are_said_as_written() -> None:
    assert answer(("shipping",), TOPICS) == "Shipping is 4.99 dollars and takes 3 to 5 days."
    assert answer(("returns", "shipping"), TOPICS) == (
        "Returns are free within 30 days. Shipping is 4.99 dollars and takes 3 to 5 days."
    )


def test_a_topic_without_a_line_is_left_to_the_model() -> None:
    only_shipping = TopicSettings(shipping="Shipping is 4.99 dollars.")
    assert answer(("returns",), only_shipping) is None
    assert answer(("shipping", "returns"), only_shipping) is None
    assert answer((), TOPICS) is None
