"""The customer's access page on both databases: GET and HEAD never reveal the provisioned key
(mail scanners and link previews fetch links); POST /access/{id}/reveal with the token in the
body reveals it once (form or JSON, even to concurrent reveals), then 409; private headers on
every answer, and one 401 for every token that is not a valid, unexpired token for this very
session."""

import asyncio
import base64
import json
import logging
import time
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
from sqlalchemy import select, text

from payhook.crypto import Sealer, derive_key
from payhook.db.tables import api_keys
from tests.conftest import SECRET_KEY
from tests.paying import drain, paid_session, provisioned_keys, session_row

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LINK_KEY = derive_key(SECRET_KEY, "access-links")


async def issued(client, app, settings, merchant, mode: str = "live", **body) -> tuple[str, str]:
    """A paid, drained session: (its id, the path and query of its access link)."""
    session_id = await paid_session(client, merchant.id, mode, **body)
    await drain(app, settings)
    url = urlsplit((await session_row(app, session_id)).customer_access_url)
    return session_id, f"{url.path}?{url.query}"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def reveal(client, session_id: str, token: str, **headers: str):
    return await client.post(f"/access/{session_id}/reveal", json={"token": token},
                             headers=headers)


async def still_sealed(app, merchant) -> bool:
    [stored] = await provisioned_keys(app, merchant.id)
    return stored.sealed_secret is not None


def assert_private(answer) -> None:
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"


