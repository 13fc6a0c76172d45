"""The SQLite engine refuses versions without RETURNING and takes the write lock up front."""

import sqlite3

import pytest
from sqlalchemy import text

from payhook.db import engine as engines


def test_old_sqlite_is_refused(monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(engines.StorageError, match="3.34.1 is too old"):
        engines.create_engine("sqlite+aiosqlite:///unused.db")


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    engine = engines.create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        async with engine.begin() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA busy_timeout")) == engines.SQLITE_BUSY_TIMEOUT_MS
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()


async def test_sqlite_writers_do_not_lose_updates(tmp_path):
    """Measured: without BEGIN IMMEDIATE, 10 concurrent read-then-write transactions lost 9."""
    import asyncio

    engine = engines.create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE counter (n INTEGER)"))
            await conn.execute(text("INSERT INTO counter VALUES (0)"))

        async def increment() -> None:
            async with engine.begin() as conn:
                current = await conn.scalar(text("SELECT n FROM counter"))
                await asyncio.sleep(0.01)
                await conn.execute(text("UPDATE counter SET n = :n"), {"n": current + 1})

        await asyncio.gather(*[increment() for _ in range(10)])
        async with engines.reading(engine) as conn:
            assert await conn.scalar(text("SELECT n FROM counter")) == 10
    finally:
        await engine.dispose()


async def test_sqlite_files_are_created_owner_only(tmp_path):
    """SQLite gives -wal and -shm the database file's mode: the file is created 0600 first."""
    import os

    previous = os.umask(0o022)
    engine = engines.create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        modes = {path.name: oct(path.stat().st_mode & 0o777) for path in tmp_path.iterdir()}
    finally:
        await engine.dispose()
        os.umask(previous)
    assert modes == dict.fromkeys(["x.db", "x.db-wal", "x.db-shm"], "0o600")
