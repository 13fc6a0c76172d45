"""Hostile input never reaches a 500, on PostgreSQL (whose text cannot hold NUL) and SQLite.

The route lists are derived from the app's own routes, so a route added later is covered
without editing this file: every path parameter gets NUL-bearing, 10 kB and look-alike ids;
every list gets bad limits, cursors and filters; every authenticated route is asked without
credentials first. Provider webhooks get references and timestamps no provider would send.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from starlette.routing import BaseRoute, Mount, Route

from payhook.app import routes as app_routes
from payhook.db.tables import (
    anomalies,
    api_keys,
    checkout_sessions,
    merchants,
    outbox_entries,
    outbox_replays,
    webhook_events,
)
from tests import signing
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NUL_BEARING = "cs_%00"
LONG = "cs_" + "7" * 10_000
HOSTILE_IDS = [NUL_BEARING, LONG, quote("cs_" + "３" * 25), "%00", quote("cs_" + "²" * 25),
               "cs_" + "A" * 24 + "%00", "cs_" + "A" * 26]


def endpoints(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, mounted ones included."""
    for route in routes:
        if isinstance(route, Mount):
            yield from endpoints(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield method, prefix + route.path
        else:  # a websocket or something new: this file must learn how to attack it
            raise AssertionError(f"unexpected route type {route!r}")


ENDPOINTS = sorted(set(endpoints(app_routes)))
WITH_PATH_PARAMS = [(method, path) for method, path in ENDPOINTS if "{" in path]
AUTHENTICATED = [(method, path) for method, path in ENDPOINTS
                 if path.startswith(("/v1/", "/admin/"))]
LISTS = [path for method, path in AUTHENTICATED if method == "GET" and "{" not in path]


def label(endpoint: tuple[str, str]) -> str:
    return f"{endpoint[0]} {endpoint[1]}"


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_derived_lists_cover_every_route(app):
    mounted = set(endpoints(list(app.routes)))
    assert mounted == set(ENDPOINTS)
    params = {(method, path) for method, path in mounted if "{" in path}
    assert params == set(WITH_PATH_PARAMS)
    # The routes the issue names, so an empty derivation cannot pass.
    for path in ("/session/{id}/status", "/v1/checkout/sessions/{id}", "/v1/deliveries/{id}",
                 "/v1/deliveries/{id}/retry", "/v1/events/{id}",
                 "/v1/webhook_endpoints/{id}/recover", "/v1/webhook_endpoints/{id}/test",
                 "/v1/webhook_endpoints/{id}/rotate_secret",
                 "/v1/checkout/sessions/{id}/cancel", "/v1/invoices/{id}", "/v1/api_keys/{id}",
                 "/v1/webhook_endpoints/{id}", "/admin/events/{id}", "/admin/outbox/{id}",
                 "/admin/outbox/{id}/replay", "/access/{session_id}"):
        assert path in {path for _, path in WITH_PATH_PARAMS}, path
    assert {"/v1/checkout/sessions", "/v1/invoices", "/v1/api_keys", "/v1/webhook_endpoints",
            "/v1/deliveries", "/v1/events",
            "/admin/events", "/admin/anomalies", "/admin/outbox"} <= set(LISTS)


def assert_error(answer: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, (answer.status_code, answer.text[:500])
    error = answer.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert isinstance(error["type"], str) and isinstance(error["code"], str)
    # The message names the problem without echoing a hostile value back verbatim.
    assert "\x00" not in error["message"] and len(error["message"]) < 300, error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


def credentials(path: str, merchant: Any) -> dict[str, str]:
    if path.startswith("/v1/"):
        return merchant.headers
    if path.startswith("/admin/"):
        return ADMIN
    return {}


async def call(client: Any, method: str, url: str, headers: dict[str, str],
               body: Any = None) -> Any:
    if method in ("POST", "PUT", "PATCH"):  # ASCII JSON: "\ud800" escaped, as a client may send
        raw = json.dumps({} if body is None else body).encode()
        return await client.request(method, url, content=raw,
                                    headers={**headers, "Content-Type": "application/json"})
    return await client.request(method, url, headers=headers)


def fill(path: str, value: str) -> str:
    """``path`` with every parameter set to ``value`` (already URL-encoded)."""
    parts = path.split("/")
    return "/".join(value if part.startswith("{") else part for part in parts)


async def table_counts(app: Any) -> dict[str, int]:
    async with app.state.payhook.engine.connect() as conn:
        return {table.name: int(await conn.scalar(select(func.count()).select_from(table)))
                for table in (merchants, api_keys, checkout_sessions, webhook_events,
                              outbox_entries, anomalies, outbox_replays)}


@pytest.mark.parametrize("endpoint", WITH_PATH_PARAMS, ids=label)
async def test_a_hostile_path_id_is_unknown_and_never_a_500(client, app, merchant, endpoint):
    method, path = endpoint
    before = await table_counts(app)
    for value in HOSTILE_IDS:
        url = fill(path, value) + ("?token=x" if path.startswith("/access/") else "")
        answer = await call(client, method, url, credentials(path, merchant))
        if path.startswith("/access/"):
            assert_error(answer, 401)  # the access page knows only valid links
        elif path.startswith("/console/"):  # credentials first: no cookie, the sign-in page
            assert answer.status_code == 303
            assert answer.headers["location"] == "/console/sign-in"
        elif path == "/webhooks/{provider}":
            assert_error(answer, 404, "provider")
        else:
            assert_error(answer, 404, "id")
    assert await table_counts(app) == before


BAD_LIMITS = ["²", "３", "9" * 4400, "0", "101", "-1", "+5", " 5", "1e2", "5\x00", ""]


def filters_of(document: dict[str, Any], path: str) -> list[str]:
    parameters = document["paths"][path]["get"].get("parameters", [])
    return [p["name"] for p in parameters if p["in"] == "query"
            and p["name"] not in ("limit", "starting_after")]


@pytest.mark.parametrize("path", LISTS)
async def test_bad_list_queries_are_400_naming_the_parameter(client, merchant, path):
    headers = credentials(path, merchant)
    for limit in BAD_LIMITS:
        answer = await client.get(path, params={"limit": limit}, headers=headers)
        assert_error(answer, 400, "limit")
    for cursor in ["\x00", "cs_\x00", "x" * 10_000, "cs_" + "３" * 25]:
        answer = await client.get(path, params={"starting_after": cursor}, headers=headers)
        assert_error(answer, 400, "starting_after")
    document = (await client.get("/openapi.json")).json()
    for name in filters_of(document, path):
        for value in ["\x00", "a\x00", "x" * 10_000]:
            answer = await client.get(path, params={name: value}, headers=headers)
            assert_error(answer, 400, name)
    answer = await client.get(path, params={"limit": "100"}, headers=headers)
    assert answer.status_code == 200, answer.text


def test_every_list_has_filters_described_where_the_issue_names_them():
    from payhook.api.openapi import document
    named = {"/v1/checkout/sessions": {"status"}, "/admin/events": {"provider", "outcome"},
             "/v1/deliveries": {"endpoint", "status"}, "/v1/events": {"type"},
             "/admin/anomalies": {"kind", "session_id"}, "/admin/outbox": {"status", "kind"}}
    for path, expected in named.items():
        assert expected <= set(filters_of(document(), path)), path


async def test_an_unknown_query_parameter_is_named_without_echoing_it(client, merchant):
    answer = await client.get("/v1/checkout/sessions", params={"x\x00" + "y" * 10_000: "1"},
                              headers=merchant.headers)
    assert_error(answer, 400)


@pytest.mark.parametrize("endpoint", AUTHENTICATED, ids=label)
async def test_credentials_are_checked_before_the_query_the_id_and_the_body(client, app,
                                                                           endpoint):
    method, path = endpoint
    before = await table_counts(app)
    url = fill(path, NUL_BEARING) + "?limit=%C2%B3&starting_after=%00&x=1"
    for headers in ({}, {"Authorization": "Bearer sk_test_nope"}):
        answer = await call(client, method, url, headers, body={"x": 1})
        assert_error(answer, 401)
    assert await table_counts(app) == before


async def test_the_issue_unauthenticated_cases_are_401(client):
    assert_error(await client.get("/v1/checkout/sessions?limit=³"), 401)
    assert_error(await client.post("/v1/api_keys", json={"x": 1}), 401)


NUL_BODIES = [
    ("POST", "/v1/checkout/sessions",
     {"amount": 100, "currency": "usd", "metadata": {"order": "a\x00b"}}, "metadata"),
    ("POST", "/v1/checkout/sessions",
     {"amount": 100, "currency": "usd", "metadata": {"or\x00der": "a"}}, "metadata"),
    ("POST", "/v1/checkout/sessions", {"amount": 100, "currency": "usd\x00"}, "currency"),
    ("POST", "/v1/checkout/sessions",
     {"amount": 100, "currency": "usd", "customer_email": "a\x00@b.example"}, "customer_email"),
    ("POST", "/v1/checkout/sessions",
     {"amount": 100, "currency": "usd", "success_url": "https://a.example/\x00"},
     "success_url"),
    ("POST", "/v1/checkout/sessions", {"amount": 100, "currency": "usd", "x\x00": 1}, None),
    ("POST", "/v1/checkout/sessions",
     {"amount": 100, "currency": "usd", "metadata": {"order": "\ud800"}}, "metadata"),
    ("POST", "/v1/checkout/sessions",
     {"amount": 100, "currency": "usd", "customer_name": "Ada \udfff"}, "customer_name"),
    ("POST", "/v1/api_keys", {"label": "ci\x00"}, "label"),
    ("POST", "/v1/api_keys", {"label": "\ud83d"}, "label"),
    ("POST", "/v1/webhook_endpoints", {"url": "https://a.example/\x00"}, "url"),
    ("POST", "/v1/webhook_endpoints", {"url": "https://a.example/", "description": "a\x00"},
     "description"),
    ("POST", "/v1/webhook_endpoints",
     {"url": "https://a.example/", "enabled_events": ["checkout.session.paid\x00"]},
     "enabled_events"),
    ("POST", "/admin/outbox/replay", {"status": "dead", "kind": "invoice.create\x00"}, "kind"),
    ("POST", "/admin/outbox/replay", {"status": "dead", "reason": "why\x00"}, "reason"),
    ("POST", "/admin/merchants", {"name": "Acme\x00"}, "name"),
    ("POST", "/admin/checkout/sessions",
     {"merchant_id": "mer_\x00", "mode": "test", "amount": 100, "currency": "usd"},
     "merchant_id"),
    ("POST", "/admin/checkout/sessions",
     {"merchant_id": "mer_" + "x" * 10_000, "mode": "test", "amount": 100, "currency": "usd"},
     "merchant_id"),
    ("POST", "/admin/checkout/sessions",
     {"merchant_id": "{merchant}", "mode": "test", "amount": 100, "currency": "usd",
      "metadata": {"k": ["\x00"]}}, "metadata"),
    ("POST", "/admin/checkout/sessions",
     {"merchant_id": "{merchant}", "mode": "test", "amount": 100, "currency": "usd",
      "customer_name": "Ada\x00"}, "customer_name"),
]


@pytest.mark.parametrize(("method", "path", "body", "param"), NUL_BODIES,
                         ids=[f"{path}-{param}-{n}" for n, (_, path, _, param)
                              in enumerate(NUL_BODIES)])
async def test_nul_in_any_body_string_is_400_and_writes_nothing(client, app, merchant, method,
                                                                path, body, param):
    if body.get("merchant_id") == "{merchant}":
        body = {**body, "merchant_id": merchant.id}
    before = await table_counts(app)
    answer = await call(client, method, path, credentials(path, merchant), body)
    assert_error(answer, 400, param)
    assert await table_counts(app) == before


async def test_nul_deep_in_a_body_names_the_top_level_field(client, merchant):
    raw = json.dumps({"amount": 100, "currency": "usd",
                      "metadata": {"a": {"b": [1, {"c": "\x00"}]}}}).encode()
    answer = await client.post("/v1/checkout/sessions", content=raw,
                               headers={**merchant.headers, "Content-Type": "application/json"})
    assert_error(answer, 400, "metadata")


# --- provider webhooks -------------------------------------------------------------------------

REFERENCES = ["cs_\x00", "cs_\ud800", "cs_" + "A" * 24 + "\x00", "cs_" + "7" * 10_000,
              "x" * 10_000, "in_" + "A" * 25, "cs_" + "３" * 25]


def event_naming(provider: str, reference: str) -> dict[str, Any]:
    if provider == "stripe":
        return signing.stripe_event(reference)
    if provider == "onecom":
        return signing.onecom_event(reference)
    return signing.web3_event(reference)


async def stored_events(app: Any) -> list[Any]:
    async with app.state.payhook.engine.connect() as conn:
        return list((await conn.execute(select(webhook_events))).all())


@pytest.mark.parametrize("provider", ["stripe", "onecom", "web3"])
async def test_a_signed_event_naming_no_possible_session_is_unmatched_and_stored(
        client, app, provider):
    for reference in REFERENCES:
        raw, headers = signing.signed(provider, event_naming(provider, reference))
        answer = await client.post(f"/webhooks/{provider}", content=raw, headers=headers)
        assert answer.status_code == 200, (reference[:20], answer.text[:300])
        assert answer.json() == {"received": True, "outcome": "unmatched"}
    rows = await stored_events(app)
    assert len(rows) == len(REFERENCES)
    assert {row.session_id for row in rows} == {None}
    assert {row.outcome for row in rows} == {"unmatched"}
    counts = await table_counts(app)
    assert counts["outbox_entries"] == counts["anomalies"] == 0
    listed = await client.get(f"/admin/events?provider={provider}&limit=100", headers=ADMIN)
    assert listed.status_code == 200 and len(listed.json()["data"]) == len(REFERENCES)


def nul_everywhere(provider: str, session_id: str) -> dict[str, Any]:
    """A payment for a real session whose other strings carry NUL or an unpaired surrogate, or
    are absurdly long."""
    if provider == "stripe":
        body = signing.stripe_event(session_id, currency="usd\ud800")
        body["data"]["object"]["id"] = "pi_\x00" + "x" * 10_000
        body["data"]["object"]["metadata"]["note"] = "\x00"
        return body
    if provider == "onecom":
        body = signing.onecom_event(session_id, currency="usd\x00")
        body["payload"] = {"txn_id": "t\x00", "extra": "\x00"}
        body["event"] = "payment.completed\udc00"
        return body
    return {**signing.web3_event(session_id), "network": "main\x00net" + "x" * 10_000}


@pytest.mark.parametrize("provider", ["stripe", "onecom", "web3"])
async def test_nul_in_other_event_strings_is_stored_safely(client, app, merchant, provider):
    created = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                                json={"amount": 1999, "currency": "eth" if provider == "web3"
                                      else "usd"})
    session_id = created.json()["id"]
    raw, headers = signing.signed(provider, nul_everywhere(provider, session_id))
    answer = await client.post(f"/webhooks/{provider}", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["outcome"] in ("recorded", "applied", "ignored")
    (row,) = await stored_events(app)
    assert row.session_id == session_id and bytes(row.raw_body) == raw
    shown = await client.get(f"/admin/anomalies?session_id={session_id}", headers=ADMIN)
    assert shown.status_code == 200
    assert "\\u0000" not in json.dumps(shown.json()) and "\x00" not in json.dumps(shown.json())


@pytest.mark.parametrize("provider", ["stripe", "onecom", "web3"])
async def test_an_event_id_with_nul_is_400_and_nothing_is_stored(client, app, provider):
    body = event_naming(provider, "cs_" + "A" * 25)
    options: dict[str, Any] = {}
    if provider == "web3":
        options["message_id"] = "msg_\x00"
    else:
        body["id"] = "evt_\x00"
    raw, headers = signing.signed(provider, body, **options)
    answer = await client.post(f"/webhooks/{provider}", content=raw, headers=headers)
    assert_error(answer, 400)
    assert await stored_events(app) == []


BAD_TIMESTAMPS = ["²", "¹" * 10, "３" * 10, "9" * 5000, "9" * 400, "1" * 20, "-1", "1e9", "",
                  " ", "+1"]


def signed_at(provider: str, raw: bytes, stamp: str) -> dict[str, bytes]:
    """Headers signed correctly over a timestamp no provider would send, as bytes: Starlette
    reads header bytes as Latin-1, so ``"²"`` arrives as itself and ``"３"`` as mojibake."""
    return {name: _header_bytes(value) for name, value in _signed_at(provider, raw, stamp).items()}


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


def _signed_at(provider: str, raw: bytes, stamp: str) -> dict[str, str]:
    message = f"{stamp}.".encode() + raw
    if provider == "stripe":
        digest = hmac.new(signing.STRIPE_SECRET.encode(), message, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={stamp},v1={digest}",
                "Content-Type": "application/json"}
    if provider == "onecom":
        digest = hmac.new(signing.ONECOM_SECRET.encode(), message, hashlib.sha256).hexdigest()
        return {"X-Onecom-Timestamp": stamp, "X-Onecom-Signature": f"sha256={digest}",
                "Content-Type": "application/json"}
    key = base64.b64decode(signing.WEB3_SECRET.removeprefix("whsec_"))
    digest = base64.b64encode(hmac.new(key, b"msg_1." + message, hashlib.sha256).digest())
    return {"webhook-id": "msg_1", "webhook-timestamp": stamp,
            "webhook-signature": f"v1,{digest.decode()}", "Content-Type": "application/json"}


@pytest.mark.parametrize("provider", ["stripe", "onecom", "web3"])
async def test_a_malformed_timestamp_is_400_and_nothing_is_stored(client, app, provider):
    raw = signing.encode(event_naming(provider, "cs_" + "A" * 25))
    for stamp in BAD_TIMESTAMPS:
        answer = await client.post(f"/webhooks/{provider}", content=raw,
                                   headers=signed_at(provider, raw, stamp))
        assert_error(answer, 400)
    good = signed_at(provider, raw, str(int(time.time())))  # the helper itself signs right
    assert (await client.post(f"/webhooks/{provider}", content=raw, headers=good)
            ).status_code == 200
    assert len(await stored_events(app)) == 1
