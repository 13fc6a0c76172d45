"""/v1/invoices on PostgreSQL and SQLite: one invoice per paid session, the caller's own only."""

from payhook.domain.decisions import INVOICE
from payhook.effects import HANDLERS
from tests import flows

INVOICE_FIELDS = {"id", "object", "session_id", "amount", "currency", "mode", "status",
                  "payment_provider", "provider_reference", "created_at"}


async def invoiced_sessions(client, app, merchant, count: int) -> list[str]:
    sessions = [await flows.paid_session(client, merchant) for _ in range(count)]
    registry = {INVOICE: HANDLERS[INVOICE]}  # only the invoices: nothing else is needed
    state = app.state.payhook
    drain = flows.drainer(state.settings, state.engine, registry=registry)
    try:
        await drain.drain()
    finally:
        await drain.context.close()
    return sessions


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
