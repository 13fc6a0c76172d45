"""API keys: listed by prefix, created with the raw key shown once, revoked; stored hashed."""

from sqlalchemy import select

from payhook.db.tables import api_keys

KEYS = "/v1/api_keys"


async def test_created_key_is_shown_once_and_works(client, merchant):
    created = await client.post(KEYS, json={"label": "ci"}, headers=merchant.headers)
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("key_") and body["secret"].startswith("sk_test_")
    assert body["prefix"] == body["secret"][:12] and body["label"] == "ci"
    assert body["status"] == "active"
    listed = await client.get(KEYS, headers=merchant.headers)
    assert all("secret" not in key for key in listed.json()["data"])
    assert {k["id"] for k in listed.json()["data"]} >= {body["id"]}
    with_new_key = await client.get(KEYS, headers={"Authorization": f"Bearer {body['secret']}"})
    assert with_new_key.status_code == 200


async def test_keys_are_stored_as_keyed_hashes_only(client, app, merchant):
    created = (await client.post(KEYS, json={}, headers=merchant.headers)).json()
    async with app.state.payhook.engine.connect() as conn:
        rows = (await conn.execute(select(api_keys))).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert created["secret"] not in stored and merchant.key not in stored
    assert all(len(row.key_hash) == 64 for row in rows)


async def test_revoked_key_is_401(client, merchant):
    extra = (await client.post(KEYS, json={}, headers=merchant.headers)).json()
    extra_headers = {"Authorization": f"Bearer {extra['secret']}"}
    revoked = await client.delete(f"{KEYS}/{extra['id']}", headers=merchant.headers)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    answer = await client.get("/v1/checkout/sessions", headers=extra_headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"
    again = await client.delete(f"{KEYS}/{extra['id']}", headers=merchant.headers)
    assert again.status_code == 200 and again.json() == revoked.json()


async def test_a_key_can_revoke_itself(client, merchant):
    own_id = (await client.get(KEYS, headers=merchant.headers)).json()["data"][0]["id"]
    assert (await client.delete(f"{KEYS}/{own_id}", headers=merchant.headers)).status_code == 200
    assert (await client.get(KEYS, headers=merchant.headers)).status_code == 401


async def test_another_merchants_key_cannot_be_seen_or_revoked(client, merchant, other_merchant):
    theirs = (await client.get(KEYS, headers=other_merchant.headers)).json()["data"][0]
    mine = await client.get(KEYS, headers=merchant.headers)
    assert theirs["id"] not in {k["id"] for k in mine.json()["data"]}
    answer = await client.delete(f"{KEYS}/{theirs['id']}", headers=merchant.headers)
    assert answer.status_code == 404
    assert (await client.get(KEYS, headers=other_merchant.headers)).status_code == 200


async def test_key_label_is_validated(client, merchant):
    for body in ({"label": 5}, {"label": "x" * 201}, {"mode": "live"}):
        assert (await client.post(KEYS, json=body, headers=merchant.headers)).status_code == 400


async def test_key_list_pages(client, merchant):
    for _ in range(4):
        await client.post(KEYS, json={}, headers=merchant.headers)
    first = (await client.get(KEYS, params={"limit": 2}, headers=merchant.headers)).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = (await client.get(KEYS, params={"limit": 10, "starting_after": first["data"][-1]["id"]},
                             headers=merchant.headers)).json()
    assert rest["has_more"] is False and len(rest["data"]) == 3
