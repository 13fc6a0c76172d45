"""The console and merchant webhooks, on both databases, with a loopback merchant endpoint: a
failing delivery told on its session's story with every attempt and the event's exact body,
retried from there (the service behind ``POST /v1/deliveries/{id}/retry``; in flight or to a
disabled endpoint it is a 409 said on the story), the failing list filtered, and the bulk
replay's dry run saying which endpoint would receive what."""

import html
import re

import pytest
from markupsafe import escape
from sqlalchemy import update

from payhook.db.tables import deliveries, merchant_events, outbox_entries, outbox_replays
from payhook.domain.decisions import DELIVER, NOTIFY
from payhook.domain.webhooks import wire
from tests import flows
from tests.conftest import make_settings
from tests.flows import endpoint_for, table
from tests.integration.test_console import BROWSER, csrf_of, sign_in

MAX_ATTEMPTS = 2


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, allow_private_urls=True, outbox_max_attempts=MAX_ATTEMPTS)


async def dead_delivery(client, app, merchant, server, drain) -> tuple[str, str]:
    """A paid session whose one delivery the endpoint (answering 500) let die: its ids."""
    server.answer = 500
    await endpoint_for(client, merchant, server)
    session_id = await flows.paid_session(client, merchant)

    async def dead() -> bool:
        return [row.status for row in await table(app, deliveries)] == ["dead"]

    await flows.drain_until(drain, dead)
    [delivery] = await table(app, deliveries)
    return session_id, delivery.id


async def test_a_dead_delivery_is_told_with_every_attempt_and_sent_again_from_the_story(
        client, app, merchant, server, drain):
    session_id, delivery_id = await dead_delivery(client, app, merchant, server, drain)
    await sign_in(client)
    story = (await client.get(f"/console/sessions/{session_id}", headers=BROWSER)).text
    assert "(no tries left)" in story and story.count("HTTP 500") == MAX_ATTEMPTS
    [snippet] = set(re.findall(r'<pre class="snippet">([^<]*)</pre>', story))
    assert snippet.startswith("answer 500 xxx") and len(html.unescape(snippet)) <= 1024
    [event] = await table(app, merchant_events)
    assert "Event for the merchant" in story
    assert server.received[0].body == wire(event.body).encode()  # what the endpoint got,
    assert str(escape(wire(event.body))) in story  # shown exactly, escaped
    assert f'action="/console/deliveries/{delivery_id}/retry"' in story

    forged = await client.post(f"/console/deliveries/{delivery_id}/retry", headers=BROWSER,
                               data={"csrf": "forged"})
    assert forged.status_code == 403
    server.answer = 200
    sent = await client.post(f"/console/deliveries/{delivery_id}/retry", headers=BROWSER,
                             data={"csrf": csrf_of(await client.get("/console",
                                                                     headers=BROWSER)),
                                   "reason": "the shop fixed its endpoint"})
    assert sent.status_code == 303
    [audit] = await table(app, outbox_replays)
    [sending] = await table(app, outbox_entries, outbox_entries.c.kind == DELIVER)
    assert (audit.entry_ids, audit.reason) == ([sending.id], "the shop fixed its endpoint")
    assert audit.actor.startswith("console:Ada:") and sending.status == "pending"
    assert sent.headers["location"] == f"/console/sessions/{session_id}?resent={delivery_id}"
    assert "Sending delivery" in (await client.get(sent.headers["location"],
                                                   headers=BROWSER)).text

    async def delivered() -> bool:
        return [row.status for row in await table(app, deliveries)] == ["delivered"]

    await flows.drain_until(drain, delivered)
    ids = {received.headers["webhook-id"] for received in server.received}
    assert ids == {event.id}  # the same webhook-id throughout: the receiver dedupes on it
    assert len(server.verified) == MAX_ATTEMPTS + 1  # two failed tries, then the retry
    story = (await client.get(f"/console/sessions/{session_id}", headers=BROWSER)).text
    assert story.count("HTTP 500") == MAX_ATTEMPTS and "HTTP 200" in story


