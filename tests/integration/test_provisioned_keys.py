"""api_key.provision on both databases: one key per (merchant, mode) however many workers race,
none for a merchant that has an active key of the mode, the raw key only sealed, re-runs inert."""

import asyncio
import logging

from sqlalchemy import select

from payhook import clock
from payhook.crypto import Sealer
from payhook.domain.decisions import API_KEY
from payhook.effects.api_keys import provision_keys
from payhook.effects.context import EffectContext
from payhook.outbox.store import Entry
from payhook.services.api_keys import KeyHasher
from tests.conftest import SECRET_KEY
from tests.paying import (
    drain,
    new_session,
    outbox_rows,
    paid_session,
    pay,
    provisioned_keys,
    rerun,
)


async def test_sessions_paid_at_once_provision_exactly_one_key(client, app, settings, merchant):
    sessions = [await new_session(client, merchant.id, "live") for _ in range(8)]
    await asyncio.gather(*(pay(client, session_id) for session_id in sessions))
    await drain(app, settings, workers=4, batch_size=1)
    [key] = await provisioned_keys(app, merchant.id)
    assert key.mode == "live" and key.revoked_at is None
    assert key.provisioned_for in sessions and key.label == f"provisioned for {key.provisioned_for}"
    assert {row.status for row in await outbox_rows(app, API_KEY)} == {"done"}


async def test_racing_writes_insert_one_key(client, app, settings, merchant):
    """The handlers' writes committed side by side: the unique index decides, no error."""
    sessions = [await paid_session(client, merchant.id, "live") for _ in range(6)]
    engine = app.state.payhook.engine
    context = EffectContext.build(settings, engine)
    entries = [Entry(id=f"ob_{n}", kind=API_KEY, payload={"session_id": session_id},
                     attempts=1, max_attempts=1, locked_by="test",
                     created_at=clock.now())
               for n, session_id in enumerate(sessions)]
    writes = [(entry, (await provision_keys(context, [entry])).writes) for entry in entries]
    await context.close()

    # On PostgreSQL every transaction is open before any writes, so each one's "no active
    # key" check runs before another commits; SQLite has one writer (nothing to line up).
    barrier = asyncio.Barrier(len(writes) if engine.dialect.name == "postgresql" else 1)

    async def commit(entry, write):
        async with engine.begin() as conn:
            await conn.execute(select(1))
            if engine.dialect.name == "postgresql":
                await barrier.wait()
            await write(conn, [entry])

    await asyncio.gather(*(commit(entry, write) for entry, write in writes))
    assert len(await provisioned_keys(app, merchant.id)) == 1


async def test_a_merchant_with_an_active_key_of_the_mode_gets_none(client, app, settings,
                                                                   merchant):
    await paid_session(client, merchant.id, "test")  # the merchant's first key is a test key
    await drain(app, settings)
    assert await provisioned_keys(app, merchant.id) == []
    assert [row.status for row in await outbox_rows(app, API_KEY)] == ["done"]


async def test_the_key_is_stored_hashed_and_sealed_and_works(client, app, settings, merchant,
                                                             caplog):
    caplog.set_level(logging.DEBUG)
    session_id = await paid_session(client, merchant.id, "live")
    await drain(app, settings)
    [key] = await provisioned_keys(app, merchant.id)
    raw = Sealer(SECRET_KEY).open(key.sealed_secret)
    assert raw.startswith("sk_live_") and key.prefix == raw[:12]
    assert key.key_hash == KeyHasher(SECRET_KEY).hash(raw)
    assert raw not in caplog.text
    answer = await client.get(f"/v1/checkout/sessions/{session_id}",
                              headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code == 200 and answer.json()["mode"] == "live"


async def test_a_rerun_or_a_later_session_provisions_nothing_more(client, app, settings,
                                                                   merchant):
    await paid_session(client, merchant.id, "live")
    await drain(app, settings)
    [first] = await provisioned_keys(app, merchant.id)
    await rerun(app, settings, API_KEY)
    assert await provisioned_keys(app, merchant.id) == [first]
    # Even once the merchant revoked it: one auto-provisioned key per (merchant, mode), ever;
    # the conflict is "already provisioned", not a failure.
    revoked = await client.delete(f"/v1/api_keys/{first.id}", headers={
        "Authorization": f"Bearer {Sealer(SECRET_KEY).open(first.sealed_secret)}"})
    assert revoked.status_code == 200
    await paid_session(client, merchant.id, "live")
    await drain(app, settings)
    [only] = await provisioned_keys(app, merchant.id)
    assert only.id == first.id and only.revoked_at is not None
    assert {row.status for row in await outbox_rows(app, API_KEY)} == {"done"}
