"""A session's ``url``: JSON for API clients (whatever they accept short of preferring HTML),
the hosted page for browsers — escaped, under the strict policy, following its payment."""

import pytest

from tests.flows import new_session, stripe_event

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json",
                                    "application/json, text/html"])
async def test_api_clients_keep_the_json(client, merchant, accept):
    session_id = await new_session(client, merchant)
    answer = await client.get(f"/session/{session_id}/status",
                              headers={"Accept": accept} if accept else {})
    assert answer.status_code == 200 and answer.json()["session_id"] == session_id


async def test_a_browser_gets_the_page_that_follows_the_payment(client, merchant):
    session_id = await new_session(client, merchant, success_url="https://shop.example/thanks?a=1&b=<2>",
                                   cancel_url="https://shop.example/cart")
    url = f"/session/{session_id}/status"
    page = await client.get(url, headers={"Accept": BROWSER})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "19.99 USD" in page.text and 'data-status="created"' in page.text
    assert 'src="/static/session.js"' in page.text and "<script>" not in page.text
    assert "b=<2>" not in page.text  # the merchant's URL is escaped like everything else
    assert "Pay from your wallet" not in page.text  # no crypto_payment, no wallet section
    script = await client.get("/static/session.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]

    await stripe_event(client, session_id)
    paid = await client.get(url, headers={"Accept": BROWSER})
    assert 'data-status="paid"' in paid.text and "UTC" in paid.text


async def test_an_unknown_session_is_a_404_page_for_browsers(client):
    answer = await client.get("/session/cs_" + "A" * 25 + "/status", headers={"Accept": BROWSER})
    assert answer.status_code == 404 and 'data-code="resource_missing"' in answer.text


async def test_a_crypto_session_page_shows_where_and_what_to_pay(client, merchant):
    session_id = await new_session(client, merchant, amount=5 * 10**17, currency="eth")
    status = (await client.get(f"/session/{session_id}/status")).json()["crypto_payment"]
    page = await client.get(f"/session/{session_id}/status", headers={"Accept": BROWSER})
    assert "0.5 ETH" in page.text and status["address"] in page.text
    assert f'href="{status["uri"]}"' in page.text and status["uri"].startswith("ethereum:")
