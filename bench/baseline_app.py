"""The yardstick for ``make bench-ingest``: a bare Starlette app over a raw asyncpg pool.

``POST /webhooks/stripe`` reads the body, parses it as JSON and, in one transaction, runs five
separate statements against payhook's schema: record the raw event (deduplicated on
``(provider, event_id)``), move the session to ``paid`` as a compare-and-set, and insert three
outbox rows. No signature check, no strict JSON, no session read, no decision: what is left is
the floor a webhook ingest over five round trips can reach on this machine.

Run by the benchmark as ``uvicorn bench.baseline_app:app`` with ``BENCH_DATABASE_URL`` set;
``BENCH_POOL_MAX`` (default 20) sizes the pool, like payhook's own asyncpg pool.
"""

import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

INSERT_EVENT = """
INSERT INTO webhook_events (id, provider, event_id, type, session_id, outcome, raw_body,
                            headers, created_at)
VALUES ($1, 'stripe', $2, $3, $4, 'applied', $5, $6::jsonb, $7)
ON CONFLICT (provider, event_id) DO NOTHING
RETURNING id
"""
PAY_SESSION = """
UPDATE checkout_sessions
SET status = 'paid', updated_at = $2, paid_at = $2, payment_provider = 'stripe',
    provider_reference = $3
WHERE id = $1 AND status IN ('created', 'pending')
RETURNING id
"""
INSERT_OUTBOX = """
INSERT INTO outbox_entries (id, kind, payload, status, attempts, max_attempts, next_attempt_at,
                            errors, created_at, updated_at)
VALUES ($1, $2, $3::jsonb, 'pending', 0, 10, $4, '[]'::jsonb, $4, $4)
"""
OUTBOX_KINDS = ("invoice.create", "api_key.provision", "access_link.issue")


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(18)}"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    dsn = os.environ["BENCH_DATABASE_URL"]
    size = int(os.environ.get("BENCH_POOL_MAX", "20"))
    app.state.pool = await asyncpg.create_pool(dsn, min_size=min(20, size), max_size=size)
    try:
        yield
    finally:
        await app.state.pool.close()


async def receive(request: Request) -> Response:
    raw = await request.body()
    event = json.loads(raw)
    obj = event["data"]["object"]
    session_id = obj["metadata"]["session_id"]
    now = datetime.now(UTC)
    event_row_id = _id("ev")
    headers = json.dumps({"stripe-signature": request.headers.get("stripe-signature"),
                          "content-type": request.headers.get("content-type")})
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(INSERT_EVENT, event_row_id, event["id"], event["type"],
                                       session_id, raw, headers, now)
        if inserted is None:
            return JSONResponse({"received": True, "outcome": "duplicate"})
        await conn.fetchval(PAY_SESSION, session_id, now, obj["id"])
        for kind in OUTBOX_KINDS:
            payload = json.dumps({"session_id": session_id, "event": event_row_id})
            await conn.execute(INSERT_OUTBOX, _id("ob"), kind, payload, now)
    return JSONResponse({"received": True, "outcome": "applied"})


app = Starlette(routes=[Route("/webhooks/stripe", receive, methods=["POST"])],
                lifespan=lifespan)
