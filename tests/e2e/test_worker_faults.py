"""The worker as a separate process against PostgreSQL and a Redis of the test's own:
Redis outages and kill -9 lose nothing and duplicate nothing."""

import asyncio
import time

import httpx
import pytest

from tests import signing
from tests.e2e.processes import (
    fetch_value,
    new_merchant,
    service_env,
    wait_for,
    web,
    worker,
)


def query(url: str, sql: str):
    return asyncio.run(fetch_value(url, sql))


DONE = "SELECT count(*) FROM outbox_entries WHERE status = 'done'"
RUNNING = "SELECT count(*) FROM outbox_entries WHERE status = 'running'"
PENDING = "SELECT count(*) FROM outbox_entries WHERE status IN ('pending', 'running')"


def create_sessions(base: str, headers: dict[str, str], count: int) -> list[str]:
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        return [client.post("/v1/checkout/sessions",
                            json={"amount": 1999, "currency": "usd"}).json()["id"]
                for _ in range(count)]


def pay(base: str, session_ids: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for session_id in session_ids:
            raw, headers = signing.signed("stripe", signing.stripe_event(session_id))
            answer = client.post("/webhooks/stripe", content=raw, headers=headers)
            statuses.append(answer.status_code)
    return statuses




@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_redis_outage_delays_nothing_and_kills_nothing(pg_url, redis_server, tmp_path):
    env = service_env(pg_url, REDIS_URL=redis_server.url, PAYHOOK_OUTBOX_LEASE_SECONDS="5")
    server = web(env, tmp_path / "web.log").start()
    drain = worker(env, tmp_path / "worker.log").start()
    try:
        headers = new_merchant(server.url)
        sessions = create_sessions(server.url, headers, 45)
        assert pay(server.url, sessions[:15]) == [200] * 15
        wait_for(lambda: query(pg_url, "SELECT count(*) FROM invoices") == 15, 30,
                 "invoices before the outage")

        redis_server.stop()
        assert pay(server.url, sessions[15:30]) == [200] * 15  # ingest never needs Redis
        wait_for(lambda: query(pg_url, "SELECT count(*) FROM invoices") == 30, 30,
                 "invoices during the outage (the worker's own poll)")
        time.sleep(2)
        assert drain.alive, drain.output()[-2000:]

        redis_server.start()
        time.sleep(1.5)  # the supervisor's backoff, then arq reconnects
        assert pay(server.url, sessions[30:]) == [200] * 15
        wait_for(lambda: query(pg_url, "SELECT count(*) FROM invoices") == 45, 30,
                 "invoices after Redis returned")
        assert drain.alive
        assert query(pg_url, "SELECT count(*) FROM outbox_entries WHERE status <> 'done' "
                             "AND kind = 'invoice.create'") == 0
        assert "restarting" in drain.output()
    finally:
        code = drain.stop()
        server.stop()
    assert code == 0, drain.output()[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_while_draining_loses_and_duplicates_nothing(pg_url, redis_server, tmp_path):
    env = service_env(pg_url, REDIS_URL=redis_server.url, PAYHOOK_OUTBOX_LEASE_SECONDS="3")
    server = web(env, tmp_path / "web.log").start()
    survivor = worker(env, tmp_path / "worker-last.log")
    try:
        headers = new_merchant(server.url)
        sessions = create_sessions(server.url, headers, 300)
        assert set(pay(server.url, sessions)) == {200}
        left_running = []  # rows each victim had claimed and not settled when it was killed
        for round_number in range(6):
            if query(pg_url, PENDING) == 0:
                break  # a victim's batch is up to 1,000 rows: the earlier ones did it all
            victim = worker(env, tmp_path / f"worker-{round_number}.log").start()
            try:
                # Killed just after it starts getting somewhere: in the middle of its batches.
                done = query(pg_url, DONE)
                wait_for(lambda: query(pg_url, DONE) > done, 30, "the victim to drain",  # noqa: B023
                         interval=0.02)
            finally:
                victim.kill()
            left_running.append(query(pg_url, RUNNING))
        # Victims were killed with rows claimed and not settled, which only another worker can
        # finish, once their leases run out.
        assert max(left_running) > 0, left_running
        survivor.start()
        wait_for(lambda: "Starting worker" in survivor.output(), 30, "the survivor's arq")
        wait_for(lambda: query(pg_url, "SELECT count(*) FROM outbox_entries "
                                       "WHERE status IN ('pending', 'running')") == 0,
                 120, "the outbox to drain")
    finally:
        code = survivor.stop()
        server.stop()
    assert code == 0, survivor.output()[-3000:]
    assert query(pg_url, "SELECT count(*) FROM invoices") == 300
    assert query(pg_url, "SELECT count(DISTINCT session_id) FROM invoices") == 300
    assert query(pg_url, "SELECT count(*) FROM checkout_sessions WHERE invoice_id IS NULL") == 0
    assert query(pg_url, "SELECT count(*) FROM outbox_entries WHERE status = 'dead'") == 0
