"""Merchant webhooks as separate processes: uvicorn and the arq worker on PostgreSQL and Redis,
or the embedded default (SQLite, the drain inside the web process), against loopback merchant
endpoints verifying with the `standardwebhooks` package. A filter, an endpoint down until its
deliveries are dead and then recovered with their own webhook-ids, a 410 that disables and an
update that sends what was held, all through the public API."""

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
import pytest

from payhook import clock
from tests import signing
from tests.e2e.processes import admin_headers, eventually, service_env, web, worker
from tests.merchant_server import MerchantServer, running


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest) -> str:
    """A migrated database: PostgreSQL (with Redis and a worker) or the embedded SQLite file."""
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql"
                                       else "sqlite_url"))


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_filters_recovery_and_re_enabling_across_processes(database, tmp_path,
                                                                 request):
    env = service_env(database, PAYHOOK_ALLOW_PRIVATE_URLS="true",
                      PAYHOOK_OUTBOX_BACKOFF_SECONDS="0.2", PAYHOOK_OUTBOX_MAX_ATTEMPTS="2")
    async with AsyncExitStack() as stack:
        only_paid = await stack.enter_async_context(running())
        down = await stack.enter_async_context(running())
        if database.startswith("postgresql"):
            env["REDIS_URL"] = request.getfixturevalue("redis_server").url
            drain = await asyncio.to_thread(worker(env, tmp_path / "worker.log").start)
            stack.push_async_callback(asyncio.to_thread, drain.stop)
        server = web(env, tmp_path / "web.log")
        await asyncio.to_thread(server.start)
        stack.push_async_callback(asyncio.to_thread, server.stop)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await _flow(client, only_paid, down)


async def _flow(client: httpx.AsyncClient, only_paid: MerchantServer,
                down: MerchantServer) -> None:
    created = await client.post("/admin/merchants", json={"name": "e2e"},
                                headers=admin_headers())
    merchant = {"Authorization": f"Bearer {created.json()['api_key']['secret']}"}
    await _endpoint(client, merchant, only_paid, enabled_events=["checkout.session.paid"])
    down.answer = 500
    down_id = await _endpoint(client, merchant, down)
    since = (clock.now() - timedelta(seconds=5)).isoformat()

    await _pay(client, merchant)
    await _fail(client, merchant)
    await eventually(lambda: _statuses(client, merchant, down_id, ["dead", "dead"]), 60,
                     "the down endpoint's deliveries to die")
    assert [event["type"] for event in only_paid.verified] == ["checkout.session.paid"]
    tried = {entry.headers["webhook-id"] for entry in down.received}
    assert len(tried) == 2 and len(down.received) == 4  # two tries each

    down.answer = 200
    answer = await client.post(f"/v1/webhook_endpoints/{down_id}/recover", headers=merchant,
                               json={"since": since})
    assert answer.json() == {"object": "recovery", "recovered": 2}, answer.text
    await eventually(lambda: _statuses(client, merchant, down_id, ["delivered"] * 2), 60,
                     "the recovered deliveries")
    recovered = [entry.headers["webhook-id"] for entry in down.received[4:]]
    assert sorted(recovered) == sorted(tried) and all(e.error is None for e in down.received)

    down.answer = 410
    await _pay(client, merchant)
    await eventually(lambda: _disabled(client, merchant, down_id), 60, "the 410 to disable")
    await _pay(client, merchant)  # held while disabled
    await asyncio.sleep(1)
    assert len(down.received) == 7  # 4 failed tries, 2 recovered, the 410; nothing held sent
    down.answer = 200
    enabled = await client.post(f"/v1/webhook_endpoints/{down_id}", headers=merchant,
                                json={"disabled": False})
    assert enabled.json()["status"] == "enabled", enabled.text
    await eventually(lambda: _statuses(client, merchant, down_id, ["delivered"] * 4), 60,
                     "the held deliveries")
    assert len(down.received) == 9 and len({e.headers["webhook-id"] for e in down.received}) == 4
    events = (await client.get("/v1/events?limit=100", headers=merchant)).json()["data"]
    assert {event["id"] for event in events} == {e.headers["webhook-id"] for e in down.received}


async def _endpoint(client, merchant, server: MerchantServer, **fields) -> str:
    answer = await client.post("/v1/webhook_endpoints", headers=merchant,
                               json={"url": server.url, **fields})
    assert answer.status_code == 201, answer.text
    server.secret = answer.json()["secret"]
    return str(answer.json()["id"])


async def _session(client, merchant) -> str:
    answer = await client.post("/v1/checkout/sessions", headers=merchant,
                               json={"amount": 1999, "currency": "usd"})
    return str(answer.json()["id"])


async def _pay(client, merchant, kind: str = "payment_intent.succeeded") -> None:
    raw, headers = signing.signed("stripe", signing.stripe_event(await _session(client, merchant),
                                                                  kind))
    answer = await client.post("/webhooks/stripe", content=raw, headers=headers)
    assert answer.json()["outcome"] == "applied", answer.text


async def _fail(client, merchant) -> None:
    await _pay(client, merchant, "payment_intent.canceled")


async def _statuses(client, merchant, endpoint_id: str, expected: list[str]) -> bool:
    listed = await client.get(f"/v1/deliveries?endpoint={endpoint_id}&limit=100",
                              headers=merchant)
    return sorted(d["status"] for d in listed.json()["data"]) == sorted(expected)


async def _disabled(client, merchant, endpoint_id: str) -> bool:
    shown = await client.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=merchant)
    return bool(shown.json()["disabled_reason"] == "gone")
