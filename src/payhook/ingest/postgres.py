"""PostgreSQL's fast path for :mod:`payhook.ingest`: two round trips over raw asyncpg.

1. read the session (under load, with the sessions of other webhooks: :class:`SessionReads`);
2. one data-modifying statement that applies the decided move (rendered
from :func:`payhook.db.sessions.postgres_move`) as a
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

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import Table

from payhook import clock
from payhook.db.engine import RAW_INGEST_CONNECTIONS
from payhook.db.outages import is_connection_lost
from payhook.db.sessions import MOVE_FIELDS, VIEW_COLUMNS, postgres_move, session_view
from payhook.db.statements import document_text, postgres_type
from payhook.db.tables import anomalies, outbox_entries
from payhook.domain.decisions import Decision, decide
from payhook.domain.events import ProviderEvent
from payhook.domain.sessions import sources
from payhook.ids import new_id
from payhook.ingest import MAX_DECISIONS, IngestRaceError, move_fields, rows_for
from payhook.outbox.store import entry_defaults, new_entries

READ_SESSIONS = (f"SELECT id, {', '.join(VIEW_COLUMNS)} FROM checkout_sessions "
                 "WHERE id = ANY($1::text[])")
READ_CONNECTIONS = 2  # of the writer's pool, for the session reads; the rest write

# This event id is stored (committed before the statement began, or by it).
KNOWN = "EXISTS (SELECT 1 FROM webhook_events WHERE provider = :provider AND event_id = :event_id)"


@cache
def record_statement() -> tuple[str, tuple[str, ...]]:
    """The one data-modifying statement, with ``$n`` parameters, and the names they stand for.
    Its move is :mod:`payhook.db.sessions`'s; its outbox rows are inserted with the columns
    :func:`payhook.outbox.store.new_entry` fills (its defaults one parameter each, the rest one
    array each), its anomalies with the anomaly table's columns."""
    move = postgres_move(lambda name: f":move_{name}",
                         f"id = :session_id AND :move_to::text IS NOT NULL AND NOT {KNOWN}")
    return _numbered(f"""
WITH moved AS (
    {move}
), stored AS (
    INSERT INTO webhook_events
        (id, provider, event_id, type, session_id, outcome, raw_body, headers, created_at)
    SELECT :event_row_id, :provider, :event_id, :type, :session_id, :outcome, :raw,
           :headers::jsonb, :move_now
    WHERE :move_to::text IS NULL OR EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING id
), queued AS (
    {_insert_unnested(outbox_entries, _outbox_columns(), "outbox", _outbox_defaults())}
    WHERE EXISTS (SELECT 1 FROM stored)
    ON CONFLICT DO NOTHING  -- the dedup key's partial unique index: that work is under way
), flagged AS (
    {_insert_unnested(anomalies, _anomaly_columns(), "anomaly")}
    WHERE EXISTS (SELECT 1 FROM stored)
)
SELECT EXISTS (SELECT 1 FROM stored) AS stored, EXISTS (SELECT 1 FROM moved) AS moved,
       {KNOWN} AS known
""")


@cache
def _outbox_defaults() -> tuple[str, ...]:
    return tuple(entry_defaults(clock.now(), 0))


@cache
def _outbox_columns() -> tuple[str, ...]:
    """The columns of a row of :func:`payhook.outbox.store.new_entries` that differ by row."""
    return tuple(name for name in new_entries([("", {})], clock.now(), 0)[0]
                 if name not in _outbox_defaults())


def _anomaly_columns() -> tuple[str, ...]:
    return tuple(column.name for column in anomalies.c)


