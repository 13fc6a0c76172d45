"""Retention, on PostgreSQL and SQLite: the sweep prunes done outbox rows, delivered deliveries
with their attempts, provider and merchant events past PAYHOOK_RETENTION_DAYS, oldest first and
a bounded batch at a time; what something alive still needs stays whatever its age; and on
PostgreSQL a prune holding its rows never holds up a webhook or another runner's prune."""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from payhook import clock
from payhook.db import tables
from payhook.domain.decisions import DELIVER, NOTIFY, ONCHAIN_CHECK, dedup_key
from payhook.ids import new_id
from payhook.runtime import close_pump, start_pump
from payhook.runtime.pump import sweep
from payhook.services import retention
from tests import flows, signing
from tests.conftest import make_settings
from tests.flows import endpoint_for, finished

KEEP = timedelta(days=30)
AGE = timedelta(days=31)  # past the retention
PRUNED = (tables.outbox_entries, tables.deliveries, tables.delivery_attempts,
          tables.webhook_events, tables.merchant_events)
AGED_COLUMNS = ("created_at", "updated_at", "delivered_at", "attempted_at")


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, allow_private_urls=True)


def engine_of(app) -> AsyncEngine:
    return app.state.payhook.engine


async def ids(engine: AsyncEngine) -> dict[str, set[str]]:
    async with engine.connect() as conn:
        return {table.name: set((await conn.execute(select(table.c.id))).scalars())
                for table in PRUNED}


async def age_everything(engine: AsyncEngine) -> None:
    """Every row the retention looks at, made a month and a day older."""
    async with engine.begin() as conn:  # in Python: SQLite has no portable date arithmetic
        for table in PRUNED:
            aged = [table.c[name] for name in AGED_COLUMNS if name in table.c]
            for row in (await conn.execute(select(table.c.id, *aged))).all():
                await conn.execute(update(table).where(table.c.id == row.id).values({
                    column.name: row._mapping[column.name] - AGE for column in aged
                    if row._mapping[column.name] is not None}))


async def paid_and_delivered(client, app, merchant, drain) -> None:
    await flows.paid_session(client, merchant)
    await flows.drain_until(drain, lambda: sent(app))


async def sent(app) -> bool:
    return await finished(app, NOTIFY) and await finished(app, DELIVER)


async def test_a_month_old_session_s_traces_go_and_today_s_stay(client, app, merchant, server,
                                                              drain):
    await endpoint_for(client, merchant, server)
    await paid_and_delivered(client, app, merchant, drain)
    await age_everything(engine_of(app))
    old = await ids(engine_of(app))
    assert all(old.values()), old  # the flow made a row of each kind
    await paid_and_delivered(client, app, merchant, drain)
    new = {name: made - old[name] for name, made in (await ids(engine_of(app))).items()}

    await sweep(engine_of(app), 10, KEEP)

    assert await ids(engine_of(app)) == new
    assert len(server.received) == 2  # nothing was sent again


def outbox_row(status: str, **fields: Any) -> dict[str, Any]:
    then = clock.now() - AGE
    return {"id": new_id("ob"), "kind": NOTIFY, "payload": {}, "dedup_key": None,
            "status": status, "attempts": 1, "max_attempts": 10, "next_attempt_at": then,
            "locked_by": None, "locked_until": None, "last_error": None, "errors": [],
            "created_at": then, "updated_at": then, **fields}


def provider_event(**fields: Any) -> dict[str, Any]:
    return {"id": new_id("ev"), "provider": "stripe", "event_id": new_id("evt"),
            "type": "payment_intent.succeeded", "session_id": None, "outcome": "unmatched",
            "raw_body": b"{}", "headers": {}, "created_at": clock.now() - AGE, **fields}


def delivery(endpoint_id: str, merchant_id: str, status: str, **fields: Any) -> dict[str, Any]:
    then = clock.now() - AGE
    return {"id": new_id("dl"), "endpoint_id": endpoint_id, "merchant_id": merchant_id,
            "mode": "test", "event_id": new_id("evt"), "type": "webhook_endpoint.test",
            "session_id": None, "body": {}, "status": status, "attempts": 1,
            "created_at": then, "delivered_at": then if status == "delivered" else None,
            **fields}


def attempt(delivery_id: str) -> dict[str, Any]:
    return {"id": new_id("da"), "delivery_id": delivery_id, "attempted_at": clock.now() - AGE,
            "status_code": 200, "duration_ms": 3, "response_snippet": None, "error": None}


async def insert_rows(engine: AsyncEngine, table, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table), rows)


