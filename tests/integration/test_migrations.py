"""The migrated schema equals the models, on both backends; migrations run twice harmlessly."""

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, text
from sqlalchemy.schema import CreateIndex

from payhook.db.engine import create_engine
from payhook.db.migrate import upgrade_async
from payhook.db.tables import Base

# SQLAlchemy cannot reflect SQLite's expression indexes, so alembic skips them there (with
# these warnings); the test below compares them by their SQL instead.
SKIPPED_ON_SQLITE = ("Skipped unsupported reflection of expression-based index",
                     "autogenerate skipping metadata-specified expression-based index")


async def test_migrated_schema_matches_the_models(database_url):
    await upgrade_async(database_url)  # already at head: a second run changes nothing
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            with warnings.catch_warnings():
                if engine.dialect.name == "sqlite":
                    for message in SKIPPED_ON_SQLITE:
                        warnings.filterwarnings("ignore", message)
                differences = await conn.run_sync(lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}),
                    Base.metadata))
    finally:
        await engine.dispose()
    assert differences == []


async def test_expression_indexes_are_the_models_own_on_sqlite(sqlite_url):
    """Each expression index the models declare exists, in the very SQL the models compile
    to (the story's queries match it only if the expressions are the same)."""
    await upgrade_async(sqlite_url)
    engine = create_engine(sqlite_url)
    expected = {index.name: str(CreateIndex(index).compile(dialect=engine.dialect))
                for table in Base.metadata.tables.values() for index in table.indexes
                if not all(isinstance(expression, Column) for expression in index.expressions)}
    assert set(expected) == {"ix_outbox_entries_payload_session_id",
                             "ix_outbox_entries_payload_tx_hash",
                             "ix_checkout_sessions_customer_email_lower"}
    try:
        async with engine.connect() as conn:
            found = dict((await conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"))).all())
    finally:
        await engine.dispose()
    for name, sql in expected.items():
        assert _words(found[name]) == _words(sql), name


def _words(sql: str) -> str:
    return " ".join(sql.replace('"', "").replace("(", " ( ").replace(")", " ) ").split()).lower()


async def test_0007_carries_endpoints_deliveries_and_their_outbox_rows_over(database_url):
    """Rows written before 0007: every endpoint receives every type, a 410'd one is ``gone``,
    a delivery that ended is ``dead`` and one still retrying ``failed``, each send row gets
    its dedup key, and the events already sent are listed."""
    import asyncio
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import column, select, table

    from payhook.db.migrate import alembic_config
    from payhook.db.tables import deliveries, merchant_events, outbox_entries, webhook_endpoints
    from payhook.db.types import JSONDocument, UTCDateTime

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0006")
    now = datetime(2026, 11, 30, tzinfo=UTC)
    old_deliveries = table("deliveries", *(column(name) for name in (
        "id", "endpoint_id", "event_id", "type", "session_id", "status", "attempts")),
        column("body", JSONDocument), column("created_at", UTCDateTime()))
    old_outbox = table("outbox_entries", *(column(name) for name in (
        "id", "kind", "status", "attempts", "max_attempts")), column("payload", JSONDocument),
        column("errors", JSONDocument), *(column(name, UTCDateTime()) for name in (
            "next_attempt_at", "created_at", "updated_at")))
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(table("merchants", column("id"), column("name"),
                                     column("created_at", UTCDateTime())).insert(),
                               [{"id": "mer_1", "name": "Old", "created_at": now}])
            await conn.execute(table(
                "webhook_endpoints", *(column(name) for name in (
                    "id", "merchant_id", "mode", "url", "sealed_secret", "status",
                    "disabled_reason")), column("created_at", UTCDateTime()),
                column("updated_at", UTCDateTime())).insert(), [
                {"id": f"we_{n}", "merchant_id": "mer_1", "mode": "test",
                 "url": f"https://shop.example/{n}", "sealed_secret": b"s", "status": status,
                 "disabled_reason": reason, "created_at": now, "updated_at": now}
                for n, (status, reason) in enumerate(
                    [("enabled", None), ("disabled", "answered 410 Gone to delivery …")])])
            await conn.execute(old_deliveries.insert(), [
                {"id": f"dl_{n}", "endpoint_id": "we_0", "event_id": f"evt_{n}",
                 "type": "checkout.session.paid", "session_id": f"cs_{n}", "status": status,
                 "attempts": attempts, "body": {"id": f"evt_{n}"}, "created_at": now}
                for n, (status, attempts) in enumerate(
                    [("delivered", 1), ("failed", 10), ("pending", 2), ("pending", 0)])])
            await conn.execute(old_outbox.insert(), [
                {"id": "ob_2", "kind": "delivery.send", "status": "pending", "attempts": 2,
                 "max_attempts": 10, "payload": {"delivery_id": "dl_2", "session_id": "cs_2"},
                 "errors": [], "next_attempt_at": now, "created_at": now, "updated_at": now}])
        await upgrade_async(database_url)
        async with engine.connect() as conn:
            endpoints = (await conn.execute(select(webhook_endpoints)
                                            .order_by(webhook_endpoints.c.id))).all()
            assert [(e.enabled_events, e.disabled_reason) for e in endpoints] == [
                (["*"], None), (["*"], "gone")]
            carried = (await conn.execute(select(deliveries).order_by(deliveries.c.id))).all()
            assert [d.status for d in carried] == ["delivered", "dead", "failed", "pending"]
            assert {(d.merchant_id, d.mode) for d in carried} == {("mer_1", "test")}
            assert await conn.scalar(select(outbox_entries.c.dedup_key)) == (
                "delivery.send:dl_2")
            listed = (await conn.execute(select(merchant_events.c.id, merchant_events.c.body)
                                         .order_by(merchant_events.c.id))).all()
            assert [(e.id, e.body) for e in listed] == [(f"evt_{n}", {"id": f"evt_{n}"})
                                                        for n in range(4)]
    finally:
        await engine.dispose()
