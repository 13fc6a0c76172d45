"""The whole product as separate processes: uvicorn and the arq worker against PostgreSQL and a
Redis of the test's own, a loopback merchant endpoint verifying deliveries with the
`standardwebhooks` package, and an aiosmtpd inbox."""

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests import signing
from tests.e2e.processes import (
    admin_headers,
    count,
    eventually,
    merchant_with_endpoint,
    service_env,
    web,
    worker,
)
from tests.merchant_server import running
from tests.smtp_inbox import running_inbox

SESSIONS = 12


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_paid_sessions_get_each_effect_exactly_once(pg_url, redis_server, tmp_path):
    async with running() as endpoint:
        with running_inbox() as inbox:
            env = service_env(pg_url, REDIS_URL=redis_server.url, PAYHOOK_SMTP_URL=inbox.url,
                              PAYHOOK_ALLOW_PRIVATE_URLS="true")
            server = web(env, tmp_path / "web.log")
            env["PAYHOOK_PUBLIC_BASE_URL"] = server.url
            await asyncio.to_thread(server.start)
            drain = await asyncio.to_thread(worker(env, tmp_path / "worker.log").start)
            try:
                await _pay_and_check(server.url, pg_url, endpoint, inbox)
            finally:
                code = await asyncio.to_thread(drain.stop)
                await asyncio.to_thread(server.stop)
            assert code == 0, drain.output()[-3000:]


async def _pay_and_check(base: str, pg_url: str, endpoint, inbox) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        merchant = await merchant_with_endpoint(client, endpoint)
        # The merchant's test key is revoked: each paid session's mode then has no active key,
        # so exactly one key is provisioned for the merchant, however many sessions are paid.
        key_id = (await client.get("/v1/api_keys", headers=merchant)).json()["data"][0]["id"]
        sessions = []
        for n in range(SESSIONS):
            answer = await client.post("/v1/checkout/sessions", headers=merchant, json={
                "amount": 1000 + n, "currency": "eur", "customer_email": f"c{n}@shop.example"})
            sessions.append(answer.json())
        await client.delete(f"/v1/api_keys/{key_id}", headers=merchant)

        providers = ["stripe", "onecom"]
        for n, session in enumerate(sessions):
            provider = providers[n % 2]
            body = (signing.stripe_event(session["id"], amount=session["amount"], currency="eur")
                    if provider == "stripe" else
                    signing.onecom_event(session["id"], amount=session["amount"],
                                         currency="eur"))
            raw, headers = signing.signed(provider, body)
            answer = await client.post(f"/webhooks/{provider}", content=raw, headers=headers)
            assert answer.json()["outcome"] == "applied"
            duplicate = await client.post(f"/webhooks/{provider}", content=raw, headers=headers)
            assert duplicate.json()["outcome"] == "duplicate"

        # The database says when the work is done: a delivery is marked delivered only after
        # the merchant's server has answered, so counting what that server saw races the commit.
        await eventually(lambda: _all_done(pg_url), 60, "every delivery and outbox row")

        assert await count(pg_url, "SELECT count(*) FROM invoices") == SESSIONS
        assert await count(pg_url, "SELECT count(DISTINCT session_id) FROM invoices") == SESSIONS
        assert await count(pg_url, "SELECT count(*) FROM api_keys "
                                   "WHERE provisioned_for IS NOT NULL") == 1
        assert await count(pg_url, "SELECT count(*) FROM checkout_sessions "
                                   "WHERE customer_access_url IS NULL") == 0
        assert await count(pg_url, "SELECT count(*) FROM deliveries "
                                   "WHERE status = 'delivered'") == SESSIONS
        assert await count(pg_url, "SELECT count(*) FROM outbox_entries "
                                   "WHERE status <> 'done'") == 0

        paid = [event for event in endpoint.verified if event["type"] == "checkout.session.paid"]
        assert len({event["id"] for event in paid}) == len(paid) == SESSIONS
        assert {event["data"]["session"]["id"] for event in paid} == {s["id"] for s in sessions}
        for event in paid:
            assert event["data"]["invoice"]["session_id"] == event["data"]["session"]["id"]
            assert event["data"]["customer_access"]["url"].startswith(f"{base}/access/")
        recipients = sorted(message["To"] for message in inbox.messages())
        assert recipients == sorted(f"c{n}@shop.example" for n in range(SESSIONS))

        # The customer's link works and never reveals the key (scanners fetch links); the one
        # session that provisioned it offers the reveal, which answers it exactly once.
        waiting = []
        for event in paid:
            url = event["data"]["customer_access"]["url"]
            for _ in range(2):
                page = await client.get(url, headers={"Accept": "*/*"})
                assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
                key = page.json()["api_key"]
                assert key is None or (key["revealed"] is False and "secret" not in key)
            if key is not None:
                waiting.append((event["data"]["session"]["id"], key["reveal_url"], url))
            token = parse_qs(urlsplit(url).query)["token"][0]
            other = sessions[0]["id"] if event["data"]["session"]["id"] != sessions[0]["id"] \
                else sessions[1]["id"]
            assert (await client.get(f"/access/{other}", params={"token": token})).status_code \
                == 401
        [(session_id, reveal_url, url)] = waiting
        assert reveal_url == f"{base}/access/{session_id}/reveal"
        token = parse_qs(urlsplit(url).query)["token"][0]
        revealed = await client.post(reveal_url, data={"token": token})
        assert revealed.status_code == 200, revealed.text
        secret = revealed.json()["secret"]
        assert secret.startswith("sk_test_")
        assert (await client.post(reveal_url, json={"token": token})).status_code == 409
        assert (await client.get(url)).json()["api_key"]["revealed"] is True
        assert (await client.get("/v1/checkout/sessions",
                                 headers={"Authorization": f"Bearer {secret}"})
                ).status_code == 200


