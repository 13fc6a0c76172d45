"""PostgreSQL's fast path for :mod:`payhook.ingest`: two round trips over raw asyncpg.

1. read the session; 2. one data-modifying statement that applies the decided transition as a
compare-and-set, inserts the raw event (``ON CONFLICT DO NOTHING``), and — only if the event row
was inserted — the outbox rows (``ON CONFLICT DO NOTHING`` too: a dedup key already at work is
not queued twice) and anomalies. The statement is its own transaction: all or nothing.

Why it is exactly-once: the event insert is gated on the compare-and-set when a transition is
expected, and it reads the update's result, so each statement locks the session row *before*
touching the event's unique index. Of concurrent copies of one event, the first to lock the row
moves it; the others wait, find the status moved on (a target is never its own source), insert
nothing, and decide again on a fresh read, where they meet the stored event: ``duplicate``.
An event id seen before (committed before the statement began) is a duplicate at once, even if
its copy disagrees with the original.
"""

import json
from datetime import datetime
from typing import Any

import asyncpg

from payhook import clock
from payhook.db.outages import is_connection_lost
from payhook.domain.decisions import Decision, decide
from payhook.domain.events import ProviderEvent
from payhook.domain.sessions import sources
from payhook.ids import new_id
from payhook.ingest import MAX_DECISIONS, IngestRaceError, rows_for, session_view

READ_SESSION = """
SELECT status, amount, currency, mode, expires_at, provider_reference
FROM checkout_sessions WHERE id = $1
"""

RECORD = """
WITH moved AS (
    UPDATE checkout_sessions SET
        status = $7::text,
        updated_at = $9,
        payment_provider = $2,
        paid_at = CASE WHEN $7::text = 'paid' THEN $9 ELSE paid_at END,
        provider_reference = CASE WHEN $7::text = 'paid' THEN $11 ELSE provider_reference END,
        failure_reason = COALESCE($12::text, failure_reason)
    WHERE id = $5 AND $7::text IS NOT NULL AND status = ANY($8::text[])
      AND NOT EXISTS (SELECT 1 FROM webhook_events WHERE provider = $2 AND event_id = $3)
    RETURNING id
), stored AS (
    INSERT INTO webhook_events
        (id, provider, event_id, type, session_id, outcome, raw_body, headers, created_at)
    SELECT $1, $2, $3, $4, $5, $6, $10, $13::jsonb, $9
    WHERE $7::text IS NULL OR EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING id
), queued AS (
    INSERT INTO outbox_entries (id, kind, payload, dedup_key, status, attempts, max_attempts,
                                next_attempt_at, errors, created_at, updated_at)
    SELECT o.id, o.kind, o.payload::jsonb, o.dedup_key, 'pending', 0, $14, $9, '[]'::jsonb,
           $9, $9
    FROM unnest($15::text[], $16::text[], $17::text[], $21::text[])
        AS o(id, kind, payload, dedup_key)
    WHERE EXISTS (SELECT 1 FROM stored)
    ON CONFLICT DO NOTHING  -- the dedup key's partial unique index: that work is under way
), flagged AS (
    INSERT INTO anomalies (id, kind, session_id, event_id, provider, details, created_at)
    SELECT a.id, a.kind, $5, $1, $2, a.details::jsonb, $9
    FROM unnest($18::text[], $19::text[], $20::text[]) AS a(id, kind, details)
    WHERE EXISTS (SELECT 1 FROM stored)
)
SELECT EXISTS (SELECT 1 FROM stored) AS stored, EXISTS (SELECT 1 FROM moved) AS moved,
       EXISTS (SELECT 1 FROM webhook_events WHERE provider = $2 AND event_id = $3) AS known
"""


def dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """Nothing here sets session state, so the pool's reset query (a round trip on every
    release) has nothing to undo."""

    def get_reset_query(self) -> str:
        return ""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class PostgresWriter:
    def __init__(self, pool: asyncpg.Pool, max_attempts: int, crypto: frozenset[str]):
        self.pool = pool
        self.max_attempts = max_attempts
        self.crypto = crypto

    @classmethod
    async def connect(cls, database_url: str, max_attempts: int, crypto: frozenset[str],
                      size: int = 20) -> "PostgresWriter":
        # min_size=0: start even while the database is down (requests then answer 503).
        pool = await asyncpg.create_pool(dsn(database_url), min_size=0, max_size=size,
                                         connection_class=_Connection)
        return cls(pool, max_attempts, crypto)

    async def close(self) -> None:
        await self.pool.close()

    async def record(self, event: ProviderEvent) -> str:
        async with self.pool.acquire() as conn:
            try:
                return await self._record(conn, event)
            except Exception as error:
                # A connection that failed mid-operation is not pooled again: its protocol
                # state may be out of step with the server's (terminate it; the pool connects
                # afresh). The error itself becomes a 503 (payhook.db.outages).
                if is_connection_lost(error):
                    conn.terminate()
                raise

    async def _record(self, conn: asyncpg.Connection, event: ProviderEvent) -> str:
        for _ in range(MAX_DECISIONS):
            now = clock.now()
            row = None
            if event.session_id is not None:
                row = await conn.fetchrow(READ_SESSION, event.session_id)
            decision = decide(event, session_view(row), now, self.crypto)
            stored, moved, known = await self._write(conn, event, decision, now)
            if stored:
                return decision.outcome
            if moved:  # impossible by construction (see the module docstring); say so loudly
                raise RuntimeError(f"{event.session_id} moved without its event row")
            if known or decision.target is None:
                return "duplicate"
        raise IngestRaceError(f"session {event.session_id} kept changing")

    async def _write(self, conn: asyncpg.Connection, event: ProviderEvent, decision: Decision,
                     now: datetime) -> tuple[bool, bool, bool]:
        event_row_id = new_id("ev")
        rows = rows_for(event, event_row_id, decision, now, self.max_attempts)
        target = decision.target
        result = await conn.fetchrow(
            RECORD,
            event_row_id, event.provider, event.event_id, event.type, event.session_id,
            decision.outcome, target.value if target else None,
            [state.value for state in sources(target)] if target else [],
            now, event.raw, event.reference,
            decision.failure_reason.value if decision.failure_reason else None,
            _json(event.headers), self.max_attempts,
            [entry["id"] for entry in rows.outbox], [entry["kind"] for entry in rows.outbox],
            [_json(entry["payload"]) for entry in rows.outbox],
            [note["id"] for note in rows.anomalies], [note["kind"] for note in rows.anomalies],
            [_json(note["details"]) for note in rows.anomalies],
            [entry["dedup_key"] for entry in rows.outbox],
        )
        return bool(result["stored"]), bool(result["moved"]), bool(result["known"])
