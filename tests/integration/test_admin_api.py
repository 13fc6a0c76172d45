"""Operators' routes: the admin token opens them; a merchant key never does."""

import pytest

from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_create_merchant_answers_its_id_and_a_raw_test_key(client):
    answer = await client.post("/admin/merchants", json={"name": "Initech"}, headers=ADMIN)
    assert answer.status_code == 201
    body = answer.json()
    assert body["id"].startswith("mer_") and body["name"] == "Initech"
    assert body["api_key"]["mode"] == "test" and body["api_key"]["secret"].startswith("sk_test_")
    sessions = await client.get("/v1/checkout/sessions",
                                headers={"Authorization": f"Bearer {body['api_key']['secret']}"})
    assert sessions.status_code == 200


@pytest.mark.parametrize("path", ["/admin/merchants", "/admin/checkout/sessions"])
async def test_a_merchant_key_on_an_admin_route_is_401(client, merchant, path):
    answer = await client.post(path, json={"name": "x"}, headers=merchant.headers)
    assert answer.status_code == 401
    for headers in ({}, {"Authorization": "Bearer " + ADMIN_TOKEN + "x"},
                    {"Authorization": ADMIN_TOKEN}):
        assert (await client.post(path, json={"name": "x"}, headers=headers)).status_code == 401


async def test_admin_creates_sessions_for_any_merchant_and_mode(client, merchant):
    answer = await client.post("/admin/checkout/sessions", headers=ADMIN, json={
        "merchant_id": merchant.id, "mode": "test", "amount": 42, "currency": "dkk"})
    assert answer.status_code == 201
    seen = await client.get(f"/v1/checkout/sessions/{answer.json()['id']}",
                            headers=merchant.headers)
    assert seen.status_code == 200 and seen.json()["amount"] == 42


@pytest.mark.parametrize(("body", "param"), [
    ({"mode": "test", "amount": 1, "currency": "usd"}, "merchant_id"),
    ({"merchant_id": "mer_unknown", "mode": "test", "amount": 1, "currency": "usd"},
     "merchant_id"),
    ({"merchant_id": "MERCHANT", "mode": "sandbox", "amount": 1, "currency": "usd"}, "mode"),
])
async def test_admin_session_validation(client, merchant, body, param):
    body = {**body, "merchant_id": body["merchant_id"].replace("MERCHANT", merchant.id)} \
        if "merchant_id" in body else body
    answer = await client.post("/admin/checkout/sessions", headers=ADMIN, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": 7},
                                  {"name": "a", "extra": 1}, {"name": "x\x07y"}])
async def test_merchant_name_is_validated(client, body):
    answer = await client.post("/admin/merchants", json=body, headers=ADMIN)
    assert answer.status_code == 400
