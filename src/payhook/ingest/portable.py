"""The webhook writer of every database: SQLAlchemy Core statements in one transaction (on
SQLite ``BEGIN IMMEDIATE`` makes it serial)."""

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payhook import clock
from payhook.db.sessions import move, view
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import anomalies, webhook_events
from payhook.domain.decisions import Decision, decide
from payhook.domain.events import ProviderEvent
from payhook.ids import new_id
from payhook.ingest import MAX_DECISIONS, IngestRaceError, move_fields, rows_for
from payhook.outbox.store import enqueue


class PortableWriter:
    def __init__(self, engine: AsyncEngine, max_attempts: int, crypto: frozenset[str]):
        self.engine = engine
        self.max_attempts = max_attempts
        self.crypto = crypto

    async def close(self) -> None:
        """Nothing of its own: the engine is its owner's."""

    async def record(self, event: ProviderEvent) -> str:
        now = clock.now()
        event_row_id = new_id("ev")
        async with self.engine.begin() as conn:
            inserted = await conn.scalar(
                insert_ignoring_conflicts(conn, webhook_events).values(
                    id=event_row_id, provider=event.provider, event_id=event.event_id,
                    type=event.type, session_id=event.session_id, outcome="recorded",
                    raw_body=event.raw, headers=event.headers, created_at=now,
                ).returning(webhook_events.c.id))
            if inserted is None:
                return "duplicate"
            decision = await self._decide_and_move(conn, event, now)
            rows = rows_for(event, event_row_id, decision, now)
            await enqueue(conn, rows.work, now, self.max_attempts)
            if rows.anomalies:
                await conn.execute(anomalies.insert(), rows.anomalies)
            if decision.outcome != "recorded":
                await conn.execute(update(webhook_events)
                                   .where(webhook_events.c.id == event_row_id)
                                   .values(outcome=decision.outcome))
        return decision.outcome

    async def _decide_and_move(self, conn: AsyncConnection, event: ProviderEvent,
                               now: datetime) -> Decision:
        for _ in range(MAX_DECISIONS):
            session = None if event.session_id is None else await view(conn, event.session_id)
            decision = decide(event, session, now, self.crypto)
            if decision.target is None:
                return decision
            assert event.session_id is not None  # a decision to move names its session
            if await move(conn, event.session_id, decision.target, now=now,
                          **move_fields(event, decision, now)):
                return decision
        raise IngestRaceError(f"session {event.session_id} kept changing")
