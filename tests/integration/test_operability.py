"""Logs are JSON lines with a request id and never carry a key, token or query string;
an unreachable database is a 503 in the contract's shape."""

import json
import logging

import httpx

from payhook.app import create_app
from tests import signing
from tests.conftest import ADMIN_TOKEN, make_settings


async def test_logs_are_json_and_never_carry_secrets(client, merchant, caplog):
    from payhook.observability import JsonFormatter

    caplog.set_level(logging.INFO)
    await client.get("/v1/checkout/sessions?starting_after=cs_x&token=eyJsecret.token.value",
                     headers=merchant.headers)
    await client.get("/access/cs_anything?token=eyJsecret.token.value")
    await client.post("/admin/merchants", json={"name": "n"},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    formatter = JsonFormatter()
    # httpx's records are the test client's own, not the service's.
    lines = [formatter.format(record) for record in caplog.records if record.name != "httpx"]
    requests = [json.loads(line) for line in lines if '"payhook.access"' in line]
    assert len(requests) == 3
    assert all(entry["request_id"] and entry["status"] for entry in requests)
    assert {entry["route"] for entry in requests} >= {"/v1/checkout/sessions",
                                                      "/access/{session_id}"}
    everything = "\n".join(lines)
    for secret in (merchant.key, ADMIN_TOKEN, "eyJsecret", "token=", "sk_test_"):
        assert secret not in everything


async def test_unreachable_database_is_503(tmp_path):
    settings = make_settings("postgresql://postgres@127.0.0.1:1/nowhere")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            raw, headers = signing.signed("stripe", signing.stripe_event("cs_any"))
            for answer in (
                await client.post("/webhooks/stripe", content=raw, headers=headers),
                await client.get("/readyz"),
                await client.get("/v1/checkout/sessions",
                                 headers={"Authorization": "Bearer sk_test_" + "a" * 40}),
            ):
                assert answer.status_code == 503
                assert answer.json()["error"]["code"] == "storage_unavailable"
            assert (await client.get("/healthz")).status_code == 200
