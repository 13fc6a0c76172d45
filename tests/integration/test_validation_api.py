"""Every rule of docs/api.md's conventions over HTTP: bad input is a clear 4xx, nothing changes."""

import pytest
from sqlalchemy import func, select

from payhook.db.tables import checkout_sessions

SESSIONS = "/v1/checkout/sessions"
JSON = {"Content-Type": "application/json"}


def assert_error(answer, status: int, param: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert isinstance(error["type"], str) and isinstance(error["code"], str)
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) == {"type", "code", "message", "param"}
    if param is not None:
        assert error["param"] == param
    assert "Traceback" not in answer.text
    return error


async def assert_no_sessions(app) -> None:
    async with app.state.payhook.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(checkout_sessions)) == 0


VALID = {"amount": 1999, "currency": "usd"}

INVALID_BODIES = [
    ({"currency": "usd"}, "amount"),
    ({"amount": 100}, "currency"),
    ({**VALID, "amount": "100"}, "amount"),
    ({**VALID, "amount": True}, "amount"),
    ({**VALID, "amount": 100.0}, "amount"),
    ({**VALID, "amount": 0}, "amount"),
    ({**VALID, "amount": -5}, "amount"),
    ({**VALID, "amount": 100_000_000_000}, "amount"),
    ({"amount": 10**30 + 1, "currency": "eth"}, "amount"),
    ({**VALID, "currency": "USD"}, "currency"),
    ({**VALID, "currency": "xxx"}, "currency"),
    ({**VALID, "currency": "xts"}, "currency"),
    ({**VALID, "currency": "usdc"}, "currency"),  # not configured
    ({**VALID, "currency": 840}, "currency"),
    ({**VALID, "status": "paid"}, "status"),
    ({**VALID, "mode": "live"}, "mode"),
    ({**VALID, "merchant_id": "mer_x"}, "merchant_id"),
    ({**VALID, "surprise": 1}, "surprise"),
    ({**VALID, "success_url": "javascript:alert(1)"}, "success_url"),
    ({**VALID, "success_url": "data:text/html,hi"}, "success_url"),
    ({**VALID, "success_url": "https://user:pw@shop.example/"}, "success_url"),
    ({**VALID, "success_url": "https://user@shop.example/"}, "success_url"),
    ({**VALID, "success_url": "/relative/path"}, "success_url"),
    ({**VALID, "success_url": "https:///no-host"}, "success_url"),
    ({**VALID, "success_url": "ftp://shop.example/"}, "success_url"),
    ({**VALID, "cancel_url": "https://shop.example/\nSet-Cookie: x"}, "cancel_url"),
    ({**VALID, "cancel_url": "https://shop.example/a b"}, "cancel_url"),
    ({**VALID, "cancel_url": "https://shop.example/" + "a" * 2048}, "cancel_url"),
    ({**VALID, "customer_email": "not-an-address"}, "customer_email"),
    ({**VALID, "customer_email": "a@b.example, c@d.example"}, "customer_email"),
    ({**VALID, "customer_email": "a b@c.example"}, "customer_email"),
    ({**VALID, "customer_email": "a" * 250 + "@b.example"}, "customer_email"),
    ({**VALID, "customer_name": "Ada\x00Lovelace"}, "customer_name"),
    ({**VALID, "customer_name": "A" * 201}, "customer_name"),
    ({**VALID, "metadata": {f"k{n}": "v" for n in range(21)}}, "metadata"),
    ({**VALID, "metadata": {"k" * 41: "v"}}, "metadata"),
    ({**VALID, "metadata": {"k": "v" * 501}}, "metadata"),
    ({**VALID, "metadata": {"k": 1}}, "metadata"),
    ({**VALID, "metadata": ["k"]}, "metadata"),
    ({**VALID, "expires_in": 59}, "expires_in"),
    ({**VALID, "expires_in": 604_801}, "expires_in"),
    ({**VALID, "expires_in": "3600"}, "expires_in"),
]


@pytest.mark.parametrize(("body", "param"), INVALID_BODIES,
                         ids=[f"{p}-{n}" for n, (_, p) in enumerate(INVALID_BODIES)])
async def test_invalid_create_bodies_are_400_naming_the_field(client, app, merchant, body, param):
    answer = await client.post(SESSIONS, json=body, headers=merchant.headers)
    assert_error(answer, 400, param)
    await assert_no_sessions(app)


async def test_the_limits_themselves_are_accepted(client, merchant):
    for body in ({"amount": 1, "currency": "usd"}, {"amount": 99_999_999_999, "currency": "jpy"},
                 {"amount": 10**30, "currency": "eth"},
                 {**VALID, "expires_in": 60}, {**VALID, "expires_in": 604_800},
                 {**VALID, "metadata": {f"k{n}": "v" * 500 for n in range(20)}},
                 {**VALID, "success_url": "http://localhost:3000/ok"},
                 {**VALID, "customer_name": "Zoë Ångström-Łukasiewicz"}):
        answer = await client.post(SESSIONS, json=body, headers=merchant.headers)
        assert answer.status_code == 201, (body, answer.text)


