"""Merchant webhooks end to end on PostgreSQL and SQLite: a session is paid (or fails) through a
signed provider webhook, the outbox is drained in this process, and a real HTTP server on a
loopback port receives the event and verifies it with the `standardwebhooks` package.
"""

import ipaddress
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest
from sqlalchemy import func, select, update

from payhook import clock, net
from payhook.crypto import Sealer
from payhook.db.tables import (
    deliveries,
    delivery_attempts,
    outbox_entries,
    webhook_endpoints,
)
from payhook.domain.decisions import ACCESS_LINK, FAILED, NOTIFY, PAID
from payhook.effects.context import OriginGates
from payhook.effects.deliveries import DELIVER
from payhook.effects.transport import merchant_client
from payhook.ids import new_id
from payhook.outbox.drain import NotReady
from payhook.outbox.retry import RetryPolicy
from tests import flows
from tests.conftest import SECRET_KEY, make_settings
from tests.flows import endpoint_for, finished, outbox_row, table
from tests.merchant_server import running

MAX_ATTEMPTS = 3


@pytest.fixture
def settings(database_url):
    """The merchant server listens on loopback, so private URLs are allowed here (one test
    turns the check back on for the delivery)."""
    return make_settings(database_url, allow_private_urls=True,
                         outbox_max_attempts=MAX_ATTEMPTS)


async def test_a_paid_session_is_delivered_once_signed_with_invoice_and_link(
        client, app, merchant, other_merchant, server, drain):
    endpoint_id = await endpoint_for(client, merchant, server)
    live = await flows.live_account(app, merchant)
    # Endpoints of another merchant and of the other mode never hear of this session.
    moved = server.url.replace("/hook", "/moved")
    for stranger, url in ((other_merchant, moved), (live, moved.replace("http:", "https:"))):
        answer = await client.post("/v1/webhook_endpoints", headers=stranger.headers,
                                   json={"url": url})
        assert answer.status_code == 201, answer.text
    session_id = await flows.paid_session(client, merchant)

    await flows.drain_until(drain, lambda: finished(app, DELIVER))

    [event] = server.verified
    assert [entry.error for entry in server.received] == [None]
    [received] = server.received
    assert received.headers["webhook-id"] == event["id"] and event["id"].startswith("evt_")
    assert received.headers["content-type"] == "application/json"
    assert event["type"] == PAID and set(event) == {"id", "type", "created_at", "data"}
    data = event["data"]
    session = (await client.get(f"/v1/checkout/sessions/{session_id}",
                                headers=merchant.headers)).json()
    [invoice] = (await client.get("/v1/invoices", headers=merchant.headers)).json()["data"]
    assert data["session"] == session and data["invoice"] == invoice
    assert data["customer_access"] == session["customer_access"]
    assert data["customer_access"]["url"].startswith(f"http://payhook.test/access/{session_id}")
    assert server.redirects_followed == 0

    [delivery] = await table(app, deliveries)
    assert (delivery.endpoint_id, delivery.event_id, delivery.status, delivery.attempts) == (
        endpoint_id, event["id"], "delivered", 1)
    assert delivery.delivered_at is not None
    [attempt] = await table(app, delivery_attempts)
    assert (attempt.delivery_id, attempt.status_code, attempt.error) == (delivery.id, 200, None)
    assert attempt.duration_ms >= 0 and attempt.response_snippet.startswith("answer 200")
    assert len(attempt.response_snippet) == 1024  # the first KiB of the answer

    # The notification runs again (a replay, a worker that lost its lease): same event, no
    # second delivery.
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox_entries).where(outbox_entries.c.kind == NOTIFY)
                           .values(status="pending", attempts=0))
    await flows.drain_until(drain, lambda: finished(app, NOTIFY))
    async with app.state.payhook.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(deliveries)) == 1
        assert await conn.scalar(select(func.count()).select_from(outbox_entries).where(
            outbox_entries.c.kind == DELIVER)) == 1
    assert len(server.received) == 1


