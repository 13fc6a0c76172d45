"""Content negotiation and escaping of the customer's access page."""

import pytest

from payhook.api.pages import prefers_html, templates


def render(document: dict, token: str) -> str:
    return templates.get_template("access.html").render(page=document, token=token,
                                                        static="/static", token_decimals={})


def render_revealed(key: dict) -> str:
    return templates.get_template("access_revealed.html").render(key=key, static="/static",
                                                                 token_decimals={})


@pytest.mark.parametrize(("accept", "html"), [
    ("", False),
    ("*/*", False),
    ("application/json", False),
    ("text/html", True),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
    ("text/*", True),
    ("text/html;q=0.5, application/json", False),
    ("application/json;q=0.5, text/html", True),
    ("text/html;q=0, */*", False),
    ("text/html;q=bogus, application/json;q=0.1", False),
    ("TEXT/HTML", True),
])
def test_html_only_when_it_ranks_above_json(accept, html):
    assert prefers_html(accept) is html


def test_every_value_is_escaped():
    page = render({
        "session": {"id": "cs_<1>", "status": "paid", "amount": 5, "currency": "usd",
                    "paid_at": None, "customer_name": "<b>\"Bob\" & 'Al'</b>"},
        "invoice": None,
        "api_key": {"mode": "<live>", "prefix": "sk_live_ab", "status": "active",
                    "revealed": False},
    }, token='t"><script>')
    assert "<b>" not in page and "cs_<1>" not in page and "<live>" not in page
    assert "<script>" not in page and 'value="t&#34;&gt;&lt;script&gt;"' in page
    assert "&lt;b&gt;&#34;Bob&#34; &amp; &#39;Al&#39;&lt;/b&gt;" in page
    assert "0.05 USD" in page and "smallest unit" not in page
    assert 'action="./cs_&lt;1&gt;/reveal"' in page


def test_the_page_never_holds_a_secret_and_the_reveal_escapes_it():
    key = {"mode": "live", "prefix": "sk_live_ab", "status": "active", "revealed": True,
           "secret": "sk_live_<x>"}
    session = {"id": "cs_1", "status": "paid", "amount": 5, "currency": "usd", "paid_at": None,
               "customer_name": None}
    page = render({"session": session, "invoice": None, "api_key": key}, token="t")
    assert "sk_live_&lt;x&gt;" not in page and "<form" not in page
    revealed = render_revealed(key)
    assert "sk_live_<x>" not in revealed and "sk_live_&lt;x&gt;" in revealed
    assert "will not be shown again" in revealed


def render_session(session: dict, crypto: dict | None = None) -> str:
    return templates.get_template("session.html").render(
        session=session, crypto=crypto, static="/static", token_decimals={})


SESSION = {"id": "cs_1", "status": "pending", "amount": 5 * 10**17, "currency": "eth",
           "failure_reason": None, "paid_at": None, "expires_at": "2026-12-01T19:46:00+00:00",
           "success_url": "https://shop.example/ok", "cancel_url": None}


def test_a_crypto_session_page_shows_its_address_amount_and_wallet_link():
    crypto = {"chain_id": 1, "asset": "eth", "contract": None, "address": "0x" + "ab" * 20,
              "amount": str(5 * 10**17), "uri": "ethereum:0xabab@1?value=500000000000000000"}
    page = render_session(SESSION, crypto)
    assert "0.5 ETH" in page and "0x" + "ab" * 20 in page
    assert 'href="ethereum:0xabab@1?value=500000000000000000"' in page
    assert 'data-when="paid" hidden' in page  # the way back shows once it is paid


def test_a_session_without_crypto_payment_has_no_wallet_section():
    page = render_session({**SESSION, "currency": "usd", "amount": 1999, "status": "paid"})
    assert "19.99 USD" in page and "wallet" not in page
    assert 'data-when="paid" >' in page or 'data-when="paid">' in page
