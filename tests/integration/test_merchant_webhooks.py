"""Merchant webhooks on a par with Stripe and Svix, on PostgreSQL and SQLite, against real HTTP
servers on loopback ports (tests/merchant_server.py) with the outbox drained in this process:
event filters, a 410 that disables and an update that sends what was held, recovery of a window
of dead deliveries with their original webhook-ids, secret rotation verified by two independent
libraries, the test event, the events API, and auto-disable after continuous failure.
"""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from payhook import clock
from payhook.db.tables import deliveries, outbox_entries, webhook_endpoints
from payhook.domain.decisions import FAILED, NOTIFY, PAID
from payhook.effects.deliveries import DELIVER
from payhook.outbox.retry import RetryPolicy
from payhook.runtime.pump import sweep
from payhook.services import deliveries as delivery_service
from tests import flows
from tests.conftest import make_settings
from tests.flows import endpoint_for, finished, table
from tests.merchant_server import running

MAX_ATTEMPTS = 3


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, allow_private_urls=True,
                         outbox_max_attempts=MAX_ATTEMPTS)


async def api(client, merchant, method: str, path: str, status: int = 200, **body):
    answer = await client.request(method, path, headers=merchant.headers,
                                  json=body if method == "POST" else None)
    assert answer.status_code == status, answer.text
    return answer.json()


async def all_sent(app) -> bool:
    return await finished(app, NOTIFY) and await finished(app, DELIVER)


async def until_dead(app, drain) -> None:
    """Drain, skipping the backoff, until every delivery row has used its last attempt."""
    await flows.drain_until(drain, lambda: all_sent(app))


async def test_a_filter_that_excludes_failed_receives_only_paid(client, app, merchant, drain):
    async with running() as only_paid, running() as everything:
        await endpoint_for(client, merchant, only_paid, enabled_events=[PAID])
        await endpoint_for(client, merchant, everything)
        await flows.paid_session(client, merchant)
        failing = await flows.new_session(client, merchant)
        await flows.stripe_event(client, failing, "payment_intent.canceled")
        await flows.drain_until(drain, lambda: all_sent(app))
        assert [event["type"] for event in only_paid.verified] == [PAID]
        assert sorted(event["type"] for event in everything.verified) == [FAILED, PAID]


async def test_a_410_disables_and_re_enabling_sends_what_was_held(client, app, merchant,
                                                                  server, drain):
    server.answer = 410
    endpoint_id = await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    await flows.drain_until(drain, lambda: all_sent(app))
    [first_try] = server.received
    endpoint = await api(client, merchant, "GET", f"/v1/webhook_endpoints/{endpoint_id}")
    assert (endpoint["status"], endpoint["disabled_reason"]) == ("disabled", "gone")

    await flows.paid_session(client, merchant)  # made while disabled: held, not sent
    await flows.drain_until(drain, lambda: all_sent(app))
    assert len(server.received) == 1
    held = await api(client, merchant, "GET", "/v1/deliveries")
    assert sorted(item["status"] for item in held["data"]) == ["failed", "pending"]

    server.answer = 200
    enabled = await api(client, merchant, "POST", f"/v1/webhook_endpoints/{endpoint_id}",
                        disabled=False)
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)
    await flows.drain_until(drain, lambda: all_sent(app))
    assert len(server.verified) == 3  # the 410'd event again, and the held one
    sent = [entry.headers["webhook-id"] for entry in server.received]
    assert sent.count(first_try.headers["webhook-id"]) == 2 and len(set(sent)) == 2
    listed = await api(client, merchant, "GET", "/v1/deliveries?status=delivered")
    assert len(listed["data"]) == 2


async def test_recover_sends_each_dead_delivery_once_with_its_webhook_id(client, app,
                                                                         merchant, server,
                                                                         drain, monkeypatch):
    monkeypatch.setattr(delivery_service, "CHUNK", 1)  # rescheduled a chunk at a time
    server.answer = 500
    endpoint_id = await endpoint_for(client, merchant, server)
    before = clock.now()
    for _ in range(2):
        await flows.paid_session(client, merchant)
    await drain.drain()  # the notifications and the first tries
    failed = await api(client, merchant, "GET", "/v1/deliveries?status=failed")
    assert len(failed["data"]) == 2
    [attempt] = failed["data"][0]["attempts"]
    assert attempt["status_code"] == 500 and attempt["response_snippet"].startswith("answer 500")
    assert len(attempt["response_snippet"]) == 1024 and attempt["duration_ms"] >= 0
    assert failed["data"][0]["next_attempt_at"] is not None

    await until_dead(app, drain)
    dead = await api(client, merchant, "GET", f"/v1/deliveries?endpoint={endpoint_id}&status=dead")
    assert len(dead["data"]) == 2 and all(len(d["attempts"]) == MAX_ATTEMPTS for d in dead["data"])
    sent_ids = {entry.headers["webhook-id"] for entry in server.received}
    assert len(sent_ids) == 2 and len(server.received) == 2 * MAX_ATTEMPTS

    server.answer = 200
    later = (clock.now() + timedelta(minutes=1)).isoformat()
    none = await api(client, merchant, "POST", f"/v1/webhook_endpoints/{endpoint_id}/recover",
                     since=later)
    assert none == {"object": "recovery", "recovered": 0}
    recovered = await api(client, merchant, "POST",
                          f"/v1/webhook_endpoints/{endpoint_id}/recover",
                          since=(before - timedelta(seconds=1)).isoformat(), until=later)
    assert recovered["recovered"] == 2
    await flows.drain_until(drain, lambda: all_sent(app))
    delivered = server.received[2 * MAX_ATTEMPTS:]
    assert sorted(entry.headers["webhook-id"] for entry in delivered) == sorted(sent_ids)
    assert all(entry.error is None for entry in delivered)
    again = await api(client, merchant, "POST", f"/v1/webhook_endpoints/{endpoint_id}/recover",
                      since=before.isoformat())
    assert again["recovered"] == 0  # delivered: nothing left to recover


