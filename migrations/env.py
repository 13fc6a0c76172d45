"""Alembic environment: async engine, payhook's metadata, batch mode so SQLite can alter tables."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from payhook.db.engine import create_engine
from payhook.db.tables import Base


def _url() -> str:
    configured = context.config.attributes.get("database_url")
    if configured:
        return str(configured)
    from payhook.config import Settings

    return Settings().database_url


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        _without_foreign_keys(connection)
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _without_foreign_keys(connection: Connection) -> None:
    """Batch mode rebuilds a SQLite table (copy, drop, rename): with foreign keys enforced, as
    the engine sets them, dropping a table that other rows refer to fails. SQLite reads this
    pragma only outside a transaction, so it goes to the driver's connection before the
    migration's transaction begins."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `payhook migrate`")
asyncio.run(_run_async())
