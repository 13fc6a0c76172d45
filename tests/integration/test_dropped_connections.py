"""On PostgreSQL: once the service's backends are terminated (a failover, an operator's
pg_terminate_backend), both pools replace their dead connections by themselves, and the next
requests succeed at the first try rather than paying for them with a 503."""

import asyncio

import asyncpg
import httpx

from payhook.app import create_app
from tests import signing
from tests.conftest import _dsn, make_settings, new_merchant

BACKENDS = ("SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")


async def terminate_backends(pg_url: str) -> int:
    """Terminate every other backend of the database and wait until each is gone."""
    conn = await asyncpg.connect(_dsn(pg_url))
    try:
        pids = [row["pid"] for row in await conn.fetch(BACKENDS)]
        await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
        while await conn.fetchval(f"SELECT count(*) FROM ({BACKENDS}) AS left_over"):
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return len(pids)


async def pay(client: httpx.AsyncClient, session_id: str) -> httpx.Response:
    raw, headers = signing.signed("stripe", signing.stripe_event(session_id))
    return await client.post("/webhooks/stripe", content=raw, headers=headers)


async def test_pools_replace_terminated_connections_before_a_request_meets_one(pg_url):
    app = create_app(make_settings(pg_url), embedded_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payhook.test") as client:
            merchant = await new_merchant(client)

            async def create() -> httpx.Response:
                return await client.post("/v1/checkout/sessions", headers=merchant.headers,
                                         json={"amount": 1999, "currency": "usd"})

            # Several connections in each pool, all idle once these return.
            sessions = [answer.json()["id"] for answer in await asyncio.gather(
                *(create() for _ in range(8)))]
            assert [answer.status_code for answer in await asyncio.gather(
                *(pay(client, session_id) for session_id in sessions[:4]))] == [200] * 4

            assert await terminate_backends(pg_url) >= 2

            answers = [await create(),
                       await client.get(f"/v1/checkout/sessions/{sessions[0]}",
                                        headers=merchant.headers),
                       *await asyncio.gather(*(pay(client, session_id)
                                               for session_id in sessions[4:]))]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 200, 200], [
        answer.text for answer in answers]
