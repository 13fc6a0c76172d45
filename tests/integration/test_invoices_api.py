"""/v1/invoices on PostgreSQL and SQLite: one invoice per paid session, the caller's own only,
each with the provider's reference to the payment."""

import uuid

from payhook.domain.decisions import INVOICE
from payhook.effects import HANDLERS
from tests import flows, signing

INVOICE_FIELDS = {"id", "object", "session_id", "amount", "currency", "mode", "status",
                  "payment_provider", "provider_reference", "created_at"}


async def invoiced_sessions(client, app, merchant, count: int) -> list[str]:
    sessions = [await flows.paid_session(client, merchant) for _ in range(count)]
    await drain_invoices(app)
    return sessions


async def drain_invoices(app) -> None:
    registry = {INVOICE: HANDLERS[INVOICE]}  # only the invoices: nothing else is needed
    state = app.state.payhook
    drain = flows.drainer(state.settings, state.engine, registry=registry)
    try:
        await drain.drain()
    finally:
        await drain.context.close()


def charges_api_event(session_id: str, amount: int = 1999) -> dict:
    """``charge.succeeded`` for a charge made with the Charges API, shaped like the ``charge``
    of Stripe's OpenAPI fixtures: no PaymentIntent."""
    charge = {
        "id": f"ch_{uuid.uuid4().hex[:24]}", "object": "charge", "amount": amount,
        "amount_captured": amount, "amount_refunded": 0, "application": None,
        "application_fee": None, "balance_transaction": f"txn_{uuid.uuid4().hex[:24]}",
        "captured": True, "created": 1234567890, "currency": "usd", "customer": None,
        "description": None, "disputed": False, "failure_code": None, "livemode": False,
        "metadata": {"session_id": session_id}, "outcome": None, "paid": True,
        "payment_intent": None, "payment_method": f"card_{uuid.uuid4().hex[:24]}",
        "refunded": False, "status": "succeeded",
    }
    return {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
            "api_version": "2024-06-20", "created": 1234567890, "livemode": False,
            "pending_webhooks": 1, "type": "charge.succeeded", "data": {"object": charge}}


async def test_a_charge_without_a_payment_intent_is_invoiced_under_the_charge_id(
        client, app, merchant):
    session_id = await flows.new_session(client, merchant)
    body = charges_api_event(session_id)
    raw, headers = signing.signed("stripe", body)
    answer = await client.post("/webhooks/stripe", content=raw, headers=headers)
    assert answer.json()["outcome"] == "applied", answer.text
    await drain_invoices(app)
    [invoice] = (await client.get("/v1/invoices", headers=merchant.headers)).json()["data"]
    assert (invoice["session_id"], invoice["payment_provider"], invoice["provider_reference"]) \
        == (session_id, "stripe", body["data"]["object"]["id"])


async def test_list_and_retrieve_invoices(client, app, merchant):
    sessions = await invoiced_sessions(client, app, merchant, 3)
    listed = await client.get("/v1/invoices?limit=2", headers=merchant.headers)
    assert listed.status_code == 200
    page = listed.json()
    assert page["object"] == "list" and page["has_more"] and len(page["data"]) == 2
    rest = (await client.get(f"/v1/invoices?starting_after={page['data'][-1]['id']}",
                             headers=merchant.headers)).json()
    everything = page["data"] + rest["data"]
    assert not rest["has_more"]
    assert sorted(item["session_id"] for item in everything) == sorted(sessions)
    first = everything[0]
    assert set(first) == INVOICE_FIELDS
    assert first["id"].startswith("in_") and first["object"] == "invoice"
    assert (first["amount"], first["currency"], first["mode"], first["status"],
            first["payment_provider"]) == (1999, "usd", "test", "paid", "stripe")
    one = await client.get(f"/v1/invoices/{first['id']}", headers=merchant.headers)
    assert one.status_code == 200 and one.json() == first
    session = (await client.get(f"/v1/checkout/sessions/{first['session_id']}",
                                headers=merchant.headers)).json()
    assert session["invoice_id"] == first["id"]


async def test_another_merchants_or_modes_invoice_is_not_found(client, app, merchant,
                                                                other_merchant):
    await invoiced_sessions(client, app, merchant, 1)
    [invoice] = (await client.get("/v1/invoices", headers=merchant.headers)).json()["data"]
    for stranger in (other_merchant, await flows.live_account(app, merchant)):
        answer = await client.get(f"/v1/invoices/{invoice['id']}", headers=stranger.headers)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "resource_missing"
        assert (await client.get("/v1/invoices", headers=stranger.headers)).json()["data"] == []
    assert (await client.get("/v1/invoices/in_unknown", headers=merchant.headers)).status_code \
        == 404
    assert (await client.get("/v1/invoices")).status_code == 401
    unknown_filter = await client.get("/v1/invoices?status=paid", headers=merchant.headers)
    assert unknown_filter.status_code == 400
