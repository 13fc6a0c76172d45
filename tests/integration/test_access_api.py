"""GET /access/{session_id}?token=… on both databases: the provisioned key revealed once (even to
concurrent first visits), JSON or HTML, private headers on every answer, and one 401 for every
token that is not a valid, unexpired token for this very session."""

import asyncio
import base64
import json
import logging
import time
import warnings
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from payhook.crypto import derive_key
from tests.conftest import SECRET_KEY
from tests.paying import drain, paid_session, provisioned_keys, session_row

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
LINK_KEY = derive_key(SECRET_KEY, "access-links")


async def issued(client, app, settings, merchant, mode: str = "live", **body) -> tuple[str, str]:
    """A paid, drained session: (its id, the path and query of its access link)."""
    session_id = await paid_session(client, merchant.id, mode, **body)
    await drain(app, settings)
    url = urlsplit((await session_row(app, session_id)).customer_access_url)
    return session_id, f"{url.path}?{url.query}"


def assert_private(answer) -> None:
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"


def assert_401(answer) -> None:
    assert answer.status_code == 401, answer.text
    assert_private(answer)
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_access_token")
    assert set(error) == {"type", "code", "message", "param"}


def claims(session_id: str, **changes) -> dict:
    now = int(time.time())
    return {"iss": "payhook", "aud": "payhook:access", "sub": session_id, "iat": now,
            "exp": now + 3600, "jti": "al_test", **changes}


