"""Dropped database connections, as real processes: while every backend of the service's
database is terminated every 0.3 s, each request gets 200 or 503 (never a 500, never no answer),
a retried 503 applies exactly once, the worker settles its rows or leaves them for the lease
(never half-done), and the web process's two pools and the worker recover by themselves."""

import asyncio
import contextlib
import itertools
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from tests import signing
from tests.conftest import _dsn
from tests.e2e.processes import (
    count,
    eventually,
    merchant_with_endpoint,
    service_env,
    web,
    worker,
)
from tests.merchant_server import running

WEBHOOKS = 80
IN_FLIGHT = 8
TERMINATE_EVERY = 0.3
ROUNDS_WHILE_DRAINING = 10  # the worker meets the fault too, with most of its rows in hand
RETRIES = 40
FRESH = 5

TERMINATE = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid()")
OK = (200, 201)


@dataclass
class Call:
    """One request, sent again as is on a 503 (a webhook re-signed, as its provider would)."""

    method: str
    path: str
    build: Callable[[], tuple[bytes | None, dict[str, str]]]
    answers: list[int | str] = field(default_factory=list)
    body: Any = None


def webhook(provider: str, session_id: str) -> Call:
    event = (signing.stripe_event(session_id) if provider == "stripe"
             else signing.onecom_event(session_id))
    return Call("POST", f"/webhooks/{provider}", lambda: signing.signed(provider, event))


def merchant_calls(merchant: dict[str, str], session_id: str) -> list[Call]:
    """A read, and a create that a retry must not create twice (its Idempotency-Key)."""
    headers = {**merchant, "Idempotency-Key": f"faults-{uuid.uuid4().hex}",
               "Content-Type": "application/json"}
    body = signing.encode({"amount": 500, "currency": "usd", "metadata": {"from": "faults"}})
    return [Call("GET", f"/v1/checkout/sessions/{session_id}", lambda: (None, merchant)),
            Call("POST", "/v1/checkout/sessions", lambda: (body, headers))]


async def send(client: httpx.AsyncClient, call: Call) -> int | str:
    content, headers = call.build()
    try:
        answer = await client.request(call.method, call.path, content=content, headers=headers)
    except httpx.HTTPError as error:  # no answer: a reset, a timeout
        call.answers.append(type(error).__name__)
        return call.answers[-1]
    call.answers.append(answer.status_code)
    if answer.status_code in OK:
        call.body = answer.json()
    return answer.status_code


