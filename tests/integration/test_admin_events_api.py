"""Operators read stored provider events and anomalies: /admin/events and /admin/anomalies."""

import base64
import json
import time
import uuid
from typing import Any

import pytest

from payhook.providers import onecom, stripe, web3
from tests.conftest import ADMIN_TOKEN, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STRIPE_SECRET = "whsec_test"
ONECOM_SECRET = "onecom_test"
WEB3_SECRET = "whsec_" + base64.b64encode(b"admin-events-test-key-24b").decode()

EVENT_FIELDS = {"id", "object", "provider", "event_id", "type", "session_id", "outcome",
                "received_at", "headers"}
ANOMALY_FIELDS = {"id", "object", "kind", "session_id", "event_id", "provider", "details",
                  "created_at"}


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, stripe_webhook_secrets=STRIPE_SECRET,
                         onecom_webhook_secrets=ONECOM_SECRET, web3_webhook_secrets=WEB3_SECRET)


async def new_session(client, merchant, amount: int = 1999, currency: str = "usd") -> str:
    answer = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                               json={"amount": amount, "currency": currency})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def deliver(client, provider: str, raw: bytes) -> str:
    stamp = int(time.time())
    sign = {"stripe": lambda: stripe.sign(raw, STRIPE_SECRET, stamp),
            "onecom": lambda: onecom.sign(raw, ONECOM_SECRET, stamp),
            "web3": lambda: web3.sign(raw, WEB3_SECRET, stamp)}[provider]
    answer = await client.post(f"/webhooks/{provider}", content=raw,
                               headers={**sign(), "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["outcome"])


def stripe_paid(session_id: str | None, amount: int = 1999, currency: str = "usd") -> bytes:
    return json.dumps({
        "id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.succeeded",
        "livemode": False, "data": {"object": {
            "id": f"pi_{uuid.uuid4().hex}", "object": "payment_intent",
            "amount_received": amount, "currency": currency,
            "metadata": {"session_id": session_id} if session_id else {}}},
    }).encode()


def onecom_paid(session_id: str, amount: int = 1999, currency: str = "usd") -> bytes:
    return json.dumps({"id": str(uuid.uuid4()), "event": "payment.completed",
                       "reference": session_id, "amount": amount, "currency": currency,
                       "payload": {"txn_id": "txn_1"}}).encode()


def web3_detected(session_id: str) -> bytes:
    return json.dumps({"event": "payment.detected", "session_id": session_id,
                       "blockchain_tx_id": "0x" + uuid.uuid4().hex * 2,
                       "network": "ethereum"}).encode()


async def get(client, path: str, **params: Any) -> Any:
    answer = await client.get(path, params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_events_are_listed_newest_first_and_filtered(client, merchant):
    usd = await new_session(client, merchant)
    eth = await new_session(client, merchant, amount=10**18, currency="eth")
    assert await deliver(client, "stripe", stripe_paid(usd)) == "applied"
    assert await deliver(client, "onecom", onecom_paid(usd)) == "recorded"  # already paid
    assert await deliver(client, "web3", web3_detected(eth)) == "applied"
    assert await deliver(client, "stripe", stripe_paid(None)) == "ignored"

    listed = await get(client, "/admin/events")
    assert listed["object"] == "list" and listed["has_more"] is False
    assert [(e["provider"], e["outcome"]) for e in listed["data"]] == [
        ("stripe", "ignored"), ("web3", "applied"), ("onecom", "recorded"),
        ("stripe", "applied")]
    first = listed["data"][-1]
    assert set(first) == EVENT_FIELDS  # lists leave raw_body out
    assert first["object"] == "webhook_event" and first["id"].startswith("ev_")
    assert first["event_id"].startswith("evt_") and first["session_id"] == usd
    assert first["type"] == "payment_intent.succeeded"
    assert first["headers"]["stripe-signature"].startswith("t=")

    stripe_only = await get(client, "/admin/events", provider="stripe")
    assert [e["outcome"] for e in stripe_only["data"]] == ["ignored", "applied"]
    applied = await get(client, "/admin/events", outcome="applied")
    assert [e["provider"] for e in applied["data"]] == ["web3", "stripe"]
    both = await get(client, "/admin/events", provider="web3", outcome="applied")
    assert [e["session_id"] for e in both["data"]] == [eth]
    assert (await get(client, "/admin/events", outcome="unmatched"))["data"] == []


async def test_events_paginate_with_starting_after(client, merchant):
    session = await new_session(client, merchant)
    for _ in range(3):
        await deliver(client, "onecom", onecom_paid(session, amount=1))  # amount mismatch
    everything = [e["id"] for e in (await get(client, "/admin/events"))["data"]]
    first = await get(client, "/admin/events", limit=2)
    assert [e["id"] for e in first["data"]] == everything[:2] and first["has_more"] is True
    rest = await get(client, "/admin/events", limit=2, starting_after=everything[1])
    assert [e["id"] for e in rest["data"]] == everything[2:] and rest["has_more"] is False


async def test_one_event_carries_the_raw_body_byte_for_byte(client, merchant):
    session = await new_session(client, merchant)
    # Odd spacing, key order and non-ASCII text: what is shown is exactly what was signed.
    raw = ('{"type":"payment_intent.succeeded",  "id": "evt_raw_EVENT", "livemode": false,\n'
           ' "note": "café ✓", "data": {"object": {"object": "payment_intent", "id": "pi_1",'
           ' "amount_received": 1999, "currency": "usd", "metadata": {"session_id": "SESSION"}}}}'
           ).replace("EVENT", uuid.uuid4().hex).replace("SESSION", session).encode()
    assert await deliver(client, "stripe", raw) == "applied"
    listed = (await get(client, "/admin/events"))["data"][0]

    shown = await get(client, f"/admin/events/{listed['id']}")
    assert shown["raw_body"].encode() == raw
    assert set(shown) == EVENT_FIELDS | {"raw_body"}
    assert {name: value for name, value in shown.items() if name != "raw_body"} == listed
    assert set(shown["headers"]) == {"stripe-signature", "content-type"}


async def test_anomalies_are_listed_and_filtered(client, merchant):
    first = await new_session(client, merchant)
    second = await new_session(client, merchant)
    assert await deliver(client, "stripe", stripe_paid(first, amount=1)) == "recorded"
    assert await deliver(client, "onecom", onecom_paid(second, currency="eur")) == "recorded"
    assert await deliver(client, "onecom", onecom_paid(second, amount=5)) == "recorded"

    listed = await get(client, "/admin/anomalies")
    assert [a["kind"] for a in listed["data"]] == [
        "amount_mismatch", "currency_mismatch", "amount_mismatch"]
    mismatch = listed["data"][-1]
    assert set(mismatch) == ANOMALY_FIELDS
    assert mismatch["object"] == "anomaly" and mismatch["id"].startswith("an_")
    assert (mismatch["session_id"], mismatch["provider"]) == (first, "stripe")
    assert mismatch["details"]["expected"] == 1999 and mismatch["details"]["received"] == 1
    event = await get(client, f"/admin/events/{mismatch['event_id']}")
    assert event["session_id"] == first and event["outcome"] == "recorded"

    by_kind = await get(client, "/admin/anomalies", kind="amount_mismatch")
    assert [a["session_id"] for a in by_kind["data"]] == [second, first]
    by_session = await get(client, "/admin/anomalies", session_id=second)
    assert [a["kind"] for a in by_session["data"]] == ["amount_mismatch", "currency_mismatch"]
    both = await get(client, "/admin/anomalies", kind="currency_mismatch", session_id=first)
    assert both["data"] == []
    assert (await get(client, "/admin/anomalies", kind="late_payment"))["data"] == []

    page = await get(client, "/admin/anomalies", limit=1, starting_after=listed["data"][0]["id"])
    assert page["data"] == [listed["data"][1]] and page["has_more"] is True


@pytest.mark.parametrize("path", ["/admin/events", "/admin/events/ev_x", "/admin/anomalies"])
async def test_a_merchant_key_or_no_token_is_401(client, merchant, path):
    for headers in (merchant.headers, {}, {"Authorization": f"Bearer {ADMIN_TOKEN}x"}):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 401, answer.text


@pytest.mark.parametrize(("path", "params", "param"), [
    ("/admin/events", {"provider": "paypal"}, "provider"),
    ("/admin/events", {"provider": "Stripe"}, "provider"),
    ("/admin/events", {"outcome": "done"}, "outcome"),
    ("/admin/events", {"outcome": ""}, "outcome"),
    ("/admin/events", {"limit": "0"}, "limit"),
    ("/admin/events", {"limit": "101"}, "limit"),
    ("/admin/events", {"starting_after": "ev_unknown"}, "starting_after"),
    ("/admin/events", {"status": "paid"}, "status"),
    ("/admin/events/ev_x", {"limit": "1"}, "limit"),
    ("/admin/anomalies", {"kind": "Amount Mismatch"}, "kind"),
    ("/admin/anomalies", {"kind": "amount_mismatch\n"}, "kind"),
    ("/admin/anomalies", {"session_id": ""}, "session_id"),
    ("/admin/anomalies", {"starting_after": "an_unknown"}, "starting_after"),
    ("/admin/anomalies", {"provider": "stripe"}, "provider"),
])
async def test_bad_filters_and_unknown_parameters_are_400(client, path, params, param):
    answer = await client.get(path, params=params, headers=ADMIN)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


async def test_an_unknown_event_is_404(client):
    unknown = "ev_" + "0" * 25
    answer = await client.get(f"/admin/events/{unknown}", headers=ADMIN)
    assert answer.status_code == 404
    assert answer.json()["error"] == {"type": "invalid_request_error", "code": "resource_missing",
                                      "message": f"no such event: {unknown}", "param": "id"}
