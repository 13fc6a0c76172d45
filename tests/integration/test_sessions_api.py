"""The checkout-session API over HTTP, on PostgreSQL and on the SQLite default."""

import asyncio
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from payhook.db.tables import checkout_sessions
from tests.conftest import ADMIN_TOKEN, MerchantAccount

SESSIONS = "/v1/checkout/sessions"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def create(client: httpx.AsyncClient, merchant: MerchantAccount, **body: object) -> dict:
    answer = await client.post(SESSIONS, json={"amount": 1999, "currency": "usd", **body},
                               headers=merchant.headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def count_sessions(app) -> int:
    async with app.state.payhook.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(checkout_sessions)))


async def test_create_answers_the_whole_session_object(client, merchant):
    session = await create(client, merchant, success_url="https://shop.example/ok",
                           cancel_url="http://shop.example/cancel", customer_email="a@b.example",
                           customer_name="Ada", metadata={"order": "42"}, expires_in=3600)
    assert session["id"].startswith("cs_") and len(session["id"]) >= 25
    assert session["object"] == "checkout.session"
    assert (session["mode"], session["status"], session["payment_status"]) == (
        "test", "created", "not_started")
    assert (session["amount"], session["currency"]) == (1999, "usd")
    assert session["metadata"] == {"order": "42"}
    assert session["failure_reason"] is None and session["paid_at"] is None
    assert session["customer_access"] is None and session["invoice_id"] is None
    created = datetime.fromisoformat(session["created_at"])
    expires = datetime.fromisoformat(session["expires_at"])
    assert created.utcoffset() == timedelta(0)
    assert expires - created == timedelta(seconds=3600)
    assert set(session) == {
        "id", "object", "mode", "status", "payment_status", "amount", "currency",
        "payment_provider", "url", "success_url", "cancel_url", "customer_email",
        "customer_name", "metadata", "failure_reason", "created_at", "expires_at", "paid_at",
        "invoice_id", "customer_access", "crypto_payment"}
    assert session["crypto_payment"] is None  # a fiat session: nothing to pay on chain


async def test_default_expiry_is_a_day(client, merchant):
    session = await create(client, merchant)
    delta = (datetime.fromisoformat(session["expires_at"])
             - datetime.fromisoformat(session["created_at"]))
    assert delta == timedelta(seconds=86_400)


async def test_get_answers_what_create_answered(client, merchant):
    session = await create(client, merchant)
    answer = await client.get(f"{SESSIONS}/{session['id']}", headers=merchant.headers)
    assert answer.status_code == 200
    assert answer.json() == session


async def test_crypto_amounts_are_stored_exactly(client, merchant):
    session = await create(client, merchant, amount=10**30, currency="eth")
    answer = await client.get(f"{SESSIONS}/{session['id']}", headers=merchant.headers)
    assert answer.json()["amount"] == 10**30


async def test_another_merchants_session_is_not_found(client, merchant, other_merchant):
    mine = await create(client, merchant)
    theirs = await create(client, other_merchant)
    for who, session in ((merchant, theirs), (other_merchant, mine)):
        foreign = await client.get(f"{SESSIONS}/{session['id']}", headers=who.headers)
        unknown = await client.get(f"{SESSIONS}/cs_doesnotexist", headers=who.headers)
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"]
        cancel = await client.post(f"{SESSIONS}/{session['id']}/cancel", headers=who.headers)
        assert cancel.status_code == 404
        listed = await client.get(SESSIONS, headers=who.headers)
        assert session["id"] not in {s["id"] for s in listed.json()["data"]}
    assert (await client.get(f"{SESSIONS}/{mine['id']}", headers=merchant.headers)).json()[
        "status"] == "created"


async def test_the_other_modes_session_is_not_found(client, merchant):
    live = await client.post("/admin/checkout/sessions", headers=ADMIN, json={
        "merchant_id": merchant.id, "mode": "live", "amount": 500, "currency": "eur"})
    assert live.status_code == 201, live.text
    assert live.json()["mode"] == "live"
    answer = await client.get(f"{SESSIONS}/{live.json()['id']}", headers=merchant.headers)
    assert answer.status_code == 404
    listed = await client.get(SESSIONS, headers=merchant.headers)
    assert listed.json()["data"] == []