def _insert_unnested(table: Table, columns: Sequence[str], prefix: str,
                     shared: Sequence[str] = ()) -> str:
    """``INSERT … SELECT`` of rows given as one array parameter per column, and one parameter
    per column of ``shared`` (the same in every row)."""
    arrays = ", ".join(f":{prefix}_{name}::{postgres_type(table.c[name])}[]" for name in columns)
    alike = "".join(f", :{prefix}_{name}::{postgres_type(table.c[name])}" for name in shared)
    names = ", ".join(columns)
    return (f"INSERT INTO {table.name} ({names}{''.join(f', {name}' for name in shared)})\n"
            f"    SELECT {names}{alike}\n    FROM unnest({arrays}) AS r({names})")


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters (not ``::type`` casts) as asyncpg's ``$n``, and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"(?<![:\w]):(\w+)", number, sql), tuple(names)


def dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """Nothing here sets session state, so the pool's reset query (a round trip on every
    release) has nothing to undo."""

    def get_reset_query(self) -> str:
        return ""


class SessionReads:
    """The sessions webhooks name, read together. It has :data:`READ_CONNECTIONS` connections
    of its own; while all are reading, the webhooks that come meanwhile wait for the next free
    one, which reads all their sessions in one statement. A webhook alone is read at once;
    under load one statement (one round trip, one system call each side) serves many. A read
    is only where a decision starts — the write is a compare-and-set — so which of its moments
    it sees is of no consequence."""

    def __init__(self, dsn: str, connections: int = READ_CONNECTIONS) -> None:
        self.dsn = dsn
        self.statements = 0  # sent, for the tests
        # Connected when first used (the process starts while the database is down), and
        # again after one is lost.
        self._free: list[asyncpg.Connection | None] = [None] * connections
        self._waiting: dict[str, list[asyncio.Future[asyncpg.Record | None]]] = {}
        self._reading: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # its connections' loop

    async def read(self, session_id: str) -> asyncpg.Record | None:
        if self._loop is None:  # (Python 3.11 asks the system for its pid at every lookup)
            self._loop = asyncio.get_running_loop()
        answer = self._loop.create_future()
        self._waiting.setdefault(session_id, []).append(answer)
        if self._free:
            self._start()
        return await answer

    async def close(self) -> None:
        await asyncio.gather(*self._reading, return_exceptions=True)
        free, self._free = self._free, []
        for conn in free:
            if conn is not None:
                await conn.close(timeout=5)

    def _start(self) -> None:
        conn, batch, self._waiting = self._free.pop(), self._waiting, {}
        task = asyncio.create_task(self._read(conn, batch), name="payhook-session-reads")
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _read(self, conn: asyncpg.Connection | None,
                    batch: dict[str, list[asyncio.Future[asyncpg.Record | None]]]) -> None:
        try:
            if conn is None or conn.is_closed():
                conn = None
                conn = await asyncpg.connect(self.dsn, connection_class=_Connection)
            self.statements += 1
            rows = await conn.fetch(READ_SESSIONS, list(batch))
        except BaseException as error:
            # The connection is kept only if the server answered the error (it is then ready
            # for the next statement); the error is every waiting webhook's (a 503).
            if conn is not None and not isinstance(error, asyncpg.PostgresError):
                conn.terminate()
                conn = None
            for answers in batch.values():
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(error)
            if not isinstance(error, Exception):
                raise
        else:
            found = {row["id"]: row for row in rows}
            for session_id, answers in batch.items():
                for answer in answers:
                    if not answer.done():
                        answer.set_result(found.get(session_id))
        finally:
            self._free.append(conn)
            if self._waiting:
                self._start()


