"""A web application on a real SQLite database, and ways to be signed in as each role."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from agent.campaigns.inbox import Inbox
from agent.campaigns.intake import Intake
from agent.campaigns.scheduler import Scheduler
from agent.campaigns.settings import SchedulerSettings
from agent.config import Settings, parse_settings
from agent.privacy.crypto import DataKeys, add_key, load_keys
from agent.store.db import Database
from agent.web import accounts, auth
from agent.web.access import Role, Scope
from agent.web.app import make_web_app
from tests.campaigns.helpers import Clock
from tests.campaigns.test_scheduler import FakePlacer

PASSWORD = "correct horse battery staple"


class WebServed:
    """The parts of ``cartline serve`` the web application reads, on a real database."""

    def __init__(self, db: Database, settings: Settings, keys: DataKeys) -> None:
        self.db = db
        self.settings = settings
        self.keys: DataKeys | None = keys
        self.inbox = Inbox(db, Intake(db, settings, Clock()))
        self.scheduler = Scheduler(db, SchedulerSettings(), settings.campaigns, FakePlacer())
        self.ready = True


@dataclass
class Web:
    client: TestClient[Any, Any]
    db: Database
    served: WebServed

    async def user(
        self, role: Role, email: str | None = None, campaigns: list[str] | None = None
    ) -> int:
        """Adds a user with ``PASSWORD``; returns its id."""
        address = email or f"{role.value}-{os.urandom(3).hex()}@shop.example"

        def add(s: Any) -> int:
            user = accounts.add_user(s, address, PASSWORD, role, campaigns=campaigns)
            assert user.id is not None
            return user.id

        return await self.db.run(add)

    async def sign_in_as(self, role: Role, campaigns: list[str] | None = None) -> str:
        """A full session (past the second factor) for a new user of ``role``; returns its
        CSRF token. The cookie is set on the client."""
        user_id = await self.user(role, campaigns=campaigns)
        key, csrf = await self.db.run(lambda s: auth.new_session(s, user_id, mfa_passed=True))
        self.set_cookie(key)
        return csrf

    def set_cookie(self, key: str) -> None:
        """Sets the session cookie as the server would (for this host)."""
        self.client.session.cookie_jar.update_cookies(
            {auth.SESSION_COOKIE: key}, response_url=URL(str(self.client.make_url("/")))
        )

    async def token(self, *scopes: Scope, name: str | None = None) -> str:
        label = name or f"token-{os.urandom(3).hex()}"
        issued = await self.db.run(
            lambda s: accounts.add_token(s, label, list(scopes), created_by="test")
        )
        return issued.token

    def sign_out(self) -> None:
        self.client.session.cookie_jar.clear()


def web_settings(**web: Any) -> Settings:
    # Test clients speak plain HTTP to 127.0.0.1, so the cookie cannot be HTTPS-only here.
    web.setdefault("auth", {}).setdefault("secure_cookies", False)
    return parse_settings({"web": web, "campaigns": [{"name": "recovery"}, {"name": "winback"}]})


@pytest.fixture
def data_keys(tmp_path: Path) -> DataKeys:
    key_file = tmp_path / "keys"
    add_key(key_file)
    return load_keys(key_file)


@pytest.fixture
async def web(tmp_path: Path, data_keys: DataKeys) -> AsyncIterator[Web]:
    db = Database(f"sqlite:///{tmp_path / 'web.db'}")
    db.migrate()
    served = WebServed(db, web_settings(), data_keys)
    async with TestClient(TestServer(make_web_app(served))) as client:
        yield Web(client, db, served)
    db.close()
