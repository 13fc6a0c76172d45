"""Secrets in configuration (the node provider's key in PAYHOOK_WEB3_RPC_URL's path) and in
statement parameters never reach an outbox row's error, the admin API or a log line."""

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from payhook.db.engine import create_engine
from payhook.db.tables import outbox_entries as outbox
from payhook.observability import JsonFormatter
from tests import merchant_server, signing, wallet
from tests.anvil import CHAIN_ID, free_port
from tests.conftest import make_settings
from tests.paying import ADMIN, drain

KEY = "SECRETKEY123"


@pytest.fixture(params=["unreachable", "answers 404"])
async def rpc_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A node URL with a key in its path: nothing listens there, or a server that answers an
    error (whose text, from aiohttp, carries the URL)."""
    if request.param == "unreachable":
        yield f"http://127.0.0.1:{free_port()}/v3/{KEY}"
        return
    async with merchant_server.running() as server:
        yield f"http://127.0.0.1:{server.port}/v3/{KEY}"


@pytest.fixture
def settings(database_url, rpc_url):
    return make_settings(database_url, web3_rpc_url=rpc_url, web3_chain_id=CHAIN_ID)


async def test_a_failing_node_check_keeps_its_key_out_of_errors_and_logs(
        client, app, settings, merchant, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="web3")
    answer = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                               json={"amount": 10**15, "currency": "eth"})
    session_id = answer.json()["id"]
    raw, headers = signing.signed("web3", signing.web3_event(session_id))
    assert (await client.post("/webhooks/web3", content=raw, headers=headers)).status_code == 200

    await drain(app, settings)

    async with app.state.payhook.engine.connect() as conn:
        [entry] = (await conn.execute(
            select(outbox).where(outbox.c.kind == "onchain.check"))).all()
    assert entry.attempts >= 1 and entry.last_error
    assert KEY not in entry.last_error and KEY not in str(entry.errors)
    listed = await client.get("/admin/outbox", headers=ADMIN)
    assert listed.status_code == 200 and entry.id in listed.text and KEY not in listed.text
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "outbox entry failed" in logged
    assert KEY not in logged
    assert wallet.XPUB not in logged and wallet.XPUB not in listed.text  # it links payments
    host = settings.web3_rpc_url.split("/")[2]
    assert f"http://{host}/[redacted]" in logged  # web3 logs the URL: redacted, not dropped


async def test_a_failing_statement_shows_no_parameters(database_url, caplog):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(text("SELECT :value FROM no_such_table"), {"value": KEY})
    finally:
        await engine.dispose()
    assert "no_such_table" in str(failed.value)
    assert KEY not in str(failed.value)
    assert KEY not in caplog.text
