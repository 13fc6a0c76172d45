"""The operators' console over HTTP on both databases: sign-in (rate-limited, never logging the
token), the guard and its CSRF tokens, the search, one session's story and the replays."""

import logging
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from payhook import clock
from payhook.app import create_app
from payhook.db.tables import outbox_entries, outbox_replays
from payhook.outbox.retry import RetryPolicy
from tests import signing
from tests.conftest import ADMIN_TOKEN, make_settings, new_merchant
from tests.flows import drainer
from tests.paying import new_session

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SCRIPT = "<script>alert('pwned')</script>"


@pytest.fixture
def settings(database_url):
    """Deliveries to a closed loopback port, dead at their first failure."""
    return make_settings(database_url, allow_private_urls=True, outbox_max_attempts=1)


def csrf_of(page) -> str:
    return CSRF.search(page.text).group(1)


async def sign_in(client, token: str = ADMIN_TOKEN, name: str = "Ada"):
    form = await client.get("/console/sign-in", headers=BROWSER)
    return await client.post("/console/sign-in", headers=BROWSER,
                             data={"csrf": csrf_of(form), "token": token, "name": name})


async def dead_delivery_story(client, app, settings, merchant, backoff: float = 0.01) -> str:
    """A paid session whose one delivery failed (dead at its last attempt), paid by a Stripe
    event carrying a script."""
    hook = await client.post("/v1/webhook_endpoints", headers=merchant.headers,
                             json={"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.text
    session_id = await new_session(client, merchant.id, customer_email="Ada@Example.com",
                                   customer_name="Ada <b>Lovelace</b>")
    event = signing.stripe_event(session_id)
    event["data"]["object"]["description"] = SCRIPT
    raw, headers = signing.signed("stripe", event)
    assert (await client.post("/webhooks/stripe", content=raw, headers=headers)).status_code == 200
    engine = app.state.payhook.engine
    await drainer(settings, engine, RetryPolicy(backoff)).drain()
    return session_id


async def test_the_console_needs_a_sign_in_and_the_right_token(client, caplog):
    caplog.set_level(logging.INFO)
    away = await client.get("/console", headers=BROWSER)
    assert away.status_code == 303 and away.headers["location"] == "/console/sign-in"
    wrong = "wrong-token-that-must-never-be-logged"
    for _ in range(5):
        assert (await sign_in(client, wrong)).status_code == 401
    limited = await sign_in(client, wrong)
    assert limited.status_code == 429 and "Too many wrong tokens" in limited.text
    assert (await sign_in(client)).status_code == 429  # even the right one, until it passes
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    assert "wrong admin token" in logged and wrong not in logged and ADMIN_TOKEN not in logged


async def test_signing_in_gives_a_strict_cookie_and_signing_out_ends_it(client):
    signed = await sign_in(client)
    assert signed.status_code == 303 and signed.headers["location"] == "/console"
    cookie = [value for name, value in signed.headers.multi_items()
              if name == "set-cookie" and value.startswith("payhook_console=")][0]
    for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/console"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # the base URL is http
    home = await client.get("/console", headers=BROWSER)
    assert home.status_code == 200 and "dead outbox rows" in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert home.headers["cache-control"] == "no-store"
    refused = await client.post("/console/sign-out", headers=BROWSER, data={})
    assert refused.status_code == 403  # no CSRF token: still signed in
    kept = client.cookies["payhook_console"]  # a copy of the cookie (a shared machine, a thief)
    out = await client.post("/console/sign-out", headers=BROWSER,
                            data={"csrf": csrf_of(home)})
    assert out.status_code == 303
    assert (await client.get("/console", headers=BROWSER)).status_code == 303
    # signing out refuses the cookie itself, not only this browser's copy of it
    client.cookies.set("payhook_console", kept, path="/console")
    replayed = await client.get("/console", headers=BROWSER)
    assert replayed.status_code == 303 and replayed.headers["location"] == "/console/sign-in"
    client.cookies.clear()
    again = await sign_in(client)  # a new sign-in gets a new cookie that works
    assert again.status_code == 303
    assert (await client.get("/console", headers=BROWSER)).status_code == 200


async def test_the_story_of_a_session_found_by_anything(client, app, settings, merchant):
    session_id = await dead_delivery_story(client, app, settings, merchant)
    await sign_in(client)
    invoice_id = (await client.get(f"/v1/checkout/sessions/{session_id}",
                                   headers=merchant.headers)).json()["invoice_id"]
    events = (await client.get("/admin/events", headers={
        "Authorization": f"Bearer {ADMIN_TOKEN}"})).json()["data"]
    for text in (session_id, "ada@example.com", invoice_id, events[0]["event_id"],
                 events[0]["id"]):
        found = await client.get("/console/search", params={"q": text}, headers=BROWSER)
        assert found.status_code == 303, text
        assert found.headers["location"] == f"/console/sessions/{session_id}"
    none = await client.get("/console/search", params={"q": "0x" + "ab" * 32}, headers=BROWSER)
    assert none.status_code == 200 and "Nothing matches" in none.text

    story = await client.get(f"/console/sessions/{session_id}", headers=BROWSER)
    assert story.status_code == 200
    text = story.text
    assert SCRIPT not in text and "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in text
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in text and "19.99 USD" in text
    for told in ("Session created", "stripe event", "Paid", "Invoice", "Outbox",
                 "delivery.send", "Delivery of", "http://127.0.0.1:9/hook", "dead"):
        assert told in text, told
    assert text.count('action="/console/outbox/') == 1  # the one dead row has a replay button
    [dead_id] = re.findall(r'action="/console/outbox/(ob_\w+)/replay"', text)
    assert f'Sent by outbox row <a href="#{dead_id}">' in text  # the delivery leads to it


async def test_replays_need_the_csrf_token_and_leave_an_audit_trail(client, app, settings,
                                                                     merchant):
    session_id = await dead_delivery_story(client, app, settings, merchant)
    await sign_in(client, name="Grace")
    story = await client.get(f"/console/sessions/{session_id}", headers=BROWSER)
    [entry_id] = re.findall(r'action="/console/outbox/(ob_\w+)/replay"', story.text)

    refused = await client.post(f"/console/outbox/{entry_id}/replay", headers=BROWSER,
                                data={"csrf": "forged", "reason": "x"})
    assert refused.status_code == 403 and 'data-code="csrf_failed"' in refused.text
    preview = await client.get("/console/replay/preview", params={"kind": "delivery.send"},
                               headers=BROWSER)
    assert entry_id in preview.text and "http://127.0.0.1:9/hook" in preview.text
    assert "send checkout.session.paid" in preview.text
    assert "By kind: <strong>1</strong> delivery.send." in preview.text
    assert await dead(app) == [entry_id]  # the dry run wrote nothing
    no_reason = await client.post("/console/replay", headers=BROWSER,
                                  data={"csrf": csrf_of(preview), "entries": entry_id})
    assert no_reason.status_code == 400 and await dead(app) == [entry_id]

    done = await client.post("/console/replay", headers=BROWSER, data={
        "csrf": csrf_of(preview), "entries": entry_id, "reason": "endpoint is back"})
    assert done.status_code == 200 and "Replayed 1 row" in done.text
    assert await dead(app) == []
    async with app.state.payhook.engine.connect() as conn:
        [audit] = (await conn.execute(select(outbox_replays))).all()
    assert audit.entry_ids == [entry_id] and audit.reason == "endpoint is back"
    assert audit.actor.startswith("console:Grace:")
    trail = await client.get("/console/replays", headers=BROWSER)
    assert "endpoint is back" in trail.text and "console:Grace" in trail.text


async def dead(app) -> list[str]:
    async with app.state.payhook.engine.connect() as conn:
        return list((await conn.execute(select(outbox_entries.c.id).where(
            outbox_entries.c.status == "dead"))).scalars())


async def test_lists_filter_and_refuse_what_they_do_not_know(client, app, settings, merchant):
    session_id = await dead_delivery_story(client, app, settings, merchant)
    await sign_in(client)
    for path, shown in (("/console/outbox?status=dead", "delivery.send"),
                        ("/console/deliveries?status=failing", session_id),
                        ("/console/events?provider=stripe", session_id),
                        ("/console/anomalies", "No anomalies"),
                        ("/console/replays", "Nothing has been replayed")):
        page = await client.get(path, headers=BROWSER)
        assert page.status_code == 200 and shown in page.text, path
    bad = await client.get("/console/outbox?status=sleeping", headers=BROWSER)
    assert bad.status_code == 400 and 'data-code="parameter_invalid"' in bad.text
    paged = await client.get("/console/outbox?limit=1", headers=BROWSER)
    assert "starting_after=ob_" in paged.text


async def test_the_replay_button_replays_one_row_on_the_record(client, app, settings, merchant):
    session_id = await dead_delivery_story(client, app, settings, merchant)
    await sign_in(client, name="Linus")
    story = await client.get(f"/console/sessions/{session_id}", headers=BROWSER)
    [entry_id] = await dead(app)
    replayed = await client.post(f"/console/outbox/{entry_id}/replay", headers=BROWSER,
                                 data={"csrf": csrf_of(story), "reason": "retry it"})
    assert replayed.status_code == 303
    assert replayed.headers["location"] == f"/console/sessions/{session_id}?replayed={entry_id}"
    assert await dead(app) == []
    async with app.state.payhook.engine.connect() as conn:
        [audit] = (await conn.execute(select(outbox_replays))).all()
    assert (audit.entry_ids, audit.reason) == ([entry_id], "retry it")
    assert audit.actor.startswith("console:Linus:")
    shown = await client.get(replayed.headers["location"], headers=BROWSER)
    assert "is pending again" in shown.text
    again = await client.post(f"/console/outbox/{entry_id}/replay", headers=BROWSER,
                              data={"csrf": csrf_of(story)})
    assert again.status_code == 409 and 'data-code="entry_not_dead"' in again.text


@pytest.mark.parametrize("path", ["/console/sessions/{}", "/console/outbox/{}/replay",
                                  "/console/deliveries/{}/retry"])
async def test_hostile_ids_are_unknown_pages_and_change_nothing(client, app, path):
    await sign_in(client)
    home = await client.get("/console", headers=BROWSER)
    for value in ("cs_%00", "cs_" + "7" * 10_000, "ob_%00", "%00", "ob_" + "A" * 26,
                  "dl_%00", "dl_" + "A" * 26):
        url = path.format(value)
        answer = (await client.get(url, headers=BROWSER) if "/sessions/" in url
                  else await client.post(url, headers=BROWSER, data={"csrf": csrf_of(home)}))
        assert answer.status_code == 404, (url[:40], answer.status_code)
        assert 'data-code="resource_missing"' in answer.text
    assert await dead(app) == []
    nul = await client.get("/console/search", params={"q": "a\x00b"}, headers=BROWSER)
    assert nul.status_code == 400 and "\x00" not in nul.text


async def test_retry_now_makes_a_backed_off_row_due_on_the_record(database_url):
    slow = make_settings(database_url, allow_private_urls=True, outbox_max_attempts=3,
                         outbox_backoff_seconds=3600)
    application = create_app(slow, embedded_worker=False)
    async with application.router.lifespan_context(application), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://payhook.test"
    ) as client:
        merchant = await new_merchant(client)
        session_id = await dead_delivery_story(client, application, slow, merchant, 3600)
        [waiting] = await rows(application, (outbox_entries.c.status == "pending")
                               & (outbox_entries.c.attempts > 0))
        assert waiting.next_attempt_at > clock.now() + timedelta(minutes=30)
        await sign_in(client)
        story = await client.get(f"/console/sessions/{session_id}", headers=BROWSER)
        assert f'action="/console/outbox/{waiting.id}/retry"' in story.text
        retried = await client.post(f"/console/outbox/{waiting.id}/retry", headers=BROWSER,
                                    data={"csrf": csrf_of(story), "reason": "it is back"})
        assert retried.status_code == 303 and "retried=" in retried.headers["location"]
        [due] = await rows(application, outbox_entries.c.id == waiting.id)
        assert due.next_attempt_at <= clock.now() and due.attempts == waiting.attempts
        async with application.state.payhook.engine.connect() as conn:
            [audit] = (await conn.execute(select(outbox_replays))).all()
        assert audit.entry_ids == [waiting.id] and audit.reason == "it is back"


async def rows(app, where) -> list:
    async with app.state.payhook.engine.connect() as conn:
        return list((await conn.execute(select(outbox_entries).where(where))).all())


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_behind_https_the_cookie_is_secure(database_url):
    application = create_app(make_settings(database_url, public_base_url="https://pay.example"),
                             embedded_worker=False)
    async with application.router.lifespan_context(application), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="https://pay.example"
    ) as client:
        signed = await sign_in(client)
    assert signed.status_code == 303
    assert "secure" in signed.headers["set-cookie"].lower()


