"""Encryption at rest: AES-256-GCM with named keys, for recordings and transcripts.

A sealed blob is ``CLE1`` | key-id length (1 byte) | key id | 12-byte nonce |
ciphertext with its tag. The key id travels with the data, so after a rotation
old blobs still open with their own key until they are re-sealed with the new
one. The context (what the blob is, e.g. ``recording``) is authenticated too: a
transcript cannot be passed off as a recording.

Keys come from a key file (one ``ID BASE64KEY`` per line; the last line is the
key new data is sealed with) or from ``CARTLINE_DATA_KEYS`` (``ID:BASE64,...``,
the last one active). Keep the file outside backups of the data it protects.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.errors import CartlineError

log = logging.getLogger(__name__)
MAGIC = b"CLE1"
RECORDING_CONTEXT = "recording"
TRANSCRIPT_CONTEXT = "transcript"
EXPORT_CONTEXT = "export"  # a customer's export archive, until it expires
TOTP_CONTEXT = "cartline/totp"  # the dashboard users' second-factor secrets
ENV_KEYS = "CARTLINE_DATA_KEYS"
SEALED_SUFFIX = ".enc"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class DataKeyError(CartlineError):
    """The data keys are missing, malformed, or do not open a blob."""


class DataKeys:
    """The named keys; ``active`` seals new data, every key opens what it sealed."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise DataKeyError("the active data key is not among the keys")
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise DataKeyError("a data key id must be 1-64 letters, digits, '_', '.' or '-'")
            if len(key) != 32:
                raise DataKeyError(f"data key {key_id} is not 32 bytes (AES-256)")
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active = active

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._aead)

    def seal(self, data: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        key_id = self.active.encode()
        body = self._aead[self.active].encrypt(nonce, data, context.encode())
        return MAGIC + bytes([len(key_id)]) + key_id + nonce + body

    def open(self, blob: bytes, context: str) -> bytes:
        key_id, nonce, body = _split(blob)
        aead = self._aead.get(key_id)
        if aead is None:
            raise DataKeyError(f"the data was sealed with key {key_id}, which is not configured")
        try:
            return aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise DataKeyError(
                "the data does not open: wrong key, wrong context or altered"
            ) from None

    def needs_reseal(self, blob: bytes) -> bool:
        """True when the blob is sealed with a key other than the active one."""
        return sealed_with(blob) != self.active

    # -- files ---------------------------------------------------------------------

    def seal_file(self, path: Path, context: str) -> Path:
        """Seals ``path`` into ``path.enc`` (written atomically) and removes the plain file."""
        target = path.with_name(path.name + SEALED_SUFFIX)
        _write_atomic(target, self.seal(path.read_bytes(), context))
        path.unlink()
        return target

    def open_file(self, path: Path, context: str) -> bytes:
        return self.open(path.read_bytes(), context)

    def reseal_file(self, path: Path, context: str) -> bool:
        """Re-seals a sealed file with the active key; False when it already is."""
        blob = path.read_bytes()
        if not self.needs_reseal(blob):
            return False
        _write_atomic(path, self.seal(self.open(blob, context), context))
        return True


def sealed_with(blob: bytes) -> str:
    return _split(blob)[0]


def file_sealed_with(path: Path) -> str | None:
    """The key id of a sealed file, read from its header alone; None when not sealed."""
    with path.open("rb") as f:
        head = f.read(len(MAGIC) + 1 + 64)
    return _split(head)[0] if head.startswith(MAGIC) else None


def is_sealed(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def _split(blob: bytes) -> tuple[str, bytes, bytes]:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 2:
        raise DataKeyError("not sealed data (no CLE1 header)")
    n = blob[len(MAGIC)]
    start = len(MAGIC) + 1
    key_id = blob[start : start + n].decode("ascii", "replace")
    nonce = blob[start + n : start + n + 12]
    return key_id, nonce, blob[start + n + 12 :]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


# -- where keys come from -------------------------------------------------------------


def parse_keys(text: str, source: str) -> DataKeys:
    """Keys from ``ID BASE64`` lines (or ``ID:BASE64`` items separated by commas)."""
    keys: dict[str, bytes] = {}
    active = None
    items = [p for p in re.split(r"[\n,]", text) if p.strip() and not p.strip().startswith("#")]
    for number, item in enumerate(items, 1):
        parts = re.split(r"[\s:]+", item.strip(), maxsplit=1)
        if len(parts) != 2:
            raise DataKeyError(f"{source}: entry {number} is not 'ID KEY'")
        key_id, encoded = parts
        try:
            keys[key_id] = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise DataKeyError(f"{source}: key {key_id} is not base64") from None
        active = key_id
    if active is None:
        raise DataKeyError(f"{source}: no data key (create one with: cartline privacy keygen)")
    return DataKeys(keys, active)


def load_keys(key_file: Path) -> DataKeys:
    """The keys from ``CARTLINE_DATA_KEYS`` if set, else from ``key_file``."""
    env = os.environ.get(ENV_KEYS)
    if env:
        return parse_keys(env, ENV_KEYS)
    if not key_file.is_file():
        raise DataKeyError(
            f"{key_file}: no data key file; create one with: cartline privacy keygen"
        )
    mode = key_file.stat().st_mode & 0o077
    if mode:
        raise DataKeyError(f"{key_file}: readable by others; chmod 600 it")
    return parse_keys(key_file.read_text(), str(key_file))


def add_key(key_file: Path) -> str:
    """Adds a new random key to the file (made if missing, mode 600) as the active key."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    existing = key_file.read_text() if key_file.is_file() else ""
    number = len([line for line in existing.splitlines() if line.strip()]) + 1
    key_id = f"k{number}-{secrets.token_hex(3)}"
    line = f"{key_id} {base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}\n"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(line)
    key_file.chmod(0o600)
    return key_id


def ensure_keys(key_file: Path) -> DataKeys:
    """The data keys; on first start (no file, no environment keys) a first key is made."""
    if not os.environ.get(ENV_KEYS) and not key_file.is_file():
        key_id = add_key(key_file)
        log.warning(
            "made data key %s in %s: back it up apart from the data, or recordings and "
            "transcripts cannot be read",
            key_id,
            key_file,
        )
    return load_keys(key_file)