class PostgresWriter:
    def __init__(self, pool: asyncpg.Pool, reads: SessionReads, max_attempts: int,
                 crypto: frozenset[str], size: int):
        self.pool = pool
        self.reads = reads
        self.max_attempts = max_attempts
        self.crypto = crypto
        # Webhooks wait for a connection to write in the order they came. asyncpg's pool lets
        # a newcomer take a connection freed for a waiter, and the waiter goes to the back of
        # the line (asyncio.Queue.get; MagicStack/asyncpg#1247): under load a few webhooks
        # waited many times as long as the rest (p99 3-4x the p50). asyncio's Semaphore serves
        # in order, and never lets more in than the pool holds.
        self.turns = asyncio.Semaphore(size)

    @classmethod
    async def connect(cls, database_url: str, max_attempts: int, crypto: frozenset[str],
                      size: int = RAW_INGEST_CONNECTIONS) -> "PostgresWriter":
        """``size`` connections at most: :data:`READ_CONNECTIONS` for the reads, the rest for
        the writes."""
        writes = size - READ_CONNECTIONS
        # min_size=0: start even while the database is down (requests then answer 503).
        pool = await asyncpg.create_pool(dsn(database_url), min_size=0, max_size=writes,
                                         connection_class=_Connection)
        return cls(pool, SessionReads(dsn(database_url)), max_attempts, crypto, writes)

    async def close(self) -> None:
        await self.reads.close()
        await self.pool.close()

    async def record(self, event: ProviderEvent) -> str:
        for _ in range(MAX_DECISIONS):
            row = None
            if event.session_id is not None:
                row = await self.reads.read(event.session_id)
            now = clock.now()
            decision = decide(event, session_view(row), now, self.crypto)
            async with self.turns, self.pool.acquire() as conn:
                try:
                    stored, moved, known = await self._write(conn, event, decision, now)
                except Exception as error:
                    # A connection that failed mid-operation is not pooled again: its protocol
                    # state may be out of step with the server's (terminate it; the pool
                    # connects afresh). The error itself becomes a 503 (payhook.db.outages).
                    if is_connection_lost(error):
                        conn.terminate()
                    raise
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
        rows = rows_for(event, event_row_id, decision, now)
        target = decision.target
        fields = move_fields(event, decision, now) if target else {}
        values = {
            "event_row_id": event_row_id, "provider": event.provider,
            "event_id": event.event_id, "type": event.type, "session_id": event.session_id,
            "outcome": decision.outcome, "raw": event.raw, "headers": document_text(event.headers),
            "move_to": _text(target), "move_now": now,
            "move_sources": [state.value for state in sources(target)] if target else [],
        }
        for key, name in _MOVE_KEYS:
            values[key] = _text(fields.get(name))
        shared = entry_defaults(now, self.max_attempts)
        for key, name, document in _outbox_shared():
            values[key] = document_text(shared[name]) if document else shared[name]
        _put_arrays(values, _outbox_arrays(), new_entries(rows.work, now, self.max_attempts))
        _put_arrays(values, _anomaly_arrays(), rows.anomalies)
        statement, names = record_statement()
        result = await conn.fetchrow(statement, *[values[name] for name in names])
        return bool(result["stored"]), bool(result["moved"]), bool(result["known"])


# The statement's parameter names, worked out once: (parameter, column[, is a JSON document]).
_MOVE_KEYS = tuple((f"move_{name}", name) for name in MOVE_FIELDS)
Spec = tuple[tuple[str, str, bool], ...]


def _specs(prefix: str, table: Table, columns: Sequence[str]) -> Spec:
    documents = frozenset(column.name for column in table.c if postgres_type(column) == "jsonb")
    return tuple((f"{prefix}_{name}", name, name in documents) for name in columns)


@cache
def _outbox_shared() -> Spec:
    return _specs("outbox", outbox_entries, _outbox_defaults())


@cache
def _outbox_arrays() -> Spec:
    return _specs("outbox", outbox_entries, _outbox_columns())


@cache
def _anomaly_arrays() -> Spec:
    return _specs("anomaly", anomalies, _anomaly_columns())


def _put_arrays(values: dict[str, Any], specs: Spec, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows as one list per column (JSON documents as text), named as the statement names them."""
    for key, name, document in specs:
        column = [row[name] for row in rows]
        values[key] = [document_text(value) for value in column] if document else column


def _text(value: Any) -> Any:
    """A status or reason as the text asyncpg encodes; any other value as it is."""
    return value.value if isinstance(value, Enum) else value
