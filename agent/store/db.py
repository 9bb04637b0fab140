"""The database: an engine, its migrations, and a worker thread pool that keeps the loop free.

SQLite (one file, nothing to start) is the default; PostgreSQL is used when
``store.url`` names one. Every query runs in :meth:`Database.run`, off the event
loop: one thread for SQLite (it has one writer anyway), a few for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from agent.errors import CartlineError

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseError(CartlineError):
    """The database cannot be opened, reached or migrated."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Transactions are begun by _sqlite_begin, not by the driver.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock at the start: a transaction that reads and then writes
    # would otherwise fail at once ("database is locked") when another connection
    # wrote in between, instead of waiting its turn.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with the settings Cartline relies on."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            "store.url is not a database URL (e.g. postgresql+psycopg://user:pw@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kw: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if database in ("", ":memory:"):
            kw["poolclass"] = StaticPool
        engine = create_engine(parsed, echo=echo, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=8)
    raise DatabaseError("store.url must name a SQLite or PostgreSQL database")


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("agent.store") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Brings the schema to the newest migration (a no-op when it is there already)."""
    try:
        with engine.begin() as conn:
            cfg = _alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise DatabaseError(f"the database cannot be reached or migrated: {exc.orig}") from None


def schema_is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


class Database:
    """The engine plus the threads its queries run on."""

    def __init__(self, url: str, *, echo: bool = False, threads: int | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        n = threads or (1 if self.is_sqlite else 4)
        self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="cartline-db")

    def migrate(self) -> None:
        migrate(self.engine)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, or rolled back."""
        with Session(self.engine, expire_on_commit=False) as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def call(self, fn: Callable[[Session], T]) -> T:
        """Runs ``fn`` in one transaction, in this thread."""
        with self.session() as s:
            return fn(s)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Runs ``fn`` in one transaction on a database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.call, fn)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()