@pytest.mark.parametrize("status", [500, 302, 429])
async def test_a_failing_endpoint_is_retried_with_backoff_then_dead(client, app, merchant,
                                                                    server, drain, status):
    server.answer = status
    await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    await drain.drain()  # the notification, then the first try of its delivery

    for attempt in range(1, MAX_ATTEMPTS + 1):
        row = await outbox_row(app, DELIVER)
        assert row.attempts == attempt and str(status) in row.last_error
        if attempt < MAX_ATTEMPTS:  # backing off: not due again for about a minute
            assert row.status == "pending"
            assert (row.next_attempt_at - row.updated_at).total_seconds() > 30
            assert await drain.drain() == 0
            await flows.make_due(app.state.payhook.engine)
            await drain.drain()
    assert row.status == "dead" and [e["attempt"] for e in row.errors] == [1, 2, 3]

    assert len(server.verified) == MAX_ATTEMPTS and server.redirects_followed == 0
    assert len({entry.headers["webhook-id"] for entry in server.received}) == 1
    attempts = await table(app, delivery_attempts)
    assert [a.status_code for a in attempts] == [status] * MAX_ATTEMPTS
    assert all(str(status) in a.error and len(a.response_snippet) <= 1024 for a in attempts)
    [delivery] = await table(app, deliveries)
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == (
        "dead", MAX_ATTEMPTS, None)


@pytest.mark.parametrize(("status", "retry_after", "wait"), [
    (503, "600", 600),  # later than the backoff (about 60 s here): the endpoint's wish
    (429, "HTTP-DATE", 900),
    (429, "5", 60),  # sooner than the backoff: the backoff
    (500, "600", 60),  # only 429 and 503 are read
    (503, "999999999999999999999", 3600),  # capped at an hour
    (503, "soon", 60),  # unreadable: the backoff
])
async def test_retry_after_is_honoured_within_limits(client, app, merchant, server, drain,
                                                     status, retry_after, wait):
    server.answer = status
    server.retry_after = (format_datetime(clock.now() + timedelta(seconds=900), usegmt=True)
                          if retry_after == "HTTP-DATE" else retry_after)
    await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    await drain.drain()
    row = await outbox_row(app, DELIVER)
    assert (row.status, row.attempts) == ("pending", 1)
    waited = (row.next_attempt_at - row.updated_at).total_seconds()
    assert wait * 0.85 <= waited <= wait * 1.1 + 1, waited


async def test_410_gone_disables_the_endpoint_and_holds_the_delivery(client, app, merchant,
                                                                     server, drain):
    server.answer = 410
    endpoint_id = await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    await flows.drain_until(drain, lambda: finished(app, DELIVER))

    row = await outbox_row(app, DELIVER)
    assert (row.status, row.attempts) == ("done", 1)
    [delivery] = await table(app, deliveries)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    [attempt] = await table(app, delivery_attempts)
    assert attempt.status_code == 410
    [endpoint] = (await client.get("/v1/webhook_endpoints", headers=merchant.headers)).json()[
        "data"]
    assert (endpoint["id"], endpoint["status"]) == (endpoint_id, "disabled")
    assert endpoint["disabled_reason"] == "gone"

    # A disabled endpoint is sent nothing more: its deliveries are made and held.
    await flows.paid_session(client, merchant)
    await flows.drain_until(drain, lambda: finished(app, NOTIFY))
    assert len(server.received) == 1
    assert sorted(row.status for row in await table(app, deliveries)) == ["failed", "pending"]
    assert len(await table(app, outbox_entries, outbox_entries.c.kind == DELIVER)) == 1


async def test_a_hanging_endpoint_times_out_as_a_failed_attempt(client, app, merchant, server,
                                                               drain):
    server.answer = "hang"
    await drain.context.http.aclose()
    drain.context.http = merchant_client(allow_private=True, timeout=httpx.Timeout(0.5))
    await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    await drain.drain()

    row = await outbox_row(app, DELIVER)
    assert (row.status, row.attempts) == ("pending", 1) and "timed out" in row.last_error
    [attempt] = await table(app, delivery_attempts)
    assert attempt.status_code is None and "timed out" in attempt.error
    assert 400 <= attempt.duration_ms < 5000
    [delivery] = await table(app, deliveries)
    assert (delivery.status, delivery.attempts) == ("failed", 1)


