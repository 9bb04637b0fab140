"""The demo's settings: the merchant's config.yaml, with what a ten-minute demo needs changed.

Everything else (the Asterisk, the trunk to the simulator, the models, the
voice, the campaign's script and the law's rules) is the configured one. The
demo keeps its own SQLite database and data keys in ``state_dir/demo``, made
fresh on every run, so it never touches the merchant's own data.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agent.campaigns.settings import (
    CampaignSettings,
    IntakeSettings,
    MerchantSettings,
    SchedulerSettings,
    StoreSettings,
)
from agent.config import Settings
from agent.conversation.script import OfferSettings
from agent.demo.customers import STORE_TEAM
from agent.privacy.settings import PrivacySettings
from agent.web.settings import AuthSettings, WebSettings

DEMO_OFFER = OfferSettings(
    name="welcome10",
    code="WELCOME10",
    percent=Decimal(10),
    expiry_text="It is valid for 48 hours.",
)


def demo_dir(base: Settings) -> Path:
    return base.state_dir / "demo"


def demo_settings(base: Settings, intake_secret: str) -> Settings:
    """``base`` changed for the demo: quick timings, its own database, a local sign-in."""
    folder = demo_dir(base).resolve()
    first = base.campaigns[0]
    script = first.script
    script_update: dict[str, Any] = {}
    if not script.offers:
        script_update["offers"] = (DEMO_OFFER,)
    if script.transfer_to is None:
        script_update["transfer_to"] = STORE_TEAM
    campaign = CampaignSettings(
        **{
            **first.model_dump(exclude={"script"}),
            # The demo's shoppers "abandoned" their carts a moment ago: call within seconds.
            "delay_min": 0.05,
            "min_spacing_min": 0,
            "retry": first.retry.model_copy(update={"busy_min": 0.1, "no_answer_min": 0.1}),
            # So the demo runs whenever it is tried; a real campaign keeps its lawful window.
            "window_start": dt.time(0, 0),
            "window_end": dt.time(23, 59, 59),
            "quiet_weekdays": (),
            "quiet_dates": (),
            "enabled": True,
        },
        script=script.model_copy(update=script_update),
    )
    merchant = base.merchant
    if merchant.phone is None:
        merchant = MerchantSettings(**{**merchant.model_dump(), "phone": "+1 212 555 0100"})
    web = WebSettings(
        **{
            **base.web.model_dump(exclude={"auth", "host", "public_url"}),
            # The demo sign-in has no second factor, so the dashboard listens on this machine only.
            "host": "127.0.0.1",
            "auth": AuthSettings(
                **{**base.web.auth.model_dump(), "mfa_roles": (), "secure_cookies": False}
            ),
        }
    )
    return base.model_copy(
        update={
            "campaigns": (campaign,),
            "merchant": merchant,
            "intake": IntakeSettings(
                default_region=base.intake.default_region,
                generic_secret=SecretStr(intake_secret),
            ),
            "store": StoreSettings(url=f"sqlite:///{folder / 'cartline.db'}"),
            "privacy": PrivacySettings(
                **{**base.privacy.model_dump(), "keys_file": folder / "keys" / "data.keys"}
            ),
            "scheduler": SchedulerSettings(
                **{
                    **base.scheduler.model_dump(),
                    "poll_s": 0.5,
                    "server_id": "demo",
                    # One call at a time: on a small CPU the calls would share one model.
                    "voice_slots": 1,
                }
            ),
            # An unanswered phone stops ringing sooner than a real one.
            "trunk": base.trunk.model_copy(update={"ring_timeout_s": 8.0}),
            "web": web,
        }
    )