def unsigned(payload: dict) -> str:
    """An ``alg: none`` token, built by hand."""
    def part(document: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def hs512(payload: dict) -> str:
    """Signed with the right key, by an algorithm the server does not accept."""
    with warnings.catch_warnings():  # PyJWT warns that 32 bytes is short for SHA-512
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(payload, LINK_KEY, "HS512")


async def test_the_first_visit_reveals_the_key_and_the_second_does_not(client, app, settings,
                                                                       merchant):
    session_id, link = await issued(client, app, settings, merchant)
    first = await client.get(link)
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert_private(first)
    body = first.json()
    assert set(body) == {"object", "session", "invoice", "api_key"}
    assert body["object"] == "customer_access"
    session = body["session"]
    assert (session["id"], session["status"], session["mode"]) == (session_id, "paid", "live")
    assert session["customer_access"]["url"].endswith(link)
    assert body["invoice"]["id"] == session["invoice_id"] and body["invoice"]["object"] == "invoice"
    key = body["api_key"]
    assert key["secret"].startswith("sk_live_") and key["label"] == f"provisioned for {session_id}"
    works = await client.get(f"/v1/checkout/sessions/{session_id}",
                             headers={"Authorization": f"Bearer {key['secret']}"})
    assert works.status_code == 200
    [stored] = await provisioned_keys(app, merchant.id)
    assert stored.sealed_secret is None  # the sealed copy is destroyed by the reveal

    second = await client.get(link)
    assert second.status_code == 200 and second.json()["api_key"] is None
    assert second.json()["session"] == session


async def test_concurrent_first_visits_reveal_the_key_once(client, app, settings, merchant):
    _, link = await issued(client, app, settings, merchant)
    answers = await asyncio.gather(*(client.get(link) for _ in range(8)))
    assert {answer.status_code for answer in answers} == {200}
    revealed = [answer.json()["api_key"] for answer in answers if answer.json()["api_key"]]
    assert len(revealed) == 1 and revealed[0]["secret"].startswith("sk_live_")


async def test_a_session_without_a_provisioned_key_shows_none(client, app, settings, merchant):
    _, link = await issued(client, app, settings, merchant, mode="test")  # it has a test key
    assert (await client.get(link)).json()["api_key"] is None


@pytest.mark.parametrize("accept", [None, "*/*", "application/json",
                                    "text/html;q=0.5, application/json"])
async def test_json_unless_html_is_preferred(client, app, settings, merchant, accept):
    _, link = await issued(client, app, settings, merchant)
    answer = await client.get(link, headers={"Accept": accept} if accept else {})
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["api_key"]["secret"]


async def test_a_browser_gets_an_escaped_html_page(client, app, settings, merchant):
    session_id, link = await issued(client, app, settings, merchant,
                                    customer_name="<script>alert(1)</script> & Co")
    page = await client.get(link, headers={"Accept": BROWSER})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_private(page)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page.text
    assert session_id in page.text and "sk_live_" in page.text
    again = await client.get(link, headers={"Accept": BROWSER})
    assert "sk_live_" not in again.text


async def test_a_head_request_does_not_consume_the_reveal(client, app, settings, merchant):
    _, link = await issued(client, app, settings, merchant)
    head = await client.head(link)
    assert head.status_code == 200
    assert_private(head)
    assert (await client.get(link)).json()["api_key"]["secret"]


async def test_every_token_but_the_right_one_is_a_401(client, app, settings, merchant):
    session_id, link = await issued(client, app, settings, merchant)
    other_id, other_link = await issued(client, app, settings, merchant, mode="test")
    token = parse_qs(urlsplit(link).query)["token"][0]
    other_token = parse_qs(urlsplit(other_link).query)["token"][0]
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    path = f"/access/{session_id}"
    cases = {
        "missing token": path,
        "empty token": f"{path}?token=",
        "not a jwt": f"{path}?token=not-a-jwt",
        "tampered signature": f"{path}?token={header}.{payload}.{flipped}",
        "tampered claims": f"{path}?token={header}.{other_token.split('.')[1]}.{signature}",
        "alg none": f"{path}?token={unsigned(claims(session_id))}",
        "another key": f"{path}?token=" + jwt.encode(claims(session_id), b"k" * 32, "HS256"),
        "the raw secret as key": f"{path}?token=" + jwt.encode(
            claims(session_id), SECRET_KEY.encode(), "HS256"),
        "another algorithm": f"{path}?token={hs512(claims(session_id))}",
        "wrong audience": f"{path}?token=" + jwt.encode(
            claims(session_id, aud="payhook:other"), LINK_KEY, "HS256"),
        "wrong issuer": f"{path}?token=" + jwt.encode(
            claims(session_id, iss="someone"), LINK_KEY, "HS256"),
        "expired": f"{path}?token=" + jwt.encode(
            claims(session_id, iat=int(time.time()) - 7200, exp=int(time.time()) - 60),
            LINK_KEY, "HS256"),
        "no expiry": f"{path}?token=" + jwt.encode(
            {k: v for k, v in claims(session_id).items() if k != "exp"}, LINK_KEY, "HS256"),
        "another session's token": f"{path}?token={other_token}",
        "this token on another session": f"/access/{other_id}?token={token}",
        "a valid token for an unknown session": "/access/cs_unknown?token=" + jwt.encode(
            claims("cs_unknown"), LINK_KEY, "HS256"),
        "case-changed session id": f"/access/{session_id.upper()}?token={token}",
        "repeated token": f"{path}?token={token}&token={token}",
        "another parameter": f"{path}?token={token}&utm_source=mail",
    }
    for case, target in cases.items():
        for accept in ("application/json", BROWSER):
            answer = await client.get(target, headers={"Accept": accept})
            assert answer.status_code == 401, case
            assert_401(answer)
    # None of them consumed the reveal.
    assert (await client.get(link)).json()["api_key"]["secret"]


async def test_tokens_and_keys_stay_out_of_the_logs(client, app, settings, merchant, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="payhook")
    session_id, link = await issued(client, app, settings, merchant)
    secret = (await client.get(link)).json()["api_key"]["secret"]
    await client.get(f"/access/{session_id}?token=forged.token.value")
    token = parse_qs(urlsplit(link).query)["token"][0]
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records
                       if not record.name.startswith("httpx"))  # the test's own client
    assert "/access/{session_id}" in logged  # the access line names the route template
    for private in (token, secret, "forged.token.value"):
        assert private not in logged
