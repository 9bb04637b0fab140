"""The configuration reference in docs/ is what the settings models generate today."""

from __future__ import annotations

from pathlib import Path

from agent.config_reference import field_comments, reference, yaml_comments
from agent.privacy.settings import RetentionSettings

DOC = Path(__file__).parent.parent / "docs" / "config-reference.md"


def test_the_reference_in_docs_is_up_to_date() -> None:
    assert DOC.read_text() == reference(), (
        "docs/config-reference.md is stale: run `cartline config-reference --out "
        "docs/config-reference.md`"
    )


def test_every_option_is_in_the_reference() -> None:
    text = reference()
    for section in ("`web.auth`", "`campaigns[]`", "`campaigns[].retry`", "`sms`", "`merchant`"):
        assert f"## {section}" in text
    assert "## `speech.llm (kind: openai)`" in text
    for option in ("`max_failures`", "`exports_days`", "`customer_fields`", "`public_url`"):
        assert option in text


def test_explanations_come_from_the_code_and_the_annotated_example() -> None:
    assert "claim" in field_comments(RetentionSettings)["consents_days"]
    notes = yaml_comments(
        "web:\n  # Lock-out after this many.\n  auth:\n    max_failures: 5   # in a row\n"
        "campaigns:\n  - name: a\n    delay_min: 30   # minutes\n"
        "    # kind: commented-out example, not an explanation\n"
    )
    assert notes == {
        "web.auth": "Lock-out after this many.",
        "web.auth.max_failures": "in a row",
        "campaigns[].delay_min": "minutes",
    }
