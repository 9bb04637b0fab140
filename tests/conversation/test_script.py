"""Campaign scripts: templates are checked when the configuration loads."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from agent.campaigns.settings import CampaignSettings
from agent.conversation.script import (
    DisclosureSettings,
    OfferSettings,
    ScriptSettings,
    TemplateSettings,
    check_script,
)

ALL_FIELDS = ("first_name", "last_name", "city", "items", "total", "checkout_url")


def test_the_default_script_is_valid_for_the_default_campaign() -> None:
    check_script(ScriptSettings(), CampaignSettings(name="c").customer_fields)
    # Nothing in the defaults needs a customer field: a campaign sharing none still loads.
    check_script(ScriptSettings(), ())


def test_an_unknown_placeholder_names_the_template_and_the_placeholder() -> None:
    with pytest.raises(ValidationError) as caught:
        ScriptSettings(templates=TemplateSettings(goodbye="Bye {frist_name}!"))
    message = str(caught.value)
    assert "templates.goodbye" in message and "{frist_name}" in message


def test_an_unknown_placeholder_in_a_regional_disclosure_is_named() -> None:
    with pytest.raises(ValidationError, match=r"disclosure\.regions\.US-CA: unknown .*\{shop\}"):
        ScriptSettings(disclosure=DisclosureSettings(regions={"US-CA": "Hi from {shop}."}))


def test_a_malformed_template_is_an_error() -> None:
    with pytest.raises(ValidationError, match=r"greeting: .*literal braces"):
        ScriptSettings(greeting="Hi {first_name")
    with pytest.raises(ValidationError, match=r"greeting: \{first_name\} takes no format"):
        ScriptSettings(greeting="Hi {first_name:>10}")
    with pytest.raises(ValidationError, match=r"is not a placeholder name"):
        ScriptSettings(greeting="Hi {first_name.upper}")


def test_offer_placeholders_only_in_the_offer_template() -> None:
    with pytest.raises(ValidationError, match=r"templates.goodbye: \{discount_code\} is only"):
        ScriptSettings(templates=TemplateSettings(goodbye="Use {discount_code}!"))
    ScriptSettings(templates=TemplateSettings(offer="Use {discount_code} for {discount_text}."))


def test_a_field_the_campaign_does_not_share_is_an_error() -> None:
    script = ScriptSettings(greeting="Hi {first_name}, about your {item_list} in {city}.")
    check_script(script, ALL_FIELDS)
    with pytest.raises(ValueError) as caught:
        check_script(script, ("first_name", "items"))
    message = str(caught.value)
    assert "script.greeting" in message and "{city}" in message and "'city'" in message


@pytest.mark.parametrize(
    ("placeholder", "field"),
    [("cart_total", "total"), ("item_list", "items"), ("checkout_url", "checkout_url")],
)
def test_each_customer_placeholder_needs_its_field(placeholder: str, field: str) -> None:
    script = ScriptSettings(templates=TemplateSettings(goodbye=f"Bye ({{{placeholder}}})"))
    check_script(script, (field,))
    with pytest.raises(ValueError, match=rf"templates\.goodbye: \{{{placeholder}\}} needs"):
        check_script(script, tuple(f for f in ALL_FIELDS if f != field))


def test_offers_need_exactly_one_kind_and_unique_names() -> None:
    with pytest.raises(ValidationError, match="exactly one of percent and amount"):
        OfferSettings(name="x", code="SAVE10", percent=Decimal(10), amount=Decimal(5))
    with pytest.raises(ValidationError, match="exactly one of percent and amount"):
        OfferSettings(name="x", code="SAVE10")
    offer = OfferSettings(name="x", code="SAVE10", percent=Decimal(10))
    with pytest.raises(ValidationError, match="repeated: x"):
        ScriptSettings(offers=(offer, offer))


def test_offer_conditions() -> None:
    offer = OfferSettings(name="big", code="BIG5", amount=Decimal(5), min_total=Decimal(50))
    assert offer.applies_to(Decimal(50)) and not offer.applies_to(Decimal("49.99"))
    assert not offer.applies_to(None)
    assert offer.discount_text("dollars") == "5 dollars off"
    ten = OfferSettings(name="ten", code="TEN10", percent=Decimal("10.0"))
    assert ten.applies_to(None) and ten.discount_text("dollars") == "10 percent off"


def test_voicemail_message_needs_its_template() -> None:
    with pytest.raises(ValidationError, match="templates.voicemail is not set"):
        ScriptSettings(templates=TemplateSettings(voicemail=None))
    ScriptSettings(voicemail="hang_up", templates=TemplateSettings(voicemail=None))


def test_unknown_keys_and_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        ScriptSettings.model_validate({"greting": "Hi"})
    with pytest.raises(ValidationError):
        ScriptSettings(opt_out_key="99")
    with pytest.raises(ValidationError, match="region code"):
        DisclosureSettings(regions={"US CA": "x"})


def test_a_script_loads_from_yaml_shaped_data() -> None:
    script = ScriptSettings.model_validate(
        {
            "agent_name": "Max",
            "greeting": "Hi {first_name}!",
            "disclosure": {"regions": {"US-CA": "{merchant}: automated, recorded."}},
            "topics": {"shipping": "Shipping is 4.99 dollars, free over 50."},
            "offers": [{"name": "ten", "code": "TEN10", "percent": 10, "min_total": 40}],
            "templates": {"opt_out": "Done, {merchant} won't call again."},
            "max_call_s": 180,
            "opt_out_key": "#",
            "voicemail": "hang_up",
            "transfer_to": "100",
        }
    )
    assert script.offers[0].min_total == Decimal(40) and script.transfer_to == "100"
    check_script(script, ("first_name",))


def test_the_new_lines_are_checked_like_any_template() -> None:
    with pytest.raises(ValidationError, match=r"templates.about_call: unknown .*\{shop\}"):
        ScriptSettings(templates=TemplateSettings(about_call="Calling for {shop}."))
    with pytest.raises(ValidationError, match=r"templates.link_already_sent: unknown .*\{url\}"):
        ScriptSettings(templates=TemplateSettings(link_already_sent="See {url}."))
    script = ScriptSettings(templates=TemplateSettings(link_already_sent="See {checkout_url}."))
    with pytest.raises(ValueError, match=r"script.templates.link_already_sent: \{checkout_url\}"):
        check_script(script, ("first_name",))


def test_acknowledgements_take_no_placeholders() -> None:
    assert ScriptSettings().acknowledgements == ("Okay.", "Alright.")
    assert ScriptSettings(acknowledgements=()).acknowledgements == ()
    with pytest.raises(ValidationError, match=r"acknowledgements\[1\]: takes no placeholders"):
        ScriptSettings(acknowledgements=("Okay.", "Sure, {first_name}."))
