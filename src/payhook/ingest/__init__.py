"""The one transaction of a webhook: record the raw event (deduplicated), move the session as
:func:`~payhook.domain.decisions.decide` says (:func:`payhook.db.sessions.move`'s compare-and-set),
and queue the work (:func:`payhook.outbox.store.enqueue`) and anomalies it causes.

Two writers do the same writes. :class:`~payhook.ingest.portable.PortableWriter` runs
SQLAlchemy Core statements in one transaction, on SQLite and PostgreSQL.
:class:`~payhook.ingest.postgres.PostgresWriter` reads the session, then writes everything in
one data-modifying statement over raw asyncpg: two round trips instead of seven (on PostgreSQL
alone, 2,740 against 570 webhooks/s at 16 concurrent). tests/integration/test_ingest_writers.py
plays the same events through both and compares what they stored.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from payhook.config import Settings
from payhook.db.engine import CONNECTION_BUDGET, RAW_INGEST_CONNECTIONS, create_engine
from payhook.domain.decisions import Decision
from payhook.domain.events import ProviderEvent
from payhook.domain.sessions import Status
from payhook.errors import StorageUnavailable
from payhook.ids import new_id

MAX_DECISIONS = 5  # a compare-and-set lost to a concurrent event is decided again


class IngestRaceError(StorageUnavailable):
    """The session kept changing under us: answer 503 and let the provider retry."""


class Writer(Protocol):
    async def record(self, event: ProviderEvent) -> str:
        """Store the event and its consequences in one transaction; returns the outcome."""
        ...

    async def close(self) -> None:
        """Release what the writer holds of its own (not the engine it was given)."""
        ...


@dataclass(frozen=True)
class Rows:
    """What a decision queues, and the anomaly rows it writes (ids chosen up front)."""

    work: list[tuple[str, dict[str, Any]]]
    anomalies: list[dict[str, Any]]


def rows_for(event: ProviderEvent, event_row_id: str, decision: Decision,
             now: datetime) -> Rows:
    work = [(kind, {"session_id": event.session_id, "event": event_row_id, **extra})
            for kind, extra in decision.outbox]
    notes = [
        {"id": new_id("an"), "kind": note.kind, "session_id": event.session_id,
         "event_id": event_row_id, "provider": event.provider,
         "details": {"event_type": event.type, "provider_event_id": event.event_id,
                     **note.details},
         "created_at": now}
        for note in decision.anomalies
    ]
    return Rows(work=work, anomalies=notes)


def move_fields(event: ProviderEvent, decision: Decision, now: datetime) -> dict[str, Any]:
    """What the decided move sets beside the status (:data:`payhook.db.sessions.MOVE_FIELDS`)."""
    fields: dict[str, Any] = {"payment_provider": event.provider}
    if decision.target is Status.PAID:
        fields.update(paid_at=now, provider_reference=event.reference)
    if decision.failure_reason is not None:
        fields["failure_reason"] = decision.failure_reason
    return fields


async def open_storage(settings: Settings) -> tuple[AsyncEngine, Writer]:
    """A web process's engine and webhook writer, within one connection budget: on PostgreSQL
    the raw writer's pool takes :data:`~payhook.db.engine.RAW_INGEST_CONNECTIONS` of it and
    the engine the rest; on SQLite the engine has the portable writer."""
    from payhook.ingest.portable import PortableWriter
    from payhook.ingest.postgres import PostgresWriter

    url, attempts = settings.database_url, settings.outbox_max_attempts
    crypto = settings.fiat_and_crypto_symbols
    if url.startswith("sqlite"):
        engine = create_engine(url)
        return engine, PortableWriter(engine, attempts, crypto)
    engine = create_engine(url, pool_size=(CONNECTION_BUDGET - RAW_INGEST_CONNECTIONS) // 2)
    return engine, await PostgresWriter.connect(url, attempts, crypto)