async def test_a_slow_origin_fails_only_its_own_deliveries(client, app, merchant, server,
                                                           drain):
    """Deliveries to a hanging origin wait their turn (one at a time here) within one deadline
    and fail alone, each retried on its own; the same batch's deliveries to another origin are
    delivered and recorded."""
    server.answer = "hang"
    drain.context.origins = OriginGates(limit=1)
    # As a 3 s lease makes them at run time: a deadline of 1 s per delivery, its wait for a
    # turn included, and 1.5 s for the whole batch (three turns in a row would take 3 s).
    drain.context.settings = drain.context.settings.model_copy(
        update={"outbox_lease_seconds": 3.0})
    drain.handler_timeout = 1.5
    async with running() as good:
        slow_endpoint = await endpoint_for(client, merchant, server)
        await endpoint_for(client, merchant, good)
        for _ in range(3):
            await flows.paid_session(client, merchant)
        await drain.drain()
        assert len(good.verified) == 3
    by_endpoint = {(row.endpoint_id == slow_endpoint, row.status, row.attempts)
                   for row in await table(app, deliveries)}
    assert by_endpoint == {(True, "failed", 1), (False, "delivered", 1)}
    rows = await table(app, outbox_entries, outbox_entries.c.kind == DELIVER)
    assert sorted(row.status for row in rows) == ["done"] * 3 + ["pending"] * 3
    assert all("timed out" in row.last_error for row in rows if row.status == "pending")


async def test_a_private_address_is_refused_again_at_delivery(client, app, merchant, server,
                                                              database_url):
    """Created while private URLs were allowed; delivered with the check on: no request."""
    await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    strict = make_settings(database_url, allow_private_urls=False,
                           outbox_max_attempts=MAX_ATTEMPTS)
    drainer = flows.drainer(strict, app.state.payhook.engine, RetryPolicy(60))
    try:
        await flows.drain_until(drainer, lambda: finished(app, DELIVER))
    finally:
        await drainer.context.close()

    assert server.received == []
    row = await outbox_row(app, DELIVER)
    assert row.status == "dead" and "refused" in row.last_error and "127.0.0.1" in row.last_error
    attempts = await table(app, delivery_attempts)
    assert len(attempts) == MAX_ATTEMPTS
    assert all(a.status_code is None and "non-public" in a.error for a in attempts)


async def test_a_checked_delivery_goes_to_the_checked_address(client, app, merchant, server,
                                                              database_url, monkeypatch):
    """The name is resolved once, checked, and that very address is used (no second lookup
    that DNS could answer differently); Host names the URL's host."""
    url = f"http://merchant.invalid:{server.port}/hook"
    await endpoint_for(client, merchant, server, url)
    lookups: list[str] = []

    async def resolve(host, port=None):
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(net, "resolve", resolve)
    monkeypatch.setattr(net, "is_forbidden", lambda address: False)  # 127.0.0.1 "is public"
    await flows.paid_session(client, merchant)
    strict = make_settings(database_url, allow_private_urls=False)
    drainer = flows.drainer(strict, app.state.payhook.engine)
    try:
        await flows.drain_until(drainer, lambda: finished(app, DELIVER))
    finally:
        await drainer.context.close()

    assert lookups == ["merchant.invalid"]
    [received] = server.received
    assert received.error is None and received.headers["host"] == f"merchant.invalid:{server.port}"
    [delivery] = await table(app, deliveries)
    assert delivery.status == "delivered"


async def test_a_failed_session_notifies_checkout_session_failed(client, app, merchant, server,
                                                                 drain):
    await endpoint_for(client, merchant, server)
    session_id = await flows.new_session(client, merchant)
    await flows.stripe_event(client, session_id, "payment_intent.canceled")
    await flows.drain_until(drain, lambda: finished(app, DELIVER))

    [event] = server.verified
    assert event["type"] == FAILED
    assert event["data"]["session"]["id"] == session_id
    assert event["data"]["session"]["status"] == "failed"
    assert event["data"]["invoice"] is None and event["data"]["customer_access"] is None


