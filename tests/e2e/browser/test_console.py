"""An operator who has never seen the CLI, in a real browser: signs in, finds a payment by the
customer's e-mail, reads its story (a provider body carrying a script stays text), replays the
dead delivery through the dry-run preview and a reason, and signs out. Forms without the CSRF
token, and a cookie made by another stack, are refused."""

import re
import uuid

import httpx
import pytest

from tests import signing
from tests.conftest import ADMIN_TOKEN
from tests.e2e.browser.conftest import db_value, new_merchant, shoot, start_stack
from tests.e2e.processes import wait_for

pytestmark = pytest.mark.slow
SCRIPT = "<script>alert('pwned')</script>"


@pytest.fixture(scope="module")
def story(stack):
    """A paid session whose one delivery (to a closed port) is dead, paid by a Stripe event
    carrying a script; its customer's e-mail is unique to this run."""
    _, merchant = new_merchant(stack)
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        hook = client.post("/v1/webhook_endpoints", headers=merchant,
                           json={"url": "http://127.0.0.1:9/hook"})
        assert hook.status_code == 201, hook.text
        email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
        session = client.post("/v1/checkout/sessions", headers=merchant, json={
            "amount": 1999, "currency": "usd", "customer_email": email,
            "customer_name": "Ada Lovelace", "metadata": {"order": "<img src=x onerror=alert(1)>"},
            "success_url": "https://shop.example/thanks"}).json()
        event = signing.stripe_event(session["id"])
        event["data"]["object"]["description"] = SCRIPT
        raw, headers = signing.signed("stripe", event)
        assert client.post("/webhooks/stripe", content=raw, headers=headers).status_code == 200
    wait_for(lambda: dead_rows(stack, session["id"]) == 1, 30, "the delivery's row to die")
    return {"id": session["id"], "email": email}


def dead_rows(stack, session_id: str) -> int:
    return int(db_value(stack.database_url, (
        "SELECT count(*) FROM outbox_entries WHERE status = 'dead' "
        f"AND payload->>'session_id' = '{session_id}'")))


def sign_in(page, stack, name: str = "Ada") -> None:
    page.goto(f"{stack.url}/console")
    assert page.url.endswith("/console/sign-in")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.fill("input[name=name]", name)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url}/console")


def test_an_operator_finds_a_payment_reads_its_story_and_replays_it(page, stack, story):
    page.goto(f"{stack.url}/console/sign-in")
    shoot(page, "console-sign-in")
    sign_in(page, stack, name="Grace")
    assert page.get_by_text("dead outbox rows").is_visible()
    shoot(page, "console-overview")

    page.fill("input[name=q]", story["email"].upper())
    page.click("form.search button")
    page.wait_for_url(f"{stack.url}/console/sessions/{story['id']}")
    timeline = page.locator("ol.timeline")
    for told in ("Session created", "stripe event", "Paid", "Outbox", "Delivery of",
                 "http://127.0.0.1:9/hook"):
        assert timeline.get_by_text(told).first.is_visible(), told
    page.click("text=Raw body, exactly as received")
    provider_event = timeline.locator("li", has_text="stripe event")
    assert SCRIPT in provider_event.locator("pre.raw").inner_text()  # shown as text, run never
    assert page.locator("script").count() == 0
    assert "<img src=x onerror=alert(1)>" in page.locator("dl.facts").inner_text()
    shoot(page, "console-session")

    page.goto(f"{stack.url}/console/replay")
    page.fill("input[name=kind]", "delivery.send")
    page.click("text=Preview")
    preview = page.locator("table")
    assert preview.get_by_text("send checkout.session.paid").first.is_visible()
    assert preview.get_by_text("http://127.0.0.1:9/hook").first.is_visible()
    assert dead_rows(stack, story["id"]) == 1  # the dry run changed nothing
    shoot(page, "console-replay-preview")
    page.fill("input[name=reason]", "the endpoint is back")
    page.click("button.danger")
    assert page.get_by_text(re.compile(r"Replayed \d+ rows?")).is_visible()

    page.goto(f"{stack.url}/console/replays")
    assert page.get_by_text("the endpoint is back").first.is_visible()
    assert page.get_by_text(re.compile("console:Grace:")).first.is_visible()
    shoot(page, "console-audit-trail")
    page.goto(f"{stack.url}/console/outbox?status=retrying")
    shoot(page, "console-outbox")

    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/console/sign-in\?signed_out$"))
    page.goto(f"{stack.url}/console")
    assert page.url.endswith("/console/sign-in")


def test_a_form_without_the_csrf_token_changes_nothing(page, stack, story):
    sign_in(page, stack)
    entry_id = db_value(stack.database_url, (
        "SELECT id FROM outbox_entries WHERE kind = 'delivery.send' "
        f"AND payload->>'session_id' = '{story['id']}'"))
    replays = int(db_value(stack.database_url, "SELECT count(*) FROM outbox_replays"))
    for form in ({"reason": "no token"}, {"reason": "forged", "csrf": "x" * 43}):
        answer = page.request.post(f"{stack.url}/console/outbox/{entry_id}/replay", form=form)
        assert answer.status == 403
        assert "was refused" in answer.text()
    answer = page.request.post(f"{stack.url}/console/replay",
                               form={"entries": entry_id, "reason": "no token"})
    assert answer.status == 403
    assert int(db_value(stack.database_url, "SELECT count(*) FROM outbox_replays")) == replays


def test_a_cookie_from_another_stack_is_refused(browser, stack, sqlite_url, tmp_path):
    other = start_stack(sqlite_url, tmp_path / "other.log",
                        PAYHOOK_SECRET_KEY="another-stack-secret-key-0123456789abcdef")
    try:
        there = browser.new_context()
        page = there.new_page()
        sign_in(page, other)
        [cookie] = [c for c in there.cookies() if c["name"] == "payhook_console"]
        there.close()
    finally:
        other.web.stop()
    here = browser.new_context()
    try:
        here.add_cookies([{**cookie, "domain": "127.0.0.1", "path": "/console"}])
        page = here.new_page()
        page.goto(f"{stack.url}/console")
        assert page.url.endswith("/console/sign-in")  # not signed in here
        assert page.request.get(f"{stack.url}/console/outbox", max_redirects=0).status == 303
    finally:
        here.close()
