"""The customer's pages in a real browser: the hosted session page follows its payment by
itself, and the access page reveals the API key once, on the button — never to a GET."""


import re

import httpx
import pytest

from tests import signing
from tests.e2e.browser.conftest import ADMIN, db_value, new_merchant, shoot
from tests.e2e.processes import wait_for

pytestmark = pytest.mark.slow
RAW_KEY = re.compile(r"sk_live_\w{16,}")
SCANNERS = ({}, {"Accept": "*/*", "User-Agent": "Mozilla/5.0 (compatible; SafeLinks)"},
            {"Accept": "text/html", "User-Agent": "Slackbot-LinkExpanding 1.0"})


def pay(stack, session_id: str) -> None:
    raw, headers = signing.signed("onecom", signing.onecom_event(session_id))
    answer = httpx.post(f"{stack.url}/webhooks/onecom", content=raw, headers=headers,
                        timeout=10)
    assert answer.json()["outcome"] == "applied", answer.text


def test_the_hosted_page_follows_the_payment_and_leads_back(page, stack):
    _, merchant = new_merchant(stack)
    session = httpx.post(f"{stack.url}/v1/checkout/sessions", headers=merchant, timeout=10,
                         json={"amount": 1999, "currency": "usd",
                               "success_url": "https://shop.example/thanks",
                               "cancel_url": "https://shop.example/cart"}).json()
    assert httpx.get(session["url"], timeout=10).json()["status"] == "created"  # API clients
    page.goto(session["url"])
    assert page.locator(".amount.big").inner_text() == "19.99 USD"
    assert page.locator("[data-field=status]").inner_text() == "created"
    back = page.get_by_role("link", name="Back to the shop")
    assert not back.is_visible()
    shoot(page, "session-page-waiting")
    pay(stack, session["id"])
    page.wait_for_selector("[data-field=status]:text('paid')", timeout=15_000)
    assert back.is_visible() and back.get_attribute("href") == "https://shop.example/thanks"
    assert "UTC" in page.locator("[data-field=paid_at]").inner_text()
    shoot(page, "session-page-paid")


def test_a_crypto_session_page_shows_its_own_address_and_a_wallet_link(page, stack):
    _, merchant = new_merchant(stack)
    session = httpx.post(f"{stack.url}/v1/checkout/sessions", headers=merchant, timeout=10,
                         json={"amount": 5 * 10**17, "currency": "eth"}).json()
    crypto = session["crypto_payment"]
    page.goto(session["url"])
    assert page.locator(".amount.big").inner_text() == "0.5 ETH"
    assert page.get_by_text(crypto["address"]).is_visible()
    wallet_link = page.get_by_role("link", name="Open in your wallet")
    assert wallet_link.get_attribute("href") == (
        f"ethereum:{crypto['address']}@{crypto['chain_id']}?value={5 * 10**17}")
    shoot(page, "session-page-crypto")


def test_the_access_page_reveals_the_key_once_and_never_to_a_get(page, stack):
    merchant_id, _ = new_merchant(stack)  # it has a test key: a live session provisions one
    created = httpx.post(f"{stack.url}/admin/checkout/sessions", headers=ADMIN, timeout=10,
                         json={"merchant_id": merchant_id, "mode": "live", "amount": 1999,
                               "currency": "usd", "customer_name": "Ada Lovelace"}).json()
    pay(stack, created["id"])
    link = wait_for(lambda: db_value(stack.database_url, (
        "SELECT customer_access_url FROM checkout_sessions "
        f"WHERE id = '{created['id']}'")), 30, "the access link")
    for headers in SCANNERS:
        scanned = httpx.get(link, headers=headers, timeout=10)
        assert scanned.status_code == 200 and not RAW_KEY.search(scanned.text)  # the prefix only

    page.goto(link)
    assert page.get_by_text("19.99 USD").is_visible()
    shoot(page, "access-page")
    page.click("text=Reveal your API key")
    secret = page.locator("#secret").inner_text()
    assert RAW_KEY.fullmatch(secret)  # what the scanners were checked for
    assert page.get_by_text("It will not be shown again").is_visible()
    assert page.get_by_role("button", name="Copy").is_visible()
    shoot(page, "access-page-revealed")

    page.go_back()  # the page it was revealed from, fetched again (no-store) and reloaded
    page.reload()
    assert secret not in page.content()
    assert page.get_by_text("was revealed already").is_visible()
    for headers in SCANNERS:
        assert secret not in httpx.get(link, headers=headers, timeout=10).text
    page.goto(link.replace("token=", "token=x"))
    assert page.get_by_text("This link is invalid or has expired").is_visible()
    shoot(page, "access-page-invalid")
