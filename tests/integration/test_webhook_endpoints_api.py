"""/v1/webhook_endpoints on PostgreSQL and SQLite: the secret once and sealed, tenant and mode
isolation, the URL rules (http(s) only, https in live mode; no loopback, private or otherwise
internal host), and at most 16 endpoints per merchant and mode, no URL twice."""

import asyncio
import base64

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from payhook.crypto import Sealer
from payhook.db.tables import webhook_endpoints
from tests import flows
from tests.conftest import SECRET_KEY, make_settings

PUBLIC_URL = "https://93.184.215.14/payhook"
ENDPOINT_FIELDS = {"id", "object", "url", "mode", "enabled_events", "description", "status",
                   "disabled_reason", "previous_secret_expires_at", "created_at"}


@pytest.fixture
def allow_private() -> bool:
    return False


@pytest.fixture
def settings(database_url, allow_private):
    return make_settings(database_url, allow_private_urls=allow_private)


async def create(client, merchant, url=PUBLIC_URL, **extra):
    return await client.post("/v1/webhook_endpoints", headers=merchant.headers,
                             json={"url": url, **extra})


async def test_create_answers_the_secret_once_and_stores_it_sealed(client, app, merchant):
    answer = await create(client, merchant)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert body["id"].startswith("we_") and body["object"] == "webhook_endpoint"
    assert (body["url"], body["mode"], body["status"]) == (PUBLIC_URL, "test", "enabled")
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    Webhook(secret)  # a secret the standardwebhooks package accepts

    listed = (await client.get("/v1/webhook_endpoints", headers=merchant.headers)).json()
    assert [item["id"] for item in listed["data"]] == [body["id"]]
    assert set(listed["data"][0]) == ENDPOINT_FIELDS and secret not in str(listed)
    async with app.state.payhook.engine.connect() as conn:
        sealed = await conn.scalar(select(webhook_endpoints.c.sealed_secret))
    assert secret.encode() not in sealed and secret[6:].encode() not in sealed
    assert Sealer(SECRET_KEY).open(sealed) == secret
    again = (await create(client, merchant, f"{PUBLIC_URL}/2")).json()
    assert again["secret"] != secret


async def test_list_is_paginated_newest_first(client, merchant):
    ids = [(await create(client, merchant, f"{PUBLIC_URL}/{n}")).json()["id"] for n in range(3)]
    first = (await client.get("/v1/webhook_endpoints?limit=2", headers=merchant.headers)).json()
    assert [item["id"] for item in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = (await client.get(f"/v1/webhook_endpoints?limit=2&starting_after={ids[1]}",
                             headers=merchant.headers)).json()
    assert [item["id"] for item in rest["data"]] == [ids[0]] and not rest["has_more"]
    bad = await client.get("/v1/webhook_endpoints?limit=0", headers=merchant.headers)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


async def test_delete_marks_it_deleted_and_hides_it(client, merchant):
    endpoint = (await create(client, merchant)).json()
    deleted = await client.delete(f"/v1/webhook_endpoints/{endpoint['id']}",
                                  headers=merchant.headers)
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "deleted" and "secret" not in deleted.json()
    listed = (await client.get("/v1/webhook_endpoints", headers=merchant.headers)).json()
    assert listed["data"] == []
    again = await client.delete(f"/v1/webhook_endpoints/{endpoint['id']}",
                                headers=merchant.headers)
    assert again.status_code == 200 and again.json()["status"] == "deleted"
    unknown = await client.delete("/v1/webhook_endpoints/we_unknown", headers=merchant.headers)
    assert unknown.status_code == 404


async def test_other_merchants_and_the_other_mode_see_nothing(client, app, merchant,
                                                              other_merchant):
    endpoint = (await create(client, merchant)).json()
    live = await flows.live_account(app, merchant)
    for stranger in (other_merchant, live):
        listed = (await client.get("/v1/webhook_endpoints", headers=stranger.headers)).json()
        assert listed["data"] == []
        answer = await client.delete(f"/v1/webhook_endpoints/{endpoint['id']}",
                                     headers=stranger.headers)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "resource_missing"
        cursor = await client.get(f"/v1/webhook_endpoints?starting_after={endpoint['id']}",
                                  headers=stranger.headers)
        assert cursor.status_code == 400
    live_endpoint = (await create(client, live)).json()
    assert live_endpoint["mode"] == "live"
    listed = (await client.get("/v1/webhook_endpoints", headers=merchant.headers)).json()
    assert [item["id"] for item in listed["data"]] == [endpoint["id"]]


async def test_credentials_are_required(client):
    assert (await client.post("/v1/webhook_endpoints", json={"url": PUBLIC_URL})).status_code \
        == 401
    assert (await client.get("/v1/webhook_endpoints")).status_code == 401


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("body", [
    {"url": "ftp://93.184.215.14/hook"}, {"url": "file:///etc/passwd"},
    {"url": "javascript:alert(1)"}, {"url": "gopher://127.0.0.1:6379/_INFO"},
    {"url": "//93.184.215.14/hook"}, {"url": "https://user:pw@93.184.215.14/hook"},
    {"url": "https://"}, {"url": 42}, {}, {"url": PUBLIC_URL, "secret": "whsec_mine"},
    # Pass urlsplit, yet httpx (which would POST to them) refuses their hosts.
    {"url": "http://☃.net/"}, {"url": "https://xn--zz.example/hook"},
])
async def test_only_http_urls_are_accepted_always(client, merchant, body):
    answer = await client.post("/v1/webhook_endpoints", headers=merchant.headers, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] in ("url", "secret")


PRIVATE_URLS = [
    "http://127.0.0.1/hook", "http://localhost:8080/hook", "http://shop.localhost/hook",
    "https://10.0.0.5/hook", "http://172.16.3.4/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/", "http://0.0.0.0:8000/",
    "http://[::]/", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/", "http://[::ffff:8.8.8.8]/",
    "http://[fe80::1]/", "http://[fd00::1]/", "http://224.0.0.1/", "http://2130706433/",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_non_public_hosts_are_refused(client, merchant, url):
    answer = await create(client, merchant, url)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == ("url", "url_not_public")
    assert (await client.get("/v1/webhook_endpoints", headers=merchant.headers)).json()[
        "data"] == []


@pytest.mark.parametrize("allow_private", [True])
@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://localhost/hook",
                                 "http://10.0.0.5/", "http://[::1]/"])