async def test_retry_sends_again_with_the_same_webhook_id_and_not_while_in_flight(
        client, app, merchant, server, drain):
    await endpoint_for(client, merchant, server)
    await flows.paid_session(client, merchant)
    await flows.drain_until(drain, lambda: all_sent(app))
    [delivery] = (await api(client, merchant, "GET", "/v1/deliveries"))["data"]
    assert delivery["status"] == "delivered"

    retried = await api(client, merchant, "POST", f"/v1/deliveries/{delivery['id']}/retry")
    assert retried["status"] == "pending" and retried["next_attempt_at"] is not None
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox_entries).where(outbox_entries.c.status == "pending")
                           .values(status="running", locked_until=clock.now()))
    busy = await client.post(f"/v1/deliveries/{delivery['id']}/retry", headers=merchant.headers)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "delivery_in_flight"
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox_entries).where(outbox_entries.c.status == "running")
                           .values(status="pending"))
    await flows.drain_until(drain, lambda: all_sent(app))
    assert [entry.headers["webhook-id"] for entry in server.received] == [delivery["event_id"]] * 2
    shown = await api(client, merchant, "GET", f"/v1/deliveries/{delivery['id']}")
    assert shown["status"] == "delivered" and len(shown["attempts"]) == 2


def verifies(verifier: type, secret: str, entry) -> bool:
    try:
        verifier(secret).verify(entry.body, entry.headers)
    except Exception:  # noqa: BLE001 - either library's error, binascii's included
        return False
    return True