async def test_list_pages_newest_first(client, merchant):
    created = [await create(client, merchant, amount=100 + n) for n in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3", **({"starting_after": cursor} if cursor else {})}
        answer = await client.get(SESSIONS, params=params, headers=merchant.headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["object"] == "list"
        seen += [s["id"] for s in body["data"]]
        pages += 1
        if not body["has_more"]:
            break
        cursor = body["data"][-1]["id"]
    assert pages == 3
    assert seen == [s["id"] for s in reversed(created)]


async def test_list_filters_by_status(client, merchant):
    kept = await create(client, merchant)
    canceled = await create(client, merchant)
    await client.post(f"{SESSIONS}/{canceled['id']}/cancel", headers=merchant.headers)
    failed = await client.get(SESSIONS, params={"status": "failed"}, headers=merchant.headers)
    assert [s["id"] for s in failed.json()["data"]] == [canceled["id"]]
    created = await client.get(SESSIONS, params={"status": "created"}, headers=merchant.headers)
    assert [s["id"] for s in created.json()["data"]] == [kept["id"]]


async def test_list_rejects_bad_parameters(client, merchant, other_merchant):
    theirs = await create(client, other_merchant)
    for params, param in (({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
                          ({"limit": "ten"}, "limit"), ({"status": "open"}, "status"),
                          ({"starting_after": theirs["id"]}, "starting_after"),
                          ({"starting_after": "cs_nope"}, "starting_after"),
                          ({"colour": "red"}, "colour")):
        answer = await client.get(SESSIONS, params=params, headers=merchant.headers)
        assert answer.status_code == 400, params
        assert answer.json()["error"]["param"] == param


async def test_cancel_moves_created_to_failed_canceled(client, merchant):
    session = await create(client, merchant)
    answer = await client.post(f"{SESSIONS}/{session['id']}/cancel", headers=merchant.headers)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["payment_status"], body["failure_reason"]) == (
        "failed", "failed", "canceled")
    again = await client.post(f"{SESSIONS}/{session['id']}/cancel", headers=merchant.headers)
    assert again.status_code == 200 and again.json() == body


async def test_cancel_a_paid_session_is_a_conflict(client, app, merchant):
    session = await create(client, merchant)
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(checkout_sessions.update().values(status="paid"))
    answer = await client.post(f"{SESSIONS}/{session['id']}/cancel", headers=merchant.headers)
    assert answer.status_code == 409
    assert answer.json()["error"]["type"] == "invalid_request_error"


async def test_cancel_an_expired_session_is_a_conflict(client, app, merchant):
    session = await create(client, merchant)
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(checkout_sessions.update().values(status="failed",
                                                             failure_reason="expired"))
    answer = await client.post(f"{SESSIONS}/{session['id']}/cancel", headers=merchant.headers)
    assert answer.status_code == 409


async def test_same_idempotency_key_and_body_answers_the_first_answer(client, app, merchant):
    headers = {**merchant.headers, "Idempotency-Key": "order-1"}
    first = await client.post(SESSIONS, json={"amount": 1, "currency": "usd"}, headers=headers)
    # Same body with another key order and spacing is the same request.
    second = await client.post(SESSIONS, content=b'{ "currency":"usd",  "amount":1 }',
                               headers={**headers, "Content-Type": "application/json"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert await count_sessions(app) == 1


async def test_same_idempotency_key_other_body_is_a_conflict(client, app, merchant):
    headers = {**merchant.headers, "Idempotency-Key": "order-2"}
    await client.post(SESSIONS, json={"amount": 1, "currency": "usd"}, headers=headers)
    answer = await client.post(SESSIONS, json={"amount": 2, "currency": "usd"}, headers=headers)
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "idempotency_key_reused"
    assert await count_sessions(app) == 1


async def test_idempotency_keys_are_scoped_to_the_merchant(client, app, merchant, other_merchant):
    body = {"amount": 1, "currency": "usd"}
    mine = await client.post(SESSIONS, json=body,
                             headers={**merchant.headers, "Idempotency-Key": "k"})
    theirs = await client.post(SESSIONS, json=body,
                               headers={**other_merchant.headers, "Idempotency-Key": "k"})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert await count_sessions(app) == 2


async def test_concurrent_requests_with_one_key_make_one_session(client, app, merchant):
    headers = {**merchant.headers, "Idempotency-Key": "burst"}
    answers = await asyncio.gather(*[
        client.post(SESSIONS, json={"amount": 700, "currency": "eur"}, headers=headers)
        for _ in range(12)])
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await count_sessions(app) == 1


async def test_a_failed_create_stores_no_idempotency_answer(client, app, merchant):
    headers = {**merchant.headers, "Idempotency-Key": "retry-me"}
    bad = await client.post(SESSIONS, json={"amount": 0, "currency": "usd"}, headers=headers)
    assert bad.status_code == 400
    good = await client.post(SESSIONS, json={"amount": 5, "currency": "usd"}, headers=headers)
    assert good.status_code == 201
