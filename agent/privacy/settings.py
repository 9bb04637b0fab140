"""Configuration of what Cartline keeps and how it protects it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class RetentionSettings(BaseModel):
    """Days each class of data is kept; shorten any of them to keep less."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recordings_days: int = Field(90, ge=1)
    transcripts_days: int = Field(365, ge=1)
    # Call attempts, outcomes, attributions, the decision log, processed webhook deliveries.
    analytics_days: int = Field(365, ge=1)
    # Proof of consent and do-not-call requests: keep them as long as a claim can be made.
    consents_days: int = Field(1825, ge=1)
    do_not_call_days: int = Field(1825, ge=1)
    # A customer's export archive (asked for through the API) can be downloaded this long.
    exports_days: int = Field(7, ge=1)
    # The daily purge runs at this hour (UTC).
    purge_hour_utc: int = Field(3, ge=0, le=23)


class PrivacySettings(BaseModel):
    """Encryption at rest of recordings and transcripts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The data keys (one "ID BASE64KEY" per line, the last one active). None: keys/data.keys
    # in state_dir, made on first start. CARTLINE_DATA_KEYS, when set, wins over the file.
    keys_file: Path | None = None
    encrypt_recordings: bool = True
    encrypt_transcripts: bool = True
    # False: no transcript is stored at all (the call's outcome still is). Recording
    # calls at all is recordings.enabled.
    keep_transcripts: bool = True
    # How often data sealed with an older key is re-sealed with the active one.
    reseal_every_s: float = Field(3600, gt=0)
    retention: RetentionSettings = RetentionSettings()
