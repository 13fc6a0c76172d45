"""Paying sessions through signed provider webhooks, and draining the outbox with the real
handler registry, for the tests of the worker's effects."""

import asyncio
from typing import Any

from sqlalchemy import select, update

from payhook import clock
from payhook.config import Settings
from payhook.db.tables import api_keys, checkout_sessions, outbox_entries
from payhook.effects import HANDLERS, ORDER
from payhook.effects.context import EffectContext
from payhook.outbox.drain import Drainer
from payhook.outbox.retry import RetryPolicy
from tests import signing
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def new_session(client, merchant_id: str, mode: str = "test", **body: Any) -> str:
    """A session of any mode, through the admin API (a new merchant has only a test key)."""
    answer = await client.post("/admin/checkout/sessions", headers=ADMIN, json={
        "merchant_id": merchant_id, "mode": mode, "amount": 1999, "currency": "usd", **body})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def pay(client, session_id: str) -> None:
    raw, headers = signing.signed("onecom", signing.onecom_event(session_id))
    answer = await client.post("/webhooks/onecom", content=raw, headers=headers)
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied", answer.text


async def paid_session(client, merchant_id: str, mode: str = "test", **body: Any) -> str:
    session_id = await new_session(client, merchant_id, mode, **body)
    await pay(client, session_id)
    return session_id


async def drain(app, settings: Settings, workers: int = 1, batch_size: int = 50) -> None:
    """Run every due row with the real registry, by ``workers`` drainers at once."""
    engine = app.state.payhook.engine
    context = EffectContext.build(settings, engine)
    try:
        drainers = [Drainer(engine, HANDLERS, context, RetryPolicy(0.01), order=ORDER,
                            batch_size=batch_size) for _ in range(workers)]
        await asyncio.gather(*(drainer.drain() for drainer in drainers))
    finally:
        await context.close()


async def rerun(app, settings: Settings, *kinds: str) -> None:
    """Simulate redelivery: these kinds' rows back to pending (as after a lost ack), drained
    again."""
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox_entries).where(outbox_entries.c.kind.in_(kinds))
                           .values(status="pending", attempts=0, next_attempt_at=clock.now(),
                                   locked_by=None, locked_until=None))
    await drain(app, settings)


async def session_row(app, session_id: str) -> Any:
    async with app.state.payhook.engine.connect() as conn:
        return (await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id == session_id))).one()


async def provisioned_keys(app, merchant_id: str) -> list[Any]:
    async with app.state.payhook.engine.connect() as conn:
        return list((await conn.execute(select(api_keys).where(
            api_keys.c.merchant_id == merchant_id,
            api_keys.c.provisioned_for.is_not(None)))).all())


async def outbox_rows(app, kind: str) -> list[Any]:
    async with app.state.payhook.engine.connect() as conn:
        return list((await conn.execute(select(outbox_entries).where(
            outbox_entries.c.kind == kind))).all())