async def test_a_transaction_hash_finds_the_session_it_was_sent_for(client, merchant):
    session_id = await new_session(client, merchant.id, amount=10**17, currency="eth")
    tx = "0x" + "Ab" * 32
    raw, headers = signing.signed("web3", signing.web3_event(session_id, tx_hash=tx))
    notice = await client.post("/webhooks/web3", content=raw, headers=headers)
    assert notice.json()["outcome"] == "applied", notice.text  # a check queued, by tx hash
    await sign_in(client)
    for text in (tx, tx.lower(), f"  {tx.upper().replace('0X', '0x')}  "):
        found = await client.get("/console/search", params={"q": text}, headers=BROWSER)
        assert found.headers.get("location") == f"/console/sessions/{session_id}", text
    story = await client.get(f"/console/sessions/{session_id}", headers=BROWSER)
    assert "0.1 ETH" in story.text and "onchain.check" in story.text


async def test_a_sign_in_that_is_not_a_form_is_a_page_and_signs_nobody_in(client):
    form = await client.get("/console/sign-in", headers=BROWSER)
    for body, headers in ((b'{"token": "x"}', {"Content-Type": "application/json"}),
                          (b"token=a&token=b", {"Content-Type": "text/plain"}),
                          (b"%zz", {"Content-Type": "application/x-www-form-urlencoded"})):
        answer = await client.post("/console/sign-in", content=body,
                                   headers={**BROWSER, **headers})
        assert answer.status_code in (400, 403, 415), body
        assert answer.headers["content-type"].startswith("text/html")
    assert csrf_of(form)
    assert (await client.get("/console", headers=BROWSER)).status_code == 303
