"""The endpoint, delivery and event routes of issue 12 on PostgreSQL and SQLite, without a
merchant server: get and update an endpoint, strict bodies, tenant and mode isolation on every
new route, the delivery log's filters, and events pruned after 30 days in bounded batches."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from payhook import clock
from payhook.db.tables import deliveries, merchant_events, outbox_entries, webhook_endpoints
from payhook.services import merchant_events as events_service
from payhook.services import retention
from tests import flows
from tests.conftest import make_settings

URL = "https://93.184.215.14/payhook"


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, allow_private_urls=True)


async def new_endpoint(client, merchant, url: str = URL, **fields) -> dict:
    answer = await client.post("/v1/webhook_endpoints", headers=merchant.headers,
                               json={"url": url, **fields})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def post(client, merchant, path: str, **body):
    return await client.post(path, headers=merchant.headers, json=body)


async def test_get_and_update_an_endpoint(client, merchant):
    created = await new_endpoint(client, merchant, description="orders")
    assert created["enabled_events"] == ["*"] and created["description"] == "orders"
    path = f"/v1/webhook_endpoints/{created['id']}"
    shown = (await client.get(path, headers=merchant.headers)).json()
    assert shown == {key: value for key, value in created.items() if key != "secret"}

    updated = await post(client, merchant, path, url=URL + "/v2",
                         enabled_events=["checkout.session.failed"], description=None)
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["url"], body["enabled_events"], body["description"]) == (
        URL + "/v2", ["checkout.session.failed"], None)
    disabled = (await post(client, merchant, path, disabled=True)).json()
    assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "merchant")
    again = (await post(client, merchant, path, disabled=False)).json()
    assert (again["status"], again["disabled_reason"]) == ("enabled", None)
    unchanged = (await post(client, merchant, path)).json()
    assert unchanged["url"] == URL + "/v2" and unchanged["enabled_events"] == [
        "checkout.session.failed"]


@pytest.mark.parametrize(("body", "param"), [
    ({"enabled_events": ["checkout.session.refunded"]}, "enabled_events"),
    ({"enabled_events": []}, "enabled_events"),
    ({"enabled_events": ["*", "checkout.session.paid"]}, "enabled_events"),
    ({"enabled_events": ["checkout.session.paid", "checkout.session.paid"]}, "enabled_events"),
    ({"enabled_events": "*"}, "enabled_events"),
    ({"description": "a\x07b"}, "description"), ({"description": "x" * 501}, "description"),
    ({"disabled": "true"}, "disabled"), ({"disabled": 1}, "disabled"),
    ({"url": "ftp://93.184.215.14/"}, "url"), ({"status": "enabled"}, "status"),
    ({"secret": "whsec_mine"}, "secret"),
])
async def test_bad_endpoint_fields_are_400_and_change_nothing(client, app, merchant, body,
                                                              param):
    created = await new_endpoint(client, merchant)
    for path in ("/v1/webhook_endpoints", f"/v1/webhook_endpoints/{created['id']}"):
        answer = await post(client, merchant, path, **{"url": URL + "/x", **body})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == param
    [row] = await flows.table(app, webhook_endpoints)
    assert (row.url, row.enabled_events, row.status) == (URL, ["*"], "enabled")


async def test_an_update_keeps_the_url_rules(client, app, merchant):
    first = await new_endpoint(client, merchant)
    second = await new_endpoint(client, merchant, URL + "/2")
    taken = await post(client, merchant, f"/v1/webhook_endpoints/{second['id']}", url=URL)
    assert taken.status_code == 400 and taken.json()["error"]["code"] == "url_duplicate"
    same = await post(client, merchant, f"/v1/webhook_endpoints/{first['id']}", url=URL)
    assert same.status_code == 200  # its own URL is no duplicate
    live = await flows.live_account(app, merchant)
    live_endpoint = await new_endpoint(client, live)
    plain = await post(client, live, f"/v1/webhook_endpoints/{live_endpoint['id']}",
                       url="http://93.184.215.14/payhook")
    assert plain.status_code == 400 and plain.json()["error"]["param"] == "url"


@pytest.mark.parametrize("expires_in", [-1, 604_801, "60", True, 1.5])
async def test_rotation_takes_0_to_604800_seconds(client, app, merchant, expires_in):
    created = await new_endpoint(client, merchant)
    path = f"/v1/webhook_endpoints/{created['id']}/rotate_secret"
    answer = await post(client, merchant, path, expires_in=expires_in)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "expires_in"
    now = await post(client, merchant, path, expires_in=0)
    assert now.status_code == 200 and now.json()["previous_secret_expires_at"] is None
    assert now.json()["secret"] not in (created["secret"], None)
    [row] = await flows.table(app, webhook_endpoints)
    assert row.previous_secret is None  # the old secret is gone at once
    default = (await post(client, merchant, path)).json()
    left = datetime.fromisoformat(default["previous_secret_expires_at"]) - clock.now()
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)


async def test_every_new_route_answers_404_to_another_merchant_or_mode(client, app, merchant,
                                                                       other_merchant):
    endpoint = await new_endpoint(client, merchant)
    test = await post(client, merchant, f"/v1/webhook_endpoints/{endpoint['id']}/test")
    assert test.status_code == 201, test.text
    delivery, event_id = test.json()["id"], test.json()["event_id"]
    live = await flows.live_account(app, merchant)
    we = f"/v1/webhook_endpoints/{endpoint['id']}"
    calls = [("GET", we, None), ("POST", we, {"description": "mine"}),
             ("POST", we + "/rotate_secret", {}), ("POST", we + "/test", {}),
             ("POST", we + "/recover", {"since": "2026-01-01T00:00:00Z"}),
             ("GET", f"/v1/deliveries/{delivery}", None),
             ("POST", f"/v1/deliveries/{delivery}/retry", {}),
             ("GET", f"/v1/events/{event_id}", None)]
    before = await counts(app)
    for stranger in (other_merchant, live):
        for method, path, body in calls:
            answer = await client.request(method, path, headers=stranger.headers, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["error"]["param"] == "id"
        for path in ("/v1/deliveries", "/v1/events"):
            assert (await client.get(path, headers=stranger.headers)).json()["data"] == []
            cursor = await client.get(f"{path}?starting_after="
                                      f"{delivery if 'deliveries' in path else event_id}",
                                      headers=stranger.headers)
            assert cursor.status_code == 400
    assert await counts(app) == before
    [own] = (await client.get("/v1/deliveries", headers=merchant.headers)).json()["data"]
    assert own["id"] == delivery and own["event_type"] == "webhook_endpoint.test"


async def counts(app) -> dict[str, int]:
    async with app.state.payhook.engine.connect() as conn:
        return {table.name: int(await conn.scalar(select(func.count()).select_from(table)))
                for table in (deliveries, outbox_entries, merchant_events)}


async def test_strict_bodies_on_the_new_routes(client, merchant):
    endpoint = await new_endpoint(client, merchant)
    we = f"/v1/webhook_endpoints/{endpoint['id']}"
    for path, body, param in [
            (we + "/test", {"x": 1}, "x"), (we + "/rotate_secret", {"x": 1}, "x"),
            (we + "/recover", {}, "since"), (we + "/recover", {"since": 1}, "since"),
            (we + "/recover", {"since": "yesterday"}, "since"),
            (we + "/recover", {"since": "2026-01-01T00:00:00"}, "since"),
            (we + "/recover", {"since": "2026-01-02T00:00:00Z",
                               "until": "2026-01-01T00:00:00Z"}, "until")]:
        answer = await post(client, merchant, path, **body)
        assert answer.status_code == 400, (path, body, answer.text)
        assert answer.json()["error"]["param"] == param
    for query, param in [("status=lost", "status"), ("endpoint=nope", "endpoint")]:
        answer = await client.get(f"/v1/deliveries?{query}", headers=merchant.headers)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    answer = await client.get("/v1/events?type=charge.succeeded", headers=merchant.headers)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "type"


async def test_a_disabled_endpoint_is_not_tested_recovered_or_retried(client, merchant):
    endpoint = await new_endpoint(client, merchant)
    we = f"/v1/webhook_endpoints/{endpoint['id']}"
    delivery = (await post(client, merchant, we + "/test")).json()["id"]
    await post(client, merchant, we, disabled=True)
    for path, body in [(we + "/test", {}), (we + "/recover", {"since": clock.iso(clock.now())}),
                       (f"/v1/deliveries/{delivery}/retry", {})]:
        answer = await post(client, merchant, path, **body)
        assert answer.status_code == 409, (path, answer.text)
        assert answer.json()["error"]["code"] == "endpoint_disabled"


async def test_deleted_endpoints_are_unknown_to_get_and_update(client, merchant):
    endpoint = await new_endpoint(client, merchant)
    we = f"/v1/webhook_endpoints/{endpoint['id']}"
    await client.delete(we, headers=merchant.headers)
    assert (await client.get(we, headers=merchant.headers)).status_code == 404
    assert (await post(client, merchant, we, disabled=False)).status_code == 404


async def test_the_delivery_log_filters_by_endpoint_and_status_and_pages(client, merchant):
    first = await new_endpoint(client, merchant)
    second = await new_endpoint(client, merchant, URL + "/2")
    made = [(await post(client, merchant, f"/v1/webhook_endpoints/{endpoint['id']}/test")
             ).json()["id"] for endpoint in (first, second, first)]
    page = (await client.get("/v1/deliveries?limit=2", headers=merchant.headers)).json()
    assert [item["id"] for item in page["data"]] == made[::-1][:2] and page["has_more"]
    mine = (await client.get(f"/v1/deliveries?endpoint={first['id']}&status=pending",
                             headers=merchant.headers)).json()
    assert [item["id"] for item in mine["data"]] == [made[2], made[0]]
    none = (await client.get("/v1/deliveries?status=dead", headers=merchant.headers)).json()
    assert none["data"] == []


async def test_events_older_than_30_days_are_pruned_in_bounded_batches(app, merchant):
    now = clock.now()
    async with app.state.payhook.engine.begin() as conn:
        await events_service.record(conn, [{
            "merchant_id": merchant.id, "mode": "test", "session_id": None,
            "body": {"id": f"evt_{n:025d}", "type": "webhook_endpoint.test", "data": {},
                     "created_at": clock.iso(now - timedelta(days=30, seconds=2 * n - 3))}}
            for n in range(5)])  # 0 and 1 are younger than 30 days
    engine = app.state.payhook.engine
    for left in (2, 1):
        assert await retention.prune(engine, now, timedelta(days=30), batch=2, rounds=1) == {
            "merchant_events": left}
    assert await retention.prune(engine, now, timedelta(days=30), batch=2, rounds=1) == {}
    async with engine.connect() as conn:
        kept = (await conn.execute(select(merchant_events.c.id)
                                   .order_by(merchant_events.c.id))).scalars().all()
    assert kept == [f"evt_{n:025d}" for n in range(2)]
