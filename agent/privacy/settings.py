"""Configuration of what Cartline keeps and how it protects it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class PrivacySettings(BaseModel):
    """Encryption at rest of recordings and transcripts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The data keys (one "ID BASE64KEY" per line, the last one active). None: keys/data.keys
    # in state_dir, made on first start. CARTLINE_DATA_KEYS, when set, wins over the file.
    keys_file: Path | None = None
    encrypt_recordings: bool = True
    encrypt_transcripts: bool = True
    # How often data sealed with an older key is re-sealed with the active one.
    reseal_every_s: float = Field(3600, gt=0)
