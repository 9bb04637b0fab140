"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import postgres_server, reset_database


@pytest.fixture(scope="session")
def postgres_base() -> Iterator[str]:
    """One PostgreSQL server for the whole test session."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_base: str) -> str:
    """The URL of an empty PostgreSQL database (the schema is dropped before each test)."""
    reset_database(postgres_base)
    return postgres_base


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'cartline.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
