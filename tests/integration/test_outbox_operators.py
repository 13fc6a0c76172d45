"""Operators' replay: dead rows back to pending with fresh attempts, running rows untouched,
and every replay on the record."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.tables import outbox_entries, outbox_replays
from payhook.errors import Conflict, NotFound
from payhook.outbox import operators, store


@pytest.fixture
async def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def add(engine, kind: str, status: str) -> str:
    entry = store.new_entry(kind, {"session_id": "cs_1"}, clock.now(), 3)
    entry.update(status=status, attempts=3 if status == "dead" else 1,
                 last_error="boom" if status == "dead" else None)
    if status == "running":
        entry.update(locked_by="w1", locked_until=clock.now() + timedelta(seconds=60))
    async with engine.begin() as conn:
        await conn.execute(outbox_entries.insert().values(entry))
    return entry["id"]


async def test_replay_one_dead_row(engine):
    dead = await add(engine, "delivery.send", "dead")
    async with engine.begin() as conn:
        row = await operators.replay_one(conn, dead, "ops@example", "endpoint fixed")
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, "boom")
    async with engine.connect() as conn:
        audit = (await conn.execute(select(outbox_replays))).one()
    assert (audit.actor, audit.reason, audit.entry_ids) == ("ops@example", "endpoint fixed",
                                                            [dead])
    async with engine.begin() as conn:  # claimable again at once
        [entry] = await store.claim_due(conn, "w2", 10, timedelta(seconds=5), clock.now())
    assert entry.id == dead and entry.attempts == 1


@pytest.mark.parametrize("status", ["running", "pending", "done"])
async def test_only_dead_rows_are_replayed(engine, status):
    entry_id = await add(engine, "invoice.create", status)
    async with engine.begin() as conn:
        with pytest.raises(Conflict):
            await operators.replay_one(conn, entry_id, "ops")
    async with engine.connect() as conn:
        row = await operators.get_entry(conn, entry_id)
        assert row.status == status
        assert (await conn.execute(select(outbox_replays))).first() is None


async def test_replay_unknown_is_not_found(engine):
    async with engine.begin() as conn:
        with pytest.raises(NotFound):
            await operators.replay_one(conn, "ob_missing", "ops")


async def test_bulk_replay_by_kind_with_dry_run(engine):
    deliveries = [await add(engine, "delivery.send", "dead") for _ in range(3)]
    other = await add(engine, "invoice.create", "dead")
    running = await add(engine, "delivery.send", "running")
    async with engine.begin() as conn:
        planned = await operators.replay_dead(conn, "ops", kind="delivery.send", dry_run=True)
    assert sorted(planned) == sorted(deliveries)
    async with engine.connect() as conn:
        assert (await operators.get_entry(conn, deliveries[0])).status == "dead"
    async with engine.begin() as conn:
        replayed = await operators.replay_dead(conn, "ops", kind="delivery.send")
    assert sorted(replayed) == sorted(deliveries)
    async with engine.connect() as conn:
        assert (await operators.get_entry(conn, other)).status == "dead"
        assert (await operators.get_entry(conn, running)).status == "running"
        audits = (await conn.execute(select(outbox_replays))).all()
    assert len(audits) == 1 and sorted(audits[0].entry_ids) == sorted(deliveries)
    async with engine.begin() as conn:
        assert await operators.replay_dead(conn, "ops") == [other]
