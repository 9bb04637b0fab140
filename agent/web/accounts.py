"""People and API tokens: passwords (argon2), the TOTP second factor, recovery codes, tokens.

Plain database functions on a session, shared by the sign-in routes, the API and
``cartline users``. Secrets never leave as stored: passwords and recovery codes are
hashed, a TOTP secret is sealed with the data keys, a token is stored as its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from agent.privacy.crypto import TOTP_CONTEXT, DataKeys
from agent.store.tables import ApiToken, User
from agent.web.access import Role, Scope
from agent.web.settings import AuthSettings

RECOVERY_CODES = 10
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verified against when the account does not exist, so a wrong address takes as long.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AccountError(ValueError):
    """A request about an account that cannot be done; the message says why."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_password_strength(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if password.lower() in email.lower() or email.split("@")[0].lower() in password.lower():
        raise AccountError("the password must not contain the email address")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise AccountError("not an email address")
    return email


def find_user(s: Session, email: str) -> User | None:
    return s.exec(select(User).where(col(User.email) == email.strip().lower())).first()


def add_user(
    s: Session,
    email: str,
    password: str,
    role: Role,
    *,
    name: str = "",
    campaigns: list[str] | None = None,
) -> User:
    email = normalise_email(email)
    check_password_strength(password, email)
    if find_user(s, email) is not None:
        raise AccountError("a user with this email exists already")
    now = _now()
    user = User(
        email=email,
        name=name,
        role=role.value,
        campaigns=sorted(set(campaigns or [])),
        password_hash=_hasher.hash(password),
        created_at=now,
        updated_at=now,
    )
    s.add(user)
    s.flush()
    return user


def set_password(s: Session, user: User, password: str) -> None:
    check_password_strength(password, user.email)
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.updated_at = _now()
    s.add(user)


def verify_password(user: User | None, password: str) -> bool:
    """True if ``password`` is the user's; takes as long for an unknown user."""
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and (
            user is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def is_locked(user: User, now: dt.datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or _now())


def note_failure(user: User, settings: AuthSettings, now: dt.datetime | None = None) -> None:
    """Counts a failed password or code; locks the account after ``max_failures``."""
    now = now or _now()
    user.failed_logins += 1
    if user.failed_logins >= settings.max_failures:
        user.locked_until = now + dt.timedelta(minutes=settings.lockout_min)
        user.failed_logins = 0
    user.updated_at = now


def note_success(user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None


# -- the second factor -----------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def seal_totp(keys: DataKeys, secret: str) -> bytes:
    return keys.seal(secret.encode(), TOTP_CONTEXT)


def totp_secret(keys: DataKeys, user: User) -> str | None:
    if user.totp_sealed is None:
        return None
    return keys.open(user.totp_sealed, TOTP_CONTEXT).decode()


def verify_totp(secret: str, code: str, now: dt.datetime | None = None) -> bool:
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return False
    return pyotp.TOTP(secret).verify(code, for_time=now or _now(), valid_window=1)


def new_recovery_codes() -> list[str]:
    return [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]


def use_recovery_code(user: User, code: str) -> bool:
    """Spends one recovery code (each works once)."""
    wanted = sha256(code.strip().lower())
    for stored in user.recovery_hashes:
        if hmac.compare_digest(stored, wanted):
            user.recovery_hashes = [h for h in user.recovery_hashes if h != stored]
            return True
    return False


def enable_mfa(user: User, keys: DataKeys, secret: str) -> list[str]:
    """Turns the second factor on with ``secret``; returns fresh recovery codes (shown once)."""
    codes = new_recovery_codes()
    user.totp_sealed = seal_totp(keys, secret)
    user.mfa_enabled = True
    user.recovery_hashes = [sha256(c) for c in codes]
    user.updated_at = _now()
    return codes


def reset_mfa(user: User) -> None:
    """Removes the second factor; the user enrols again at the next sign-in."""
    user.totp_sealed = None
    user.mfa_enabled = False
    user.recovery_hashes = []
    user.updated_at = _now()


# -- API tokens ------------------------------------------------------------------------

TOKEN_PREFIX = "cl_"


@dataclass(frozen=True)
class IssuedToken:
    id: int
    name: str
    token: str  # shown once, never stored
    scopes: tuple[str, ...]


def parse_scopes(values: list[str]) -> list[Scope]:
    scopes: list[Scope] = []
    for value in values:
        try:
            scopes.append(Scope(value))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise AccountError(f"unknown scope {value!r} (known: {known})") from None
    if not scopes:
        raise AccountError("a token needs at least one scope")
    return sorted(set(scopes))


def add_token(s: Session, name: str, scopes: list[Scope], created_by: str) -> IssuedToken:
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("a token needs a name of 1 to 100 characters")
    if s.exec(select(ApiToken).where(col(ApiToken.name) == name)).first() is not None:
        raise AccountError("a token with this name exists already")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        token_hash=sha256(token),
        scopes=[sc.value for sc in scopes],
        created_by=created_by[:200],
        created_at=_now(),
    )
    s.add(row)
    s.flush()
    assert row.id is not None
    return IssuedToken(row.id, name, token, tuple(row.scopes))


def find_token(s: Session, token: str) -> ApiToken | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = s.exec(select(ApiToken).where(col(ApiToken.token_hash) == sha256(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def revoke_token(s: Session, name: str) -> None:
    row = s.exec(select(ApiToken).where(col(ApiToken.name) == name)).first()
    if row is None:
        raise AccountError("no token with this name")
    row.revoked_at = _now()
    s.add(row)


def list_users(s: Session) -> list[User]:
    return list(s.exec(select(User).order_by(col(User.email))))


def list_tokens(s: Session) -> list[ApiToken]:
    return list(s.exec(select(ApiToken).order_by(col(ApiToken.name))))


def set_disabled(s: Session, user: User, disabled: bool) -> None:
    """A disabled user cannot sign in; their sessions end at their next request."""
    user.disabled = disabled
    user.updated_at = _now()
    s.add(user)


def may_manage(actor_role: Role, target_role: Role) -> bool:
    """Owners manage everyone; admins manage everyone but owners (and cannot make one)."""
    return actor_role is Role.OWNER or (actor_role is Role.ADMIN and target_role is not Role.OWNER)