async def test_a_retry_in_flight_or_to_a_disabled_endpoint_is_a_409_on_the_story(
        client, app, merchant, server, drain):
    session_id, delivery_id = await dead_delivery(client, app, merchant, server, drain)
    await sign_in(client)
    csrf = csrf_of(await client.get("/console", headers=BROWSER))
    async with app.state.payhook.engine.begin() as conn:  # as a worker holding it would
        await conn.execute(update(outbox_entries).where(outbox_entries.c.kind == DELIVER)
                           .values(status="running"))
    busy = await client.post(f"/console/deliveries/{delivery_id}/retry", headers=BROWSER,
                             data={"csrf": csrf})
    assert busy.status_code == 409 and 'data-code="delivery_in_flight"' in busy.text
    assert "Not sent again: the delivery is in flight" in busy.text
    assert f"Session <code>{session_id}</code>" in busy.text  # said on the story itself
    [row] = await table(app, deliveries)
    assert row.status == "dead" and await table(app, outbox_replays) == []  # nothing changed

    [endpoint] = (await client.get("/v1/webhook_endpoints",
                                   headers=merchant.headers)).json()["data"]
    await client.post(f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers,
                      json={"disabled": True})
    held = await client.post(f"/console/deliveries/{delivery_id}/retry", headers=BROWSER,
                             data={"csrf": csrf})
    assert held.status_code == 409 and 'data-code="endpoint_disabled"' in held.text
    assert "endpoint disabled: by the merchant" in held.text
    assert f'action="/console/deliveries/{delivery_id}/retry"' not in held.text


async def test_failing_deliveries_are_listed_and_filtered(client, app, merchant,
                                                          other_merchant, server, drain):
    session_id, delivery_id = await dead_delivery(client, app, merchant, server, drain)
    [row] = await table(app, deliveries)
    await sign_in(client)
    for query, shown in (("status=failing", True), ("status=dead", True),
                         ("status=failed", False), ("status=delivered", False),
                         (f"endpoint={row.endpoint_id}", True),
                         (f"merchant={merchant.id}", True),
                         (f"merchant={other_merchant.id}", False),
                         (f"status=failing&merchant={merchant.id}", True)):
        page = await client.get(f"/console/deliveries?{query}", headers=BROWSER)
        assert page.status_code == 200 and (delivery_id in page.text) is shown, query
    assert server.url in page.text and session_id in page.text
    home = await client.get("/console", headers=BROWSER)
    assert re.search(r"<strong>1</strong>failing deliveries", home.text)
    for bad in ("status=sleeping", "endpoint=mer_x", "merchant=we_x"):
        answer = await client.get(f"/console/deliveries?{bad}", headers=BROWSER)
        assert answer.status_code == 400, bad


async def test_the_dry_run_says_which_endpoint_would_receive_what(client, app, merchant,
                                                                   server, drain):
    """One endpoint takes every type, one only failures, one is disabled: a dead
    ``merchant.notify`` for a paid session would reach the first, not the second, and be held
    for the third; once the event was made, a replay sends it to none of them again."""
    await endpoint_for(client, merchant, server, url=server.url + "?failures",
                       enabled_events=["checkout.session.failed"])
    held = await endpoint_for(client, merchant, server, url=server.url + "?held")
    every = await endpoint_for(client, merchant, server)  # the secret the server verifies
    await client.post(f"/v1/webhook_endpoints/{held}", headers=merchant.headers,
                      json={"disabled": True})
    await flows.paid_session(client, merchant)
    await kill(app, NOTIFY)
    await sign_in(client)
    preview = (await client.get("/console/replay/preview", params={"kind": NOTIFY},
                                headers=BROWSER)).text
    assert "notify the merchant: checkout.session.paid" in preview
    assert f"{server.url}</span>: receives it" in preview
    assert (f"{server.url}?failures</span>: its enabled events leave checkout.session.paid out"
            in preview)
    assert f"{server.url}?held</span>: held: the endpoint is disabled (merchant)" in preview
    assert "Endpoints that would receive an event: <strong>1</strong>" in preview
    assert await table(app, deliveries) == []  # a dry run

    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox_entries).where(outbox_entries.c.kind == NOTIFY)
                           .values(status="pending"))
    await flows.drain_until(drain, lambda: flows.finished(app, DELIVER))
    made = {row.endpoint_id: row.status for row in await table(app, deliveries)}
    assert made == {every: "delivered", held: "pending"}
    await kill(app, NOTIFY)
    again = (await client.get("/console/replay/preview", params={"kind": NOTIFY},
                              headers=BROWSER)).text
    assert f"{server.url}</span>: has this event already (delivered)" in again
    assert f"{server.url}?held</span>: has this event already (pending)" in again
    assert "Endpoints that would receive an event: <strong>0</strong>" in again


async def kill(app, kind: str) -> None:
    """The row of ``kind`` dead, as its last failed attempt would leave it."""
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox_entries).where(outbox_entries.c.kind == kind)
                           .values(status="dead", last_error="test: gave up"))