def assert_error(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert_private(answer)
    if answer.headers["content-type"].startswith("text/html"):  # a browser gets a page
        assert f'data-code="{code}"' in answer.text
        assert "content-security-policy" in answer.headers
        return
    error = answer.json()["error"]
    assert error["code"] == code and set(error) == {"type", "code", "message", "param"}


def assert_401(answer) -> None:
    assert_error(answer, 401, "invalid_access_token")
    if answer.headers["content-type"].startswith("text/html"):
        assert "This link is invalid or has expired" in answer.text
    else:
        assert answer.json()["error"]["type"] == "authentication_error"


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


class Forms(HTMLParser):
    """The page's forms as a browser sees them: method, action and fields."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"method": attributes.get("method"),
                               "action": attributes.get("action"), "fields": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")


@pytest.mark.parametrize(("method", "accept"), [
    ("GET", None), ("GET", "*/*"), ("GET", "application/json"), ("GET", "text/html"),
    ("GET", BROWSER), ("HEAD", None), ("HEAD", BROWSER)])
async def test_reading_the_page_never_reveals_the_key(client, app, settings, merchant, method,
                                                      accept):
    _, link = await issued(client, app, settings, merchant)
    [stored] = await provisioned_keys(app, merchant.id)
    raw = Sealer(SECRET_KEY).open(stored.sealed_secret)
    for _ in range(2):
        answer = await client.request(method, link, headers={"Accept": accept} if accept else {})
        assert answer.status_code == 200
        assert_private(answer)
        assert raw not in answer.text
    assert await still_sealed(app, merchant)


async def test_the_page_says_a_key_waits_and_where_to_reveal_it(client, app, settings,
                                                                merchant):
    session_id, link = await issued(client, app, settings, merchant)
    page = await client.get(link)
    assert page.status_code == 200 and page.headers["content-type"] == "application/json"
    body = page.json()
    assert set(body) == {"object", "session", "invoice", "api_key"}
    assert body["object"] == "customer_access"
    session = body["session"]
    assert (session["id"], session["status"], session["mode"]) == (session_id, "paid", "live")
    assert session["customer_access"]["url"].endswith(link)
    assert body["invoice"]["id"] == session["invoice_id"] and body["invoice"]["object"] == "invoice"
    [stored] = await provisioned_keys(app, merchant.id)
    key = body["api_key"]
    assert "secret" not in key
    assert (key["id"], key["prefix"], key["mode"], key["status"]) == (
        stored.id, stored.prefix, "live", "active")
    assert key["revealed"] is False
    assert key["reveal_url"] == f"http://payhook.test/access/{session_id}/reveal"


async def test_a_json_reveal_answers_the_key_once(client, app, settings, merchant):
    session_id, link = await issued(client, app, settings, merchant)
    first = await reveal(client, session_id, token_of(link))
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert_private(first)
    key = first.json()
    assert key["object"] == "api_key" and key["secret"].startswith("sk_live_")
    assert key["label"] == f"provisioned for {session_id}"
    works = await client.get(f"/v1/checkout/sessions/{session_id}",
                             headers={"Authorization": f"Bearer {key['secret']}"})
    assert works.status_code == 200
    assert not await still_sealed(app, merchant)  # the sealed copy is destroyed by the reveal

    assert_error(await reveal(client, session_id, token_of(link)), 409,
                 "api_key_already_revealed")
    after = (await client.get(link)).json()["api_key"]
    assert after["revealed"] is True and "reveal_url" not in after and "secret" not in after


async def test_the_pages_button_reveals_the_key_once(client, app, settings, merchant):
    session_id, link = await issued(client, app, settings, merchant,
                                    customer_name="<script>alert(1)</script> & Co")
    page = await client.get(link, headers={"Accept": BROWSER})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    assert "<script" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page.text
    [form] = Forms(page.text).forms
    action = urljoin(f"http://payhook.test{link}", form["action"])
    assert form["method"] == "post" and action == f"http://payhook.test/access/{session_id}/reveal"
    assert form["fields"] == {"token": token_of(link)}  # in the body, not in the action's URL
    assert "Reveal your API key" in page.text

    shown = await client.post(action, data=form["fields"], headers={"Accept": BROWSER})
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
    assert_private(shown)
    assert "form-action 'self'" in shown.headers["content-security-policy"]
    [secret] = [word for word in shown.text.replace("<", " ").replace(">", " ").split()
                if word.startswith("sk_live_")]
    assert "will not be shown again" in shown.text
    assert (await client.get("/v1/api_keys", headers={"Authorization": f"Bearer {secret}"})
            ).status_code == 200

    again = await client.post(action, data=form["fields"], headers={"Accept": BROWSER})
    assert_error(again, 409, "api_key_already_revealed")
    revisited = await client.get(link, headers={"Accept": BROWSER})
    assert secret not in revisited.text and not Forms(revisited.text).forms
    assert "revealed already" in revisited.text


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_concurrent_reveals_on_postgresql_reveal_the_key_once(client, app, settings,
                                                                    merchant):
    """All the reveals have read the sealed key and wait at the compare-and-set (a row lock
    holds them there) when the lock goes: exactly one UPDATE still finds the secret."""
    session_id, link = await issued(client, app, settings, merchant)
    [stored] = await provisioned_keys(app, merchant.id)
    engine, racers = app.state.payhook.engine, 8
    async with engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(select(api_keys.c.id).where(api_keys.c.id == stored.id)
                             .with_for_update())
        answers = asyncio.gather(*(reveal(client, session_id, token_of(link))
                                   for _ in range(racers)))
        while await waiting_updates(engine) < racers:
            await asyncio.sleep(0.05)
        await transaction.commit()
        results = await answers
    assert sorted(answer.status_code for answer in results) == [200] + [409] * (racers - 1)
    [winner] = [answer.json() for answer in results if answer.status_code == 200]
    assert winner["secret"].startswith("sk_live_")
    assert {answer.json()["error"]["code"] for answer in results
            if answer.status_code == 409} == {"api_key_already_revealed"}


async def waiting_updates(engine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE api_keys%'")))


async def test_concurrent_reveals_reveal_the_key_once(client, app, settings, merchant):
    session_id, link = await issued(client, app, settings, merchant)
    answers = await asyncio.gather(*(reveal(client, session_id, token_of(link))
                                     for _ in range(8)))
    assert sorted(answer.status_code for answer in answers) == [200] + [409] * 7


async def test_a_token_in_the_reveals_url_is_refused(client, app, settings, merchant):
    session_id, link = await issued(client, app, settings, merchant)
    token = token_of(link)
    path = f"/access/{session_id}/reveal"
    for target, body in ((f"{path}?token={token}", {}),
                         (f"{path}?token={token}", {"token": token}),
                         (f"{path}?utm_source=mail", {"token": token})):
        answer = await client.post(target, json=body)
        assert answer.status_code == 400, target
        assert_private(answer)
    assert_error(await client.post(f"{path}?token={token}", data={"token": token}), 400,
                 "token_in_url")
    assert await still_sealed(app, merchant)


@pytest.mark.parametrize(("headers", "content", "status"), [
    ({"Content-Type": "text/plain"}, b"token=x", 415),
    (FORM, b"token", 400),
    (FORM, b"token=%ff", 400),
    (FORM, b"token=a&token=a", 400),
    (FORM, b"token=a&other=b", 400),
    ({"Content-Type": "application/json"}, b'{"token": 1}', 400),
    ({"Content-Type": "application/json"}, b'{"token": "a", "token": "a"}', 400),
    ({"Content-Type": "application/json"}, b'["token"]', 400),
    ({"Content-Type": "application/json"}, b"x" * 1_048_577, 413),
])
async def test_a_malformed_reveal_body_changes_nothing(client, app, settings, merchant, headers,
                                                       content, status):
    session_id, _ = await issued(client, app, settings, merchant)
    answer = await client.post(f"/access/{session_id}/reveal", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert_private(answer)
    if status == 415:  # the answer names both bodies the reveal takes
        assert "application/x-www-form-urlencoded" in answer.json()["error"]["message"]
    assert await still_sealed(app, merchant)


async def test_a_session_without_a_waiting_key_has_nothing_to_reveal(client, app, settings,
                                                                     merchant):
    session_id, link = await issued(client, app, settings, merchant, mode="test")  # a test key
    assert (await client.get(link)).json()["api_key"] is None
    assert_error(await reveal(client, session_id, token_of(link)), 409, "no_api_key")

    live_id, live_link = await issued(client, app, settings, merchant)
    [stored] = await provisioned_keys(app, merchant.id)
    async with app.state.payhook.engine.begin() as conn:  # revoked before anyone revealed it
        await conn.execute(api_keys.update().where(api_keys.c.id == stored.id).values(
            revoked_at=stored.created_at, sealed_secret=None))
    assert_error(await reveal(client, live_id, token_of(live_link)), 409, "api_key_revoked")
    assert (await client.get(live_link)).json()["api_key"]["status"] == "revoked"
    page = await client.get(live_link, headers={"Accept": BROWSER})
    assert "was revoked" in page.text and not Forms(page.text).forms


async def test_a_key_that_no_longer_opens_is_a_409_and_stays_sealed(client, app, settings,
                                                                   merchant):
    """Sealed under another secret key (the service's was changed): a clear 409, never a 500,
    and the sealed copy is kept, so restoring the old secret key can still reveal it."""
    session_id, link = await issued(client, app, settings, merchant)
    [stored] = await provisioned_keys(app, merchant.id)
    foreign = Sealer("another-secret-key-0123456789abcdef0123").seal("sk_live_x")
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(api_keys.update().where(api_keys.c.id == stored.id).values(
            sealed_secret=foreign))
    assert_error(await reveal(client, session_id, token_of(link)), 409, "api_key_unavailable")
    assert await still_sealed(app, merchant)


async def test_every_token_but_the_right_one_is_a_401(client, app, settings, merchant):
    session_id, link = await issued(client, app, settings, merchant)
    other_id, other_link = await issued(client, app, settings, merchant, mode="test")
    token, other_token = token_of(link), token_of(other_link)
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    tokens = {
        "empty token": (session_id, ""),
        "not a jwt": (session_id, "not-a-jwt"),
        "tampered signature": (session_id, f"{header}.{payload}.{flipped}"),
        "tampered claims": (session_id, f"{header}.{other_token.split('.')[1]}.{signature}"),
        "alg none": (session_id, unsigned(claims(session_id))),
        "another key": (session_id, jwt.encode(claims(session_id), b"k" * 32, "HS256")),
        "the raw secret as key": (session_id, jwt.encode(
            claims(session_id), SECRET_KEY.encode(), "HS256")),
        "another algorithm": (session_id, hs512(claims(session_id))),
        "wrong audience": (session_id, jwt.encode(
            claims(session_id, aud="payhook:other"), LINK_KEY, "HS256")),
        "wrong issuer": (session_id, jwt.encode(
            claims(session_id, iss="someone"), LINK_KEY, "HS256")),
        "expired": (session_id, jwt.encode(
            claims(session_id, iat=int(time.time()) - 7200, exp=int(time.time()) - 60),
            LINK_KEY, "HS256")),
        "no expiry": (session_id, jwt.encode(
            {k: v for k, v in claims(session_id).items() if k != "exp"}, LINK_KEY, "HS256")),
        "another session's token": (session_id, other_token),
        "this token on another session": (other_id, token),
        "a valid token for an unknown session": ("cs_unknown", jwt.encode(
            claims("cs_unknown"), LINK_KEY, "HS256")),
        "case-changed session id": (session_id.upper(), token),
    }
    path = f"/access/{session_id}"
    pages = {case: f"/access/{target}?token={value}" for case, (target, value) in tokens.items()}
    pages.update({"missing token": path, "repeated token": f"{path}?token={token}&token={token}",
                  "another parameter": f"{path}?token={token}&utm_source=mail"})
    for case, target in pages.items():
        for accept in ("application/json", BROWSER):
            answer = await client.get(target, headers={"Accept": accept})
            assert answer.status_code == 401, case
            assert_401(answer)
    for target, value in tokens.values():
        assert_401(await reveal(client, target, value))
        assert_401(await client.post(f"/access/{target}/reveal", data={"token": value},
                                     headers={"Accept": BROWSER}))
    for body in ({}, {"token": None}):
        assert_401(await client.post(f"{path}/reveal", json=body))
    assert_401(await client.post(f"{path}/reveal"))
    assert_401(await client.post(f"{path}/reveal", content=b"token=", headers=FORM))
    # None of them consumed the reveal.
    assert await still_sealed(app, merchant)
    assert (await reveal(client, session_id, token)).json()["secret"]


async def test_tokens_and_keys_stay_out_of_the_logs(client, app, settings, merchant, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="payhook")
    session_id, link = await issued(client, app, settings, merchant)
    token = token_of(link)
    await client.get(link, headers={"Accept": BROWSER})
    secret = (await client.post(f"/access/{session_id}/reveal", data={"token": token})
              ).json()["secret"]
    await reveal(client, session_id, token)  # the 409
    await client.post(f"/access/{session_id}/reveal?token={token}")  # the 400
    await client.get(f"/access/{session_id}?token=forged.token.value")
    await reveal(client, session_id, "forged.token.value")
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records
                       if not record.name.startswith("httpx"))  # the test's own client
    assert "/access/{session_id}" in logged  # the access line names the route template
    assert "/access/{session_id}/reveal" in logged
    for private in (token, secret, "forged.token.value"):
        assert private not in logged
