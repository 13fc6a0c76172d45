"""Steps several tests take: pay a session through a signed provider webhook, then drain the
outbox in this process with the real handler registry; point an endpoint at a merchant server
and read what the outbox and the tables hold."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update

from payhook import clock
from payhook.config import Settings
from payhook.db.tables import outbox_entries
from payhook.effects import HANDLERS, ORDER
from payhook.effects.context import EffectContext
from payhook.outbox.drain import Drainer, Handler
from payhook.outbox.retry import RetryPolicy
from payhook.services import api_keys
from tests import signing
from tests.conftest import MerchantAccount
from tests.merchant_server import MerchantServer


async def new_session(client, merchant, **body) -> str:
    answer = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                               json={"amount": 1999, "currency": "usd", **body})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def stripe_event(client, session_id: str, kind: str = "payment_intent.succeeded") -> None:
    raw, headers = signing.signed("stripe", signing.stripe_event(session_id, kind))
    answer = await client.post("/webhooks/stripe", content=raw, headers=headers)
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied", answer.text


async def live_account(app, merchant: MerchantAccount) -> MerchantAccount:
    """The same merchant with a live key: what it sees is the live mode's."""
    state = app.state.payhook
    async with state.engine.begin() as conn:
        issued = await api_keys.issue(conn, state.hasher, merchant.id, "live", None)
    return MerchantAccount(id=merchant.id, key=issued.secret)


async def paid_session(client, merchant) -> str:
    session_id = await new_session(client, merchant)
    await stripe_event(client, session_id)
    return session_id


def handlers(**overrides: Handler[EffectContext]) -> dict[str, Handler[EffectContext]]:
    """The real registry, with a test's own handlers in place of some."""
    return {**HANDLERS, **overrides}


# The contexts :func:`drainer` built, closed after each integration test (tests/integration/
# conftest.py): a context's merchant client holds an aiohttp session, which must be closed.
BUILT: list[EffectContext] = []


def drainer(settings: Settings, engine, policy: RetryPolicy | None = None,
            registry: dict[str, Handler[EffectContext]] | None = None
            ) -> Drainer[EffectContext]:
    context = EffectContext.build(settings, engine)
    BUILT.append(context)
    return Drainer(engine, registry or handlers(), context, policy or RetryPolicy(0.01),
                   order=ORDER)


async def close_built() -> None:
    while BUILT:
        await BUILT.pop().close()


async def make_due(engine) -> None:
    """Skip the backoff wait: every pending row is due now."""
    async with engine.begin() as conn:
        await conn.execute(update(outbox_entries).where(outbox_entries.c.status == "pending")
                           .values(next_attempt_at=clock.now()))


async def drain_until(drain: Drainer[EffectContext], done: Callable[[], Awaitable[bool]],
                      timeout: float = 20.0) -> None:
    """Drain until ``done()``, making backed-off rows due between rounds."""
    deadline = time.monotonic() + timeout
    while not await done():
        assert time.monotonic() < deadline, "the outbox did not get there in time"
        await drain.drain()
        await make_due(drain.engine)
        await asyncio.sleep(0.01)


async def endpoint_for(client, merchant, server: MerchantServer, url: str | None = None,
                       **fields) -> str:
    """A webhook endpoint to ``server`` (its URL unless ``url``), whose secret the server
    verifies with from now on."""
    answer = await client.post("/v1/webhook_endpoints", headers=merchant.headers,
                               json={"url": url or server.url, **fields})
    assert answer.status_code == 201, answer.text
    server.secret = answer.json()["secret"]
    return str(answer.json()["id"])


async def table(app, which, *where):
    async with app.state.payhook.engine.connect() as conn:
        return (await conn.execute(select(which).where(*where))).all()


async def outbox_row(app, kind: str):
    [row] = await table(app, outbox_entries, outbox_entries.c.kind == kind)
    return row


async def finished(app, kind: str) -> bool:
    rows = await table(app, outbox_entries, outbox_entries.c.kind == kind)
    return bool(rows) and all(row.status in ("done", "dead") for row in rows)