async def _all_done(pg_url: str) -> bool:
    delivered = await count(pg_url, "SELECT count(*) FROM deliveries WHERE status = 'delivered'")
    unfinished = await count(pg_url, "SELECT count(*) FROM outbox_entries WHERE status <> 'done'")
    return delivered >= SESSIONS and unfinished == 0


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_failing_endpoint_backs_off_dies_and_is_replayed(pg_url, redis_server, tmp_path):
    async with running() as endpoint:
        env = service_env(pg_url, REDIS_URL=redis_server.url, PAYHOOK_ALLOW_PRIVATE_URLS="true",
                          PAYHOOK_OUTBOX_BACKOFF_SECONDS="0.2", PAYHOOK_OUTBOX_MAX_ATTEMPTS="3")
        server = await asyncio.to_thread(web(env, tmp_path / "web.log").start)
        drain = await asyncio.to_thread(worker(env, tmp_path / "worker.log").start)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                merchant = await merchant_with_endpoint(client, endpoint)
                endpoint.answer = 500
                session = (await client.post("/v1/checkout/sessions", headers=merchant, json={
                    "amount": 700, "currency": "usd"})).json()
                raw, headers = signing.signed("stripe", signing.stripe_event(
                    session["id"], amount=700))
                await client.post("/webhooks/stripe", content=raw, headers=headers)

                async def dead() -> list:
                    listed = await client.get("/admin/outbox", headers=admin_headers(),
                                              params={"status": "dead"})
                    return listed.json()["data"]

                await eventually(dead, 60, "the delivery to die")
                [entry] = await dead()
                assert entry["kind"] == "delivery.send" and entry["attempts"] == 3
                assert [e["attempt"] for e in entry["errors"]] == [1, 2, 3]
                assert "500" in entry["last_error"]
                assert len(endpoint.received) == 3

                endpoint.answer = 200
                replayed = await client.post(f"/admin/outbox/{entry['id']}/replay",
                                             json={"reason": "merchant fixed"},
                                             headers=admin_headers())
                assert replayed.status_code == 200

                async def delivered() -> bool:
                    return any(r.error is None and r.payload["type"] ==
                               "checkout.session.paid" for r in endpoint.received[3:])

                await eventually(delivered, 30, "the replayed delivery")
                shown = (await client.get(f"/admin/outbox/{entry['id']}",
                                          headers=admin_headers())).json()
                assert shown["status"] == "done"
        finally:
            await asyncio.to_thread(drain.stop)
            await asyncio.to_thread(server.stop)