async def test_private_hosts_are_allowed_when_configured(client, merchant, url):
    answer = await create(client, merchant, url)
    assert answer.status_code == 201, answer.text
    assert answer.json()["url"] == url


async def test_a_host_that_does_not_resolve_yet_is_accepted(client, merchant):
    """Every delivery checks the address it connects to, so this is no way around the rule."""
    answer = await create(client, merchant, "https://hooks.merchant.invalid/payhook")
    assert answer.status_code == 201, answer.text


def error_of(answer) -> tuple[int, str | None]:
    return answer.status_code, answer.json()["error"]["param"] if answer.status_code == 400 \
        else None


async def test_live_endpoints_must_be_https(client, app, merchant):
    live = await flows.live_account(app, merchant)
    plain = "http://93.184.215.14/payhook"
    assert error_of(await create(client, live, plain)) == (400, "url")
    assert (await create(client, live)).status_code == 201
    assert (await create(client, merchant, plain)).status_code == 201  # test mode: http too


async def test_at_most_16_endpoints_per_merchant_and_mode(client, app, merchant,
                                                          other_merchant):
    ids = [(await create(client, merchant, f"{PUBLIC_URL}/{n}")).json()["id"]
           for n in range(16)]
    full = await create(client, merchant, f"{PUBLIC_URL}/16")
    assert error_of(full) == (400, "url") and "16" in full.json()["error"]["message"]
    # The other mode and other merchants have their own room.
    assert (await create(client, await flows.live_account(app, merchant))).status_code == 201
    assert (await create(client, other_merchant)).status_code == 201
    # Deleted endpoints do not count.
    await client.delete(f"/v1/webhook_endpoints/{ids[0]}", headers=merchant.headers)
    assert (await create(client, merchant, f"{PUBLIC_URL}/16")).status_code == 201
    assert error_of(await create(client, merchant, f"{PUBLIC_URL}/17")) == (400, "url")
    async with app.state.payhook.engine.connect() as conn:
        kept = await conn.scalar(select(func.count()).select_from(webhook_endpoints).where(
            webhook_endpoints.c.merchant_id == merchant.id, webhook_endpoints.c.mode == "test",
            webhook_endpoints.c.status != "deleted"))
    assert kept == 16


async def test_the_same_url_twice_is_refused(client, app, merchant, other_merchant):
    first = (await create(client, merchant)).json()
    twice = await create(client, merchant)
    assert error_of(twice) == (400, "url") and "URL" in twice.json()["error"]["message"]
    # Another merchant, or the other mode, may use it; so may this mode once it is deleted.
    assert (await create(client, other_merchant)).status_code == 201
    assert (await create(client, await flows.live_account(app, merchant))).status_code == 201
    await client.delete(f"/v1/webhook_endpoints/{first['id']}", headers=merchant.headers)
    assert (await create(client, merchant)).status_code == 201


async def test_concurrent_creates_keep_the_limit_and_never_duplicate(client, app, merchant):
    """Each create checks, then inserts: run side by side, they would all pass the check
    unless they are checked one after the other."""
    same = await asyncio.gather(*(create(client, merchant) for _ in range(8)))
    assert sorted(answer.status_code for answer in same) == [201] + [400] * 7
    urls = [f"{PUBLIC_URL}/{n}" for n in range(24)]
    many = await asyncio.gather(*(create(client, merchant, url) for url in urls))
    assert sorted(answer.status_code for answer in many) == [201] * 15 + [400] * 9
    async with app.state.payhook.engine.connect() as conn:
        stored = (await conn.execute(select(webhook_endpoints.c.url).where(
            webhook_endpoints.c.merchant_id == merchant.id))).scalars().all()
    assert len(stored) == len(set(stored)) == 16