async def test_live_mode_accepts_only_https_redirects(client):
    from tests.conftest import ADMIN_TOKEN
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    merchant = (await client.post("/admin/merchants", json={"name": "m"}, headers=admin)).json()
    base = {"merchant_id": merchant["id"], "mode": "live", **VALID}
    plain = await client.post("/admin/checkout/sessions", headers=admin,
                              json={**base, "success_url": "http://shop.example/"})
    assert_error(plain, 400, "success_url")
    secure = await client.post("/admin/checkout/sessions", headers=admin,
                               json={**base, "success_url": "https://shop.example/"})
    assert secure.status_code == 201


@pytest.mark.parametrize("raw", [
    b'{"amount": 1999, "currency": "usd", "amount": 5}',
    b'{"amount": NaN, "currency": "usd"}',
    b'{"amount": Infinity, "currency": "usd"}',
    b'{"amount": -Infinity, "currency": "usd"}',
    b'{"amount": 1999, "currency": "usd"',
    b'{"amount": 1999, "currency": "usd"} trailing',
    b'[1, 2]',
    b'"just a string"',
    b'\xff\xfe\x00garbage',
    b'{"metadata": {"a": "1", "a": "2"}, "amount": 1, "currency": "usd"}',
])
async def test_malformed_json_is_400(client, app, merchant, raw):
    answer = await client.post(SESSIONS, content=raw, headers={**merchant.headers, **JSON})
    assert_error(answer, 400)
    await assert_no_sessions(app)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx"])
async def test_a_body_that_is_not_declared_json_is_415(client, app, merchant, content_type):
    headers = dict(merchant.headers)
    if content_type:
        headers["Content-Type"] = content_type
    answer = await client.post(SESSIONS, content=b'{"amount": 1, "currency": "usd"}',
                               headers=headers)
    assert_error(answer, 415)
    await assert_no_sessions(app)


async def test_a_charset_parameter_is_fine(client, merchant):
    answer = await client.post(SESSIONS, content=b'{"amount": 1, "currency": "usd"}',
                               headers={**merchant.headers,
                                        "Content-Type": "application/json; charset=utf-8"})
    assert answer.status_code == 201


async def test_a_body_over_one_mebibyte_is_413(client, app, merchant):
    padding = "x" * (1_048_576 + 10)
    raw = ('{"amount": 1, "currency": "usd", "customer_name": "' + padding + '"}').encode()
    answer = await client.post(SESSIONS, content=raw, headers={**merchant.headers, **JSON})
    assert_error(answer, 413)
    await assert_no_sessions(app)


async def test_a_chunked_body_over_one_mebibyte_is_413(client, app, merchant):
    async def chunks():
        yield b'{"amount": 1, "currency": "usd", "customer_name": "'
        for _ in range(20):
            yield b"x" * 65_536
        yield b'"}'

    answer = await client.post(SESSIONS, content=chunks(), headers={**merchant.headers, **JSON})
    assert "content-length" not in answer.request.headers
    assert_error(answer, 413)
    await assert_no_sessions(app)


async def test_unknown_routes_and_methods_use_the_error_shape(client, merchant):
    assert_error(await client.get("/v1/nothing-here", headers=merchant.headers), 404)
    assert_error(await client.put(SESSIONS, headers=merchant.headers), 405)
    assert_error(await client.delete(f"{SESSIONS}/cs_x", headers=merchant.headers), 405)


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer sk_test_nope",
                                           "Basic c2tfdGVzdDo=", "Bearer sk_live_" + "a" * 40])
async def test_missing_or_invalid_credentials_are_401(client, app, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    assert_error(await client.get(SESSIONS, headers=headers), 401)
    assert_error(await client.post(SESSIONS, json=VALID, headers=headers), 401)
    await assert_no_sessions(app)


async def test_bad_idempotency_key_is_400(client, app, merchant):
    answer = await client.post(SESSIONS, json=VALID,
                               headers={**merchant.headers, "Idempotency-Key": "k" * 256})
    assert_error(answer, 400, "Idempotency-Key")
    await assert_no_sessions(app)


async def test_cancel_refuses_a_body_with_fields(client, merchant):
    created = await client.post(SESSIONS, json=VALID, headers=merchant.headers)
    answer = await client.post(f"{SESSIONS}/{created.json()['id']}/cancel",
                               json={"status": "paid"}, headers=merchant.headers)
    assert_error(answer, 400, "status")
