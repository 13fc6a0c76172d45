"""An operator and a merchant's failing endpoint, in a real browser against the real web
process: the delivery the endpoint (a loopback server verifying each request with the
`standardwebhooks` package) refused until it died is on the session's story with every attempt;
the endpoint is fixed, the operator presses "Retry now", and the event arrives — with the
webhook-id of the failed tries."""

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests import signing
from tests.e2e.browser.conftest import db_value, new_merchant, shoot
from tests.e2e.browser.test_console import sign_in
from tests.e2e.processes import wait_for
from tests.merchant_server import MerchantServer, running

pytestmark = pytest.mark.slow


@contextmanager
def merchant_endpoint() -> Iterator[MerchantServer]:
    """The loopback merchant server on a thread and event loop of its own (Playwright's sync
    API holds this thread's loop)."""
    started, stop, box = threading.Event(), threading.Event(), {}

    async def serve() -> None:
        async with running() as server:
            box["server"] = server
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "the merchant server did not start"
    try:
        yield box["server"]
    finally:
        stop.set()
        thread.join(10)


def delivery_status(stack, session_id: str) -> str | None:
    return db_value(stack.database_url,
                    f"SELECT status FROM deliveries WHERE session_id = '{session_id}'")


def test_a_dead_delivery_is_read_on_the_story_and_retried_to_the_merchant(page, stack):
    with merchant_endpoint() as server:
        server.answer = 500
        _, merchant = new_merchant(stack)
        with httpx.Client(base_url=stack.url, timeout=10) as client:
            hook = client.post("/v1/webhook_endpoints", headers=merchant,
                               json={"url": server.url})
            assert hook.status_code == 201, hook.text
            server.secret = hook.json()["secret"]
            email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
            session = client.post("/v1/checkout/sessions", headers=merchant, json={
                "amount": 4200, "currency": "eur", "customer_email": email}).json()
            paid = signing.stripe_event(session["id"], amount=4200, currency="eur")
            raw, headers = signing.signed("stripe", paid)
            assert client.post("/webhooks/stripe", content=raw,
                               headers=headers).status_code == 200
        wait_for(lambda: delivery_status(stack, session["id"]) == "dead", 30,
                 "the delivery to die")

        sign_in(page, stack, name="Grace")
        page.fill("input[name=q]", email)
        page.click("form.search button")
        page.wait_for_url(f"{stack.url}/console/sessions/{session['id']}")
        delivery = page.locator("ol.timeline > li", has_text="Delivery of")
        assert delivery.get_by_text("dead").first.is_visible()
        assert delivery.locator("table.attempts tbody tr").count() == 2  # both tries
        assert delivery.get_by_text("HTTP 500").count() == 2
        assert "answer 500" in delivery.locator("pre.snippet").first.inner_text()
        event = page.locator("ol.timeline > li", has_text="Event for the merchant")
        event.get_by_text("Body, exactly as endpoints receive it").click()
        assert session["id"] in event.locator("pre.raw").inner_text()
        shoot(page, "console-session-delivery")
        page.goto(f"{stack.url}/console/deliveries?status=failing")
        assert page.locator("tr", has_text=session["id"]).get_by_text("dead").is_visible()
        shoot(page, "console-deliveries")
        page.go_back()

        server.answer = 200
        delivery = page.locator("ol.timeline > li", has_text="Delivery of")
        delivery.locator("input[name=reason]").fill("the shop fixed its endpoint")
        delivery.get_by_role("button", name="Retry now").click()
        page.wait_for_url(f"{stack.url}/console/sessions/{session['id']}?resent=*")
        assert page.get_by_text("Sending delivery").is_visible()
        wait_for(lambda: delivery_status(stack, session["id"]) == "delivered", 30,
                 "the retried delivery to arrive")
        arrived = [entry for entry in server.received if entry.error is None]
        assert len(arrived) == 3  # two refused tries, then the retry
        assert len({entry.headers["webhook-id"] for entry in arrived}) == 1
        assert arrived[-1].payload["data"]["session"]["id"] == session["id"]
        assert db_value(stack.database_url, "SELECT count(*) FROM outbox_replays "
                        "WHERE reason = 'the shop fixed its endpoint'") == 1

    page.reload()
    delivery = page.locator("ol.timeline > li", has_text="Delivery of")
    assert delivery.get_by_text("delivered", exact=True).first.is_visible()
    assert delivery.get_by_text("HTTP 200").is_visible()
