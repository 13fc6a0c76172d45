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


@pytest.mark.parametrize("path", ["/admin/merchants", "/admin/checkout/sessions",
                                  "/admin/merchants/MERCHANT/api_keys"])
async def test_a_merchant_key_on_an_admin_route_is_401(client, merchant, path):
    path = path.replace("MERCHANT", merchant.id)
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


@pytest.mark.parametrize("mode", ["test", "live"])
async def test_an_operator_gives_a_merchant_a_new_key(client, merchant, mode):
    answer = await client.post(f"/admin/merchants/{merchant.id}/api_keys", headers=ADMIN,
                               json={"mode": mode, "label": "lost the first one"})
    assert answer.status_code == 201, answer.text
    key = answer.json()
    assert set(key) == {"id", "object", "mode", "prefix", "label", "status", "created_at",
                        "revoked_at", "secret"}  # the shape POST /v1/api_keys answers
    assert (key["object"], key["mode"], key["status"], key["label"]) == (
        "api_key", mode, "active", "lost the first one")
    assert key["secret"].startswith(f"sk_{mode}_") and key["prefix"] == key["secret"][:12]
    listed = await client.get("/v1/api_keys", headers={"Authorization": f"Bearer {key['secret']}"})
    assert listed.status_code == 200
    assert key["id"] in {row["id"] for row in listed.json()["data"]}
    assert all("secret" not in row for row in listed.json()["data"])
    unlabelled = await client.post(f"/admin/merchants/{merchant.id}/api_keys", headers=ADMIN,
                                   json={"mode": mode})
    assert unlabelled.status_code == 201 and unlabelled.json()["label"] is None


async def test_a_key_for_an_unknown_merchant_is_404(client):
    answer = await client.post("/admin/merchants/mer_unknown/api_keys", headers=ADMIN,
                               json={"mode": "test"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "resource_missing"


@pytest.mark.parametrize(("body", "param"), [
    ({}, "mode"), ({"mode": "sandbox"}, "mode"), ({"mode": "live", "label": 7}, "label"),
    ({"mode": "live", "label": "x" * 201}, "label"), ({"mode": "live", "extra": 1}, "extra")])
async def test_an_operators_key_request_is_validated(client, app, merchant, body, param):
    answer = await client.post(f"/admin/merchants/{merchant.id}/api_keys", headers=ADMIN,
                               json=body)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    listed = await client.get("/v1/api_keys", headers=merchant.headers)
    assert len(listed.json()["data"]) == 1  # only the merchant's first key


async def test_an_operators_key_needs_the_admin_token_before_anything(client, merchant):
    path = f"/admin/merchants/{merchant.id}/api_keys"
    for body in ({"mode": "test"}, {"x": 1}):
        answer = await client.post(path, json=body)
        assert answer.status_code == 401
    assert len((await client.get("/v1/api_keys", headers=merchant.headers)).json()["data"]) == 1
