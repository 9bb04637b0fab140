"""Settings of the HTTP server: listening address, sign-in rules, metrics, webhooks out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthSettings(_Section):
    """Sign-in to the dashboard: sessions, lock-out, second factor."""

    # Send the session cookie over HTTPS only. Browsers accept it on http://localhost too;
    # turn it off only for a plain-HTTP address other than the local machine.
    secure_cookies: bool = True
    session_idle_min: int = Field(60, ge=1, le=24 * 60)
    session_max_h: int = Field(12, ge=1, le=24 * 30)
    # Failed sign-ins (wrong password or code) before an account is locked, and for how long.
    max_failures: int = Field(5, ge=1, le=100)
    lockout_min: int = Field(15, ge=1, le=24 * 60)
    # Sign-in attempts per client address per minute, whatever the account.
    attempts_per_min: int = Field(20, ge=1, le=10_000)
    # The issuer shown in authenticator apps.
    totp_issuer: str = Field("Cartline", min_length=1, max_length=60)
    # Roles that must sign in with a second factor (TOTP). Owners and admins may be left
    # out only while the server listens on this machine alone (the demo does that).
    mfa_roles: tuple[Literal["owner", "admin", "analyst", "agent"], ...] = ("owner", "admin")


class OutcomeWebhookSettings(_Section):
    """A CRM or other system told of every call outcome (a signed POST, retried until 2xx)."""

    url: HttpUrl
    secret: SecretStr
    # Only these campaigns; empty means all.
    campaigns: tuple[str, ...] = ()


class WebSettings(_Section):
    """The HTTP server: webhooks in, the API, the dashboard and the metrics."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_body_kb: int = Field(1024, ge=1)
    # The address people use to reach the dashboard (behind a proxy: the proxy's); cross-site
    # form posts are refused by comparing the Origin header with it. Empty: the Host header.
    public_url: HttpUrl | None = None
    auth: AuthSettings = AuthSettings()
    # /metrics for Prometheus: "loopback" answers scrapes from this machine only, "token" wants
    # an API token with the metrics:read scope from anywhere, "off" serves nothing.
    metrics: Literal["loopback", "token", "off"] = "loopback"
    outcome_webhooks: tuple[OutcomeWebhookSettings, ...] = ()

    @model_validator(mode="after")
    def _second_factor(self) -> WebSettings:
        missing = {"owner", "admin"} - set(self.auth.mfa_roles)
        if missing and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"auth.mfa_roles leaves out {', '.join(sorted(missing))}: that is allowed only "
                "while web.host is a loopback address (127.0.0.1, ::1, localhost)"
            )
        return self