async def test_the_paid_event_waits_for_its_link_and_fails_when_the_link_is_dead(
        client, app, merchant, server):
    async def broken(_context, _entries):
        raise RuntimeError("link service down")

    await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    state = app.state.payhook
    drainer = flows.drainer(state.settings, state.engine, RetryPolicy(60),
                            registry=flows.handlers(**{ACCESS_LINK: broken}))
    try:
        await drainer.drain()
        notify = await outbox_row(app, NOTIFY)
        assert (notify.status, notify.attempts) == ("pending", 0)  # postponed, no attempt used
        assert notify.last_error is None and await table(app, deliveries) == []
        await flows.drain_until(drainer, lambda: finished(app, ACCESS_LINK))
        await drainer.drain()
    finally:
        await drainer.context.close()
    notify = await outbox_row(app, NOTIFY)
    assert notify.attempts >= 1 and "waiting for dead outbox rows: access_link.issue" in (
        notify.last_error)
    assert server.received == []


async def test_a_deleted_endpoint_is_skipped(client, app, merchant, server, drain):
    async def hold(_context, _entries):
        raise NotReady("held until the endpoint is deleted", retry_in=60)

    endpoint_id = await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    state = app.state.payhook
    holding = flows.drainer(state.settings, state.engine,
                            registry=flows.handlers(**{DELIVER: hold}))
    try:
        await holding.drain()
    finally:
        await holding.context.close()
    assert len(await table(app, deliveries)) == 1
    await client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=merchant.headers)
    await flows.drain_until(drain, lambda: finished(app, DELIVER))
    assert server.received == []
    [delivery] = await table(app, deliveries)
    assert (delivery.status, delivery.attempts) == ("dead", 0)
    [endpoint] = await table(app, webhook_endpoints)
    assert endpoint.status == "deleted"


async def endpoint_row(app, merchant, url: str, sealed: bytes) -> str:
    """An endpoint written straight to the database, past every check of its creation (as an
    older release, a migration or an operator may have left one)."""
    endpoint_id, now = new_id("we"), clock.now()
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(webhook_endpoints.insert().values(
            id=endpoint_id, merchant_id=merchant.id, mode="test", url=url, sealed_secret=sealed,
            status="enabled", enabled_events=["*"], created_at=now, updated_at=now))
    return endpoint_id


@pytest.mark.parametrize("fault", ["url httpx cannot parse", "secret that will not open"])
async def test_one_broken_endpoint_fails_its_own_delivery_alone(client, app, merchant,
                                                                other_merchant, server, drain,
                                                                fault):
    """Both deliveries in one batch: the broken one (another merchant's) records its error on
    its own attempt and is retried; the good one is delivered all the same."""
    if fault.startswith("url"):
        broken = await endpoint_row(app, merchant, "http://shop:hunter2@☃.net/hook",
                                    Sealer(SECRET_KEY).seal("whsec_" + "A" * 43))
    else:
        broken = await endpoint_row(app, merchant, server.url.replace("/hook", "/moved"),
                                    Sealer("another-secret-key").seal("whsec_" + "A" * 43))
    good = await endpoint_for(client, other_merchant, server)
    await flows.paid_session(client, merchant)
    await flows.paid_session(client, other_merchant)

    async def hold(_context, _entries):
        raise NotReady("held until both deliveries are due", retry_in=60)

    state = app.state.payhook
    holding = flows.drainer(state.settings, state.engine,
                            registry=flows.handlers(**{DELIVER: hold}))
    try:
        await flows.drain_until(holding, lambda: finished(app, NOTIFY))
    finally:
        await holding.context.close()
    await flows.make_due(state.engine)
    assert await drain.drain() == 2  # the two deliveries, claimed and sent as one batch

    assert [event["type"] for event in server.verified] == [PAID]
    by_endpoint = {row.endpoint_id: row for row in await table(app, deliveries)}
    assert (by_endpoint[good].status, by_endpoint[good].attempts) == ("delivered", 1)
    assert (by_endpoint[broken].status, by_endpoint[broken].attempts) == ("failed", 1)
    [attempt] = await table(app, delivery_attempts,
                            delivery_attempts.c.delivery_id == by_endpoint[broken].id)
    expected = "InvalidURL" if fault.startswith("url") else "sealed secret does not open"
    assert attempt.status_code is None and expected in attempt.error
    [row] = [row for row in await table(app, outbox_entries, outbox_entries.c.kind == DELIVER)
             if row.payload["delivery_id"] == by_endpoint[broken].id]
    assert (row.status, row.attempts) == ("pending", 1) and expected in row.last_error
    assert "hunter2" not in attempt.error + row.last_error