async def test_a_rotated_secret_signs_beside_the_old_one_until_it_expires(client, app,
                                                                         merchant, server,
                                                                         drain):
    endpoint_id = await endpoint_for(client, merchant, server)
    old = server.secret
    rotated = await api(client, merchant, "POST",
                        f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret", expires_in=3600)
    new = server.secret = rotated["secret"]
    assert new != old and rotated["previous_secret_expires_at"] is not None
    assert "secret" not in await api(client, merchant, "GET",
                                     f"/v1/webhook_endpoints/{endpoint_id}")
    await flows.paid_session(client, merchant)
    await flows.drain_until(drain, lambda: all_sent(app))
    [both] = server.received
    assert len(both.headers["webhook-signature"].split(" ")) == 2
    assert verifies(Webhook, old, both) and verifies(SvixWebhook, new, both)

    async with app.state.payhook.engine.begin() as conn:  # an hour later
        await conn.execute(update(webhook_endpoints).values(
            previous_secret_expires_at=clock.now() - timedelta(seconds=1)))
    await sweep(app.state.payhook.engine, MAX_ATTEMPTS)
    [row] = await table(app, webhook_endpoints)
    assert row.previous_secret is None and row.previous_secret_expires_at is None
    await api(client, merchant, "POST", f"/v1/webhook_endpoints/{endpoint_id}/test",
              status=201)
    await flows.drain_until(drain, lambda: all_sent(app))
    only_new = server.received[1]
    assert len(only_new.headers["webhook-signature"].split(" ")) == 1
    assert verifies(SvixWebhook, new, only_new) and verifies(Webhook, new, only_new)
    assert not verifies(Webhook, old, only_new) and not verifies(SvixWebhook, old, only_new)
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(old).verify(only_new.body, only_new.headers)


async def test_a_test_event_goes_to_that_endpoint_alone_signed(client, app, merchant, drain):
    async with running() as tested, running() as other:
        endpoint_id = await endpoint_for(client, merchant, tested,
                                         enabled_events=["checkout.session.paid"])
        await endpoint_for(client, merchant, other)
        delivery = await api(client, merchant, "POST",
                             f"/v1/webhook_endpoints/{endpoint_id}/test", status=201)
        assert (delivery["object"], delivery["event_type"], delivery["status"]) == (
            "delivery", "webhook_endpoint.test", "pending")
        await flows.drain_until(drain, lambda: finished(app, DELIVER))
        [event] = tested.verified
        assert other.received == []
    assert event["id"] == delivery["event_id"] == tested.received[0].headers["webhook-id"]
    assert event["type"] == "webhook_endpoint.test"
    assert event["data"]["webhook_endpoint"]["id"] == endpoint_id
    assert await api(client, merchant, "GET", f"/v1/events/{event['id']}") == event


async def test_the_events_api_lists_what_was_sent_in_order_with_no_gap(client, app, merchant,
                                                                       other_merchant, server,
                                                                       drain):
    server.answer = 500  # the endpoint is down for the whole window
    await endpoint_for(client, merchant, server)
    sessions = [await flows.paid_session(client, merchant) for _ in range(4)]
    sessions.append(await flows.new_session(client, merchant))
    await flows.stripe_event(client, sessions[-1], "payment_intent.canceled")
    await drain.drain()

    listed = await api(client, merchant, "GET", "/v1/events?limit=100")
    made = listed["data"][::-1]  # newest first
    sent = {entry.headers["webhook-id"]: entry.payload for entry in server.received}
    assert len(server.received) == 5 and {event["id"] for event in made} == set(sent)
    assert all(event == sent[event["id"]] for event in made)  # exactly the bodies sent
    # In the order made: the order in which the sessions were paid (or failed).
    assert [event["data"]["session"]["id"] for event in made] == sessions
    assert [event["type"] for event in made] == [PAID] * 4 + [FAILED]
    # Replaying the window a page at a time, as a merchant would: every event, once.
    seen, cursor = [], None
    while True:
        page = await api(client, merchant, "GET", "/v1/events?limit=2"
                         + (f"&starting_after={cursor}" if cursor else ""))
        seen += [event["id"] for event in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == [event["id"] for event in listed["data"]]
    paid_only = await api(client, merchant, "GET", f"/v1/events?type={PAID}&limit=100")
    assert len(paid_only["data"]) == 4

    # A merchant with no endpoint at all reconciles from the events API alone.
    await flows.paid_session(client, other_merchant)
    await flows.drain_until(drain, lambda: finished(app, NOTIFY))
    [own] = (await api(client, other_merchant, "GET", "/v1/events"))["data"]
    assert own["type"] == PAID and own["id"] not in sent


@pytest.fixture
def disable_after_hours() -> float:
    return 1.0 / 3600  # one second


async def test_an_endpoint_failing_for_the_configured_hours_is_disabled(
        client, app, merchant, server, database_url, disable_after_hours):
    server.answer = 500
    strict = make_settings(database_url, allow_private_urls=True, outbox_max_attempts=10,
                           endpoint_disable_after_hours=disable_after_hours)
    drainer = flows.drainer(strict, app.state.payhook.engine, RetryPolicy(60))
    try:
        endpoint_id = await endpoint_for(client, merchant, server)
        await flows.paid_session(client, merchant)
        await drainer.drain()  # the first failure starts the spell
        [row] = await table(app, webhook_endpoints)
        assert row.status == "enabled" and row.failing_since is not None
        await asyncio.sleep(1.1)
        await flows.make_due(app.state.payhook.engine)
        await drainer.drain()  # still failing a second later: disabled
        endpoint = await api(client, merchant, "GET", f"/v1/webhook_endpoints/{endpoint_id}")
        assert (endpoint["status"], endpoint["disabled_reason"]) == ("disabled", "failing")
        tries = len(server.received)
        await flows.make_due(app.state.payhook.engine)
        await drainer.drain()  # its retry is held now, not sent
        assert len(server.received) == tries
        [held] = await table(app, deliveries)
        assert held.status == "failed"
        [waiting] = await table(app, outbox_entries, outbox_entries.c.kind == DELIVER)
        assert waiting.status == "pending" and "held" in waiting.last_error
        assert waiting.next_attempt_at > clock.now() + timedelta(minutes=30)

        server.answer = 200
        await api(client, merchant, "POST", f"/v1/webhook_endpoints/{endpoint_id}",
                  disabled=False)
        await flows.drain_until(drainer, lambda: all_sent(app))
        [row] = await table(app, webhook_endpoints)
        assert (row.status, row.disabled_reason, row.failing_since) == ("enabled", None, None)
        [delivered] = await table(app, deliveries)
        assert delivered.status == "delivered"
    finally:
        await drainer.context.close()


async def test_a_delivery_between_failures_ends_the_spell(client, app, merchant, server,
                                                         database_url):
    strict = make_settings(database_url, allow_private_urls=True,
                           endpoint_disable_after_hours=1.0 / 3600)
    drainer = flows.drainer(strict, app.state.payhook.engine, RetryPolicy(60))
    try:
        await endpoint_for(client, merchant, server)
        server.answer = 500
        await flows.paid_session(client, merchant)
        await drainer.drain()
        server.answer = 200
        await flows.make_due(app.state.payhook.engine)
        await drainer.drain()
        [row] = await table(app, webhook_endpoints)
        assert row.failing_since is None
        await asyncio.sleep(1.1)
        server.answer = 500
        await flows.paid_session(client, merchant)
        await drainer.drain()  # a new spell: not yet as long as the limit
        [row] = await table(app, webhook_endpoints)
        assert row.status == "enabled" and row.failing_since is not None
    finally:
        await drainer.context.close()