async def terminate_backends(pg_url: str, stop: asyncio.Event) -> int:
    """Every TERMINATE_EVERY seconds, every other backend of the database: the web process's
    two pools and the worker's alike. Returns how many it terminated."""
    conn = await asyncpg.connect(_dsn(pg_url))
    killed = 0
    try:
        while not stop.is_set():
            killed += sum(1 for row in await conn.fetch(TERMINATE) if row[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TERMINATE_EVERY)
    finally:
        await conn.close()
    return killed


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_terminated_backends_give_200_or_503_and_apply_once(pg_url, redis_server,
                                                                   tmp_path):
    env = service_env(pg_url, REDIS_URL=redis_server.url, PAYHOOK_ALLOW_PRIVATE_URLS="true",
                      PAYHOOK_OUTBOX_LEASE_SECONDS="3", PAYHOOK_OUTBOX_BACKOFF_SECONDS="0.5")
    async with running() as endpoint:
        server = await asyncio.to_thread(web(env, tmp_path / "web.log").start)
        drain = await asyncio.to_thread(worker(env, tmp_path / "worker.log").start)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
                await _faults_then_check(client, pg_url, endpoint)
        finally:
            code = await asyncio.to_thread(drain.stop)
            await asyncio.to_thread(server.stop)
    assert code == 0, drain.output()[-3000:]
    # Nothing escaped the app (uvicorn then closes the connection: the client's next request
    # on it gets no answer).
    assert "Exception in ASGI application" not in server.output(), server.output()[-5000:]


async def _faults_then_check(client: httpx.AsyncClient, pg_url: str, endpoint) -> None:
    merchant = await merchant_with_endpoint(client, endpoint)
    sessions = [(await client.post("/v1/checkout/sessions", headers=merchant,
                                   json={"amount": 1999, "currency": "usd"})).json()["id"]
                for _ in range(WEBHOOKS + 1)]
    reference, sessions = sessions[0], sessions[1:]
    assert await send(client, webhook("stripe", reference)) == 200  # its rows are the norm

    webhooks = [webhook(("stripe", "onecom")[n % 2], session_id)
                for n, session_id in enumerate(sessions)]
    api = [call for session_id in sessions[::2] for call in merchant_calls(merchant, session_id)]
    calls = [call for call in itertools.chain(*itertools.zip_longest(webhooks, api)) if call]

    stop = asyncio.Event()
    terminator = asyncio.create_task(terminate_backends(pg_url, stop))
    room = asyncio.Semaphore(IN_FLIGHT)

    async def limited(call: Call) -> None:
        async with room:
            await send(client, call)

    await asyncio.sleep(TERMINATE_EVERY)  # a first round has run
    began = asyncio.get_running_loop().time()
    await asyncio.gather(*(limited(call) for call in calls))
    burst = asyncio.get_running_loop().time() - began
    await asyncio.sleep(ROUNDS_WHILE_DRAINING * TERMINATE_EVERY)
    stop.set()
    killed = await terminator

    first = Counter(call.answers[0] for call in calls)
    print(f"\nrequests {len(calls)} in {burst:.1f} s, backends terminated {killed}, "
          f"first answers {dict(first)}")
    assert first[503] > 0  # the fault reached the requests

    # The pools recovered by themselves: the first requests after the fault succeed at once,
    # none meets a connection the fault left dead.
    fresh = [await client.post("/v1/checkout/sessions", headers=merchant,
                               json={"amount": 1999, "currency": "usd"}) for _ in range(FRESH)]
    fresh_paid = [await send(client, webhook("stripe", answer.json()["id"]))
                  for answer in fresh if answer.status_code == 201]

    for call in (call for call in calls if call.answers[0] == 503):
        for _ in range(RETRIES):
            if await send(client, call) in OK:
                break
            await asyncio.sleep(0.2)
    print(f"retried {first[503]}, retries {sum(len(call.answers) - 1 for call in calls)}, "
          f"last answers {dict(Counter(call.answers[-1] for call in calls))}")
    unanswered = [(call.method, call.path, call.answers) for call in calls
                  if set(call.answers) - {*OK, 503}]
    assert not unanswered, unanswered
    assert all(call.answers[-1] in OK for call in calls)
    assert [answer.status_code for answer in fresh] + fresh_paid == [201] * FRESH + [200] * FRESH

    paid = [reference, *sessions, *(answer.json()["id"] for answer in fresh)]

    # Every 200 has its effects, and a retried 503 applied once.
    assert await count(pg_url, "SELECT count(*) FROM checkout_sessions "
                               "WHERE status = 'paid'") == len(paid)
    assert await count(pg_url, "SELECT count(*) FROM webhook_events") == len(paid)
    assert await count(pg_url, "SELECT count(DISTINCT (provider, event_id)) "
                               "FROM webhook_events") == len(paid)
    made = [call.body["id"] for call in api if call.method == "POST"]
    assert len(set(made)) == len(made)
    assert await count(pg_url, "SELECT count(*) FROM checkout_sessions "
                               "WHERE metadata->>'from' = 'faults'") == len(made)

    # The worker settled every row, each effect once.
    await eventually(lambda: _settled(pg_url), 120, "every outbox row done")
    assert await count(pg_url, "SELECT count(*) FROM invoices") == len(paid)
    assert await count(pg_url, "SELECT count(DISTINCT session_id) FROM invoices") == len(paid)
    assert await count(pg_url, "SELECT count(*) FROM deliveries "
                               "WHERE status = 'delivered'") == len(paid)
    rows = await _rows_by_session(pg_url)
    assert {session: rows.get(session) for session in paid} == dict.fromkeys(
        paid, rows[reference])
    delivered = {event["data"]["session"]["id"] for event in endpoint.verified
                 if event["type"] == "checkout.session.paid"}
    assert delivered == set(paid)


async def _settled(pg_url: str) -> bool:
    return await count(pg_url, "SELECT count(*) FROM outbox_entries WHERE status <> 'done'") == 0


async def _rows_by_session(pg_url: str) -> dict[str, Counter[str]]:
    conn = await asyncpg.connect(_dsn(pg_url))
    try:
        records = await conn.fetch("SELECT payload->>'session_id' AS session_id, kind "
                                   "FROM outbox_entries")
    finally:
        await conn.close()
    rows: dict[str, Counter[str]] = {}
    for record in records:
        rows.setdefault(record["session_id"], Counter())[record["kind"]] += 1
    return rows


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_500_keeps_the_connection_for_the_next_request(pg_url, tmp_path):
    """An unexpected error is answered (500, logged) and goes no further: uvicorn closes the
    connection of an app that raised, and the client's next request on it got no answer."""
    conn = await asyncpg.connect(_dsn(pg_url))
    try:
        await conn.execute("DROP TABLE anomalies CASCADE")  # a bug's stand-in: a missing table
    finally:
        await conn.close()
    server = await asyncio.to_thread(web(service_env(pg_url), tmp_path / "web.log").start)
    try:
        answers = await asyncio.to_thread(_two_requests_on_one_connection, server.port)
    finally:
        await asyncio.to_thread(server.stop)
    assert answers == [500, 200], (answers, server.output()[-2000:])
    assert "Exception in ASGI application" not in server.output()


def _two_requests_on_one_connection(port: int) -> list[int | str]:
    import http.client

    from tests.conftest import ADMIN_TOKEN

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers: list[int | str] = []
    try:
        for path, headers in (("/admin/anomalies", {"Authorization": f"Bearer {ADMIN_TOKEN}"}),
                              ("/healthz", {})):
            try:
                connection.request("GET", path, headers=headers)
                answer = connection.getresponse()
                answer.read()
                answers.append(answer.status)
            except OSError as error:  # RemoteDisconnected, a reset: no answer
                answers.append(type(error).__name__)
    finally:
        connection.close()
    return answers
