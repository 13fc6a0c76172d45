"""Engines for PostgreSQL (asyncpg) and the embedded SQLite file (aiosqlite).

SQLite needs care: pysqlite's own transaction handling silently loses updates,
so SQLAlchemy's is switched off and every transaction starts with ``BEGIN IMMEDIATE`` (one writer
at a time, waiting up to the busy timeout), in WAL mode so readers never block the writer.
The database file is created owner-only before the first connection (it holds access links and
customers' data); SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.

Statement parameters never appear in an error's text (``hide_parameters``): such text is logged
and kept on outbox rows, and parameters hold e-mail addresses and secrets.
"""

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# A process's connections to PostgreSQL, at most. The engine's pool holds half of what it is
# given and opens as many again in overflow; a web process gives RAW_INGEST_CONNECTIONS to the
# webhook writer's raw asyncpg pool (payhook.ingest.postgres) and the rest to its engine.
CONNECTION_BUDGET = 40
RAW_INGEST_CONNECTIONS = 20

MIN_SQLITE = (3, 35, 0)  # UPDATE … RETURNING
SQLITE_BUSY_TIMEOUT_MS = 15_000


class StorageError(Exception):
    """The database cannot be used as configured."""


def create_engine(url: str, *, pool_size: int = CONNECTION_BUDGET // 2) -> AsyncEngine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=10, pool_pre_ping=False,
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection that asyncpg saw closed while idle (its backend terminated, the server
    restarted) is replaced at checkout, so that no request pays for it with a 503: what
    ``pool_pre_ping`` does for this case, without its round trip on every checkout."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _sqlite_engine(url: str) -> AsyncEngine:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise StorageError(
            f"SQLite {sqlite3.sqlite_version} is too old: payhook needs 3.35 or newer (RETURNING)"
        )
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                                 hide_parameters=True)
    path = make_url(url).database

    @event.listens_for(engine.sync_engine, "do_connect")
    def _create_private(*_args: Any) -> None:
        if path:
            create_private_file(path)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get("payhook_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def create_private_file(path: str) -> None:
    """Create ``path`` readable and writable by its owner only, whatever the umask, unless it
    exists (an existing file keeps the mode its operator gave it)."""
    try:
        created = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except (FileExistsError, FileNotFoundError):
        return  # no such directory: SQLite's own error says so on connect
    try:
        os.fchmod(created, 0o600)  # exactly: an odd umask must not take the owner's rights
    finally:
        os.close(created)


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction: on SQLite a deferred ``BEGIN`` so readers run side by side."""
    async with engine.connect() as conn:
        await conn.execution_options(payhook_read_only=True)
        async with conn.begin():
            yield conn
