"""The one transaction of a webhook: record the raw event (deduplicated), apply the session's
transition as a compare-and-set, and write the outbox rows and anomalies it causes.

Two writers do the same writes. :class:`PortableWriter` runs SQLAlchemy Core statements in
one transaction and works on SQLite and PostgreSQL. :class:`PostgresWriter` (in
:mod:`payhook.ingest_pg`) reads the session, then writes everything in one data-modifying
statement over raw asyncpg: two round trips instead of seven. Both are tested to agree.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payhook import clock
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import anomalies, checkout_sessions, outbox_entries, webhook_events
from payhook.domain.decisions import Decision, SessionView, decide, dedup_key
from payhook.domain.events import ProviderEvent
from payhook.domain.sessions import Status, sources
from payhook.errors import StorageUnavailable
from payhook.ids import new_id
from payhook.outbox.store import new_entry

MAX_DECISIONS = 5  # a compare-and-set lost to a concurrent event is decided again


class IngestRaceError(StorageUnavailable):
    """The session kept changing under us: answer 503 and let the provider retry."""


class Writer(Protocol):
    async def record(self, event: ProviderEvent) -> str: ...


@dataclass(frozen=True)
class Rows:
    """The rows a decision writes besides the transition, with their ids chosen up front."""

    outbox: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]


def rows_for(event: ProviderEvent, event_row_id: str, decision: Decision, now: datetime,
             max_attempts: int) -> Rows:
    payloads = [(kind, {"session_id": event.session_id, "event": event_row_id, **extra})
                for kind, extra in decision.outbox]
    outbox = [new_entry(kind, payload, now, max_attempts, dedup_key(kind, payload))
              for kind, payload in payloads]
    notes = [
        {"id": new_id("an"), "kind": note.kind, "session_id": event.session_id,
         "event_id": event_row_id, "provider": event.provider,
         "details": {"event_type": event.type, "provider_event_id": event.event_id,
                     **note.details},
         "created_at": now}
        for note in decision.anomalies
    ]
    return Rows(outbox=outbox, anomalies=notes)


def transition_values(event: ProviderEvent, decision: Decision, now: datetime) -> dict[str, Any]:
    assert decision.target is not None
    values: dict[str, Any] = {"status": decision.target, "updated_at": now,
                              "payment_provider": event.provider}
    if decision.target is Status.PAID:
        values.update(paid_at=now, provider_reference=event.reference)
    if decision.failure_reason is not None:
        values["failure_reason"] = decision.failure_reason
    return values


def session_view(row: Mapping[Any, Any] | None) -> SessionView | None:
    if row is None:
        return None
    return SessionView(status=Status(row["status"]), amount=int(row["amount"]),
                       currency=row["currency"], mode=row["mode"],
                       expires_at=clock.as_utc(row["expires_at"]),
                       provider_reference=row["provider_reference"])


SESSION_COLUMNS: Sequence[str] = ("status", "amount", "currency", "mode", "expires_at",
                                  "provider_reference")


class PortableWriter:
    """SQLAlchemy Core in one transaction; on SQLite ``BEGIN IMMEDIATE`` makes it serial."""

    def __init__(self, engine: AsyncEngine, max_attempts: int, crypto: frozenset[str]):
        self.engine = engine
        self.max_attempts = max_attempts
        self.crypto = crypto

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
            decision = await self._decide_and_transition(conn, event, now)
            rows = rows_for(event, event_row_id, decision, now, self.max_attempts)
            if rows.outbox:  # a row whose dedup key is already at work is not written again
                await conn.execute(insert_ignoring_conflicts(conn, outbox_entries), rows.outbox)
            if rows.anomalies:
                await conn.execute(anomalies.insert(), rows.anomalies)
            if decision.outcome != "recorded":
                await conn.execute(update(webhook_events)
                                   .where(webhook_events.c.id == event_row_id)
                                   .values(outcome=decision.outcome))
        return decision.outcome

    async def _decide_and_transition(self, conn: AsyncConnection, event: ProviderEvent,
                                     now: datetime) -> Decision:
        for _ in range(MAX_DECISIONS):
            row = None
            if event.session_id is not None:
                row = (await conn.execute(
                    select(*(checkout_sessions.c[name] for name in SESSION_COLUMNS))
                    .where(checkout_sessions.c.id == event.session_id))).first()
            decision = decide(event, session_view(row._mapping if row else None), now,
                              self.crypto)
            if decision.target is None:
                return decision
            moved = await conn.scalar(
                update(checkout_sessions)
                .where(checkout_sessions.c.id == event.session_id,
                       checkout_sessions.c.status.in_(sources(decision.target)))
                .values(**transition_values(event, decision, now))
                .returning(checkout_sessions.c.id))
            if moved is not None:
                return decision
        raise IngestRaceError(f"session {event.session_id} kept changing")