async def test_what_is_still_needed_stays_whatever_its_age(client, app, merchant, server):
    engine = engine_of(app)
    endpoint_id = await endpoint_for(client, merchant, server)
    named, carried, plain, queued = (provider_event() for _ in range(4))
    await insert_rows(engine, tables.webhook_events, [named, carried, plain, queued])
    await insert_rows(engine, tables.anomalies, [{
        "id": new_id("an"), "kind": "late_payment", "session_id": None,
        "event_id": named["id"], "provider": "stripe", "details": {},
        "created_at": clock.now() - AGE}])
    held = {status: delivery(endpoint_id, merchant.id, status)
            for status in ("pending", "failed", "dead", "delivered")}
    resent = delivery(endpoint_id, merchant.id, "delivered")  # delivered, and sent again now
    lately = delivery(endpoint_id, merchant.id, "delivered", delivered_at=clock.now())
    await insert_rows(engine, tables.deliveries, [*held.values(), resent, lately])
    await insert_rows(engine, tables.delivery_attempts, [attempt(row["id"]) for row in
                                                  (*held.values(), resent, lately)])
    # Every row ingest queues names its event; only an on-chain check needs it kept.
    unfinished = [outbox_row(status, payload={"event": queued["id"]})
                  for status in ("pending", "running", "dead")]
    replayed = outbox_row("done", updated_at=clock.now())  # made long ago, done just now
    check = outbox_row("dead", kind=ONCHAIN_CHECK, payload={"event": carried["id"]})
    send = outbox_row("pending", kind=DELIVER, payload={"delivery_id": resent["id"]},
                      dedup_key=dedup_key(DELIVER, {"delivery_id": resent["id"]}))
    await insert_rows(engine, tables.outbox_entries, [*unfinished, replayed, check, send,
                                               outbox_row("done")])
    before = await ids(engine)

    pruned = await retention.prune(engine, clock.now(), KEEP)

    assert pruned == {"outbox_entries": 1, "delivery_attempts": 1, "deliveries": 1,
                      "webhook_events": 2}
    after = await ids(engine)
    assert before["webhook_events"] - after["webhook_events"] == {plain["id"], queued["id"]}
    assert before["deliveries"] - after["deliveries"] == {held["delivered"]["id"]}
    assert len(after["delivery_attempts"]) == len(before["delivery_attempts"]) - 1
    assert {row["id"] for row in (*unfinished, replayed, check, send)} == \
        after["outbox_entries"]


async def test_one_sweep_prunes_a_bounded_batch_oldest_first(app):
    engine = engine_of(app)
    rows = [outbox_row("done", created_at=clock.now() - AGE - timedelta(minutes=n))
            for n in range(7)]
    await insert_rows(engine, tables.outbox_entries, rows)

    assert await retention.prune(engine, clock.now(), KEEP, batch=2, rounds=2) == {
        "outbox_entries": 4}
    assert (await ids(engine))["outbox_entries"] == {row["id"] for row in rows[:3]}
    assert await retention.prune(engine, clock.now(), KEEP, batch=2, rounds=2) == {
        "outbox_entries": 3}
    assert await retention.prune(engine, clock.now(), KEEP, batch=2, rounds=2) == {}


async def test_the_running_pump_keeps_what_the_setting_says(app, database_url):
    engine = engine_of(app)
    then = {days: clock.now() - timedelta(days=days) for days in (45, 61)}
    rows = {days: outbox_row("done", created_at=at, updated_at=at) for days, at in then.items()}
    await insert_rows(engine, tables.outbox_entries, list(rows.values()))
    pump = await start_pump(make_settings(database_url, retention_days=60), engine)
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while rows[61]["id"] in (await ids(engine))["outbox_entries"]:
            assert asyncio.get_running_loop().time() < deadline, "the pump never swept"
            await asyncio.sleep(0.05)
    finally:
        await close_pump(pump)
    assert (await ids(engine))["outbox_entries"] == {rows[45]["id"]}


async def test_a_delivery_goes_once_its_attempts_are_gone(client, app, merchant, server):
    engine = engine_of(app)
    endpoint_id = await endpoint_for(client, merchant, server)
    done = delivery(endpoint_id, merchant.id, "delivered", attempts=3)
    await insert_rows(engine, tables.deliveries, [done])
    await insert_rows(engine, tables.delivery_attempts, [attempt(done["id"]) for _ in range(3)])

    assert await retention.prune(engine, clock.now(), KEEP, batch=2, rounds=1) == {
        "delivery_attempts": 2}
    assert await retention.prune(engine, clock.now(), KEEP, batch=2, rounds=1) == {
        "delivery_attempts": 1, "deliveries": 1}


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_prune_in_progress_holds_up_neither_ingest_nor_another_prune(client, app,
                                                                            merchant):
    engine = engine_of(app)
    rows = [provider_event(created_at=clock.now() - AGE - timedelta(minutes=n))
            for n in range(4)]
    await insert_rows(engine, tables.webhook_events, rows)
    session_id = await flows.new_session(client, merchant)
    rule = retention.RULES["webhook_events"]
    async with engine.connect() as holder:
        transaction = await holder.begin()
        # One runner's batch, its rows locked and not yet committed: the two oldest.
        cutoff = clock.now() - KEEP
        chosen = rule.choose(cutoff).limit(2).with_for_update(skip_locked=True)
        held = set((await holder.execute(chosen)).scalars())
        assert held == {rows[3]["id"], rows[2]["id"]}

        raw, headers = signing.signed("stripe", signing.stripe_event(session_id))
        answer = await asyncio.wait_for(
            client.post("/webhooks/stripe", content=raw, headers=headers), timeout=5)
        assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
        # Another runner's sweep skips the held rows and takes the next ones.
        assert await asyncio.wait_for(
            retention.prune_batch(engine, rule, cutoff, 2), timeout=5) == 2
        await transaction.rollback()
    assert (await ids(engine))["webhook_events"] >= held
