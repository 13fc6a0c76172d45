"""``EXPLAIN (ANALYZE, BUFFERS)`` of the statements that must stay fast as the tables grow: the
webhook writer's session read and its one data-modifying statement, the worker's claim, and
one retention batch of each kind as if every row were past the retention (a backlog's worst
batch) — run on a bench database after its run, each in a transaction that is rolled back.

The statements are payhook's own, built by its code (never copied here): the writer's from
:func:`payhook.ingest.postgres.record_statement` with the arguments ``_write`` passes, the claim
from :func:`payhook.outbox.store.claim_statement`, compiled for asyncpg.
"""

from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.dialects import postgresql

from bench.common import database_url, session_id
from payhook import clock
from payhook.db.sessions import session_view
from payhook.domain.decisions import decide
from payhook.domain.events import Intent, ProviderEvent
from payhook.ingest.postgres import READ_SESSIONS, PostgresWriter
from payhook.outbox import store
from payhook.services import retention


class _Capture:
    """Stands in for a connection: keeps the statement and arguments it is asked to run."""

    def __init__(self, answer: Any = None):
        self.answer = answer
        self.statement: Any = None
        self.arguments: tuple[Any, ...] = ()

    async def fetchrow(self, statement: str, *arguments: Any) -> dict[str, bool]:
        self.statement, self.arguments = statement, arguments
        return {"stored": True, "moved": True, "known": False}

    async def execute(self, statement: Any) -> list[Any]:
        self.statement = statement
        return []


async def _record_statement(conn: asyncpg.Connection, session: str) -> tuple[str, tuple[Any, ...]]:
    row = await conn.fetchrow(READ_SESSIONS, [session])
    now = clock.now()
    event = ProviderEvent(
        provider="stripe", event_id=f"evt_plan_{session}", type="payment_intent.succeeded",
        intent=Intent.PAY, session_id=session, raw=b"{}", headers={}, amount=row["amount"],
        currency=row["currency"], mode=row["mode"], reference="pi_plan")
    decision = decide(event, session_view(row), now, frozenset({row["currency"]}))
    capture = _Capture()
    writer = PostgresWriter(pool=None, reads=None, max_attempts=10, crypto=frozenset(), size=1)
    await writer._write(capture, event, decision, now)
    return capture.statement, capture.arguments


async def _claim_statement() -> tuple[str, tuple[Any, ...]]:
    now = clock.now()
    return _compiled(store.claim_statement("plan", 100, now + timedelta(seconds=30), now))


def _prune_statements() -> list[tuple[str, str, tuple[Any, ...]]]:
    """Each kind's batch with a cutoff a day ahead: every row is old enough."""
    cutoff = clock.now() + timedelta(days=1)
    return [(f"retention: one batch of {name} (limit {retention.BATCH}, all rows past it)",
             *_compiled(retention.batch_statement(rule, cutoff, retention.BATCH)))
            for name, rule in retention.RULES.items()]


def _compiled(statement: Any) -> tuple[str, tuple[Any, ...]]:
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect(),
                                 compile_kwargs={"render_postcompile": True})
    return str(compiled), tuple(compiled.params[name] for name in compiled.positiontup)


async def _explain(conn: asyncpg.Connection, statement: str, arguments: tuple[Any, ...]) -> str:
    transaction = conn.transaction()
    await transaction.start()
    try:
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *arguments)
    finally:
        await transaction.rollback()
    return "\n".join(f"    {row[0]}" for row in rows)


async def plans(admin_url: str, database: str, session_index: int) -> str:
    """The plans on ``database``; ``session_index`` names a seeded ``created`` session the
    run did not pay (the writer's statement then moves it, as a real payment would)."""
    conn = await asyncpg.connect(database_url(admin_url, database))
    try:
        session = session_id(session_index)
        sections = [
            ("webhook writer: read the sessions of 16 webhooks at once", READ_SESSIONS,
             ([session_id(session_index - n) for n in range(16)],)),
            ("webhook writer: the one data-modifying statement",
             *await _record_statement(conn, session)),
            ("worker: claim due outbox rows (limit 100)", *await _claim_statement()),
        ]
        claim = sections[-1]
        sections += _prune_statements()
        lines = [f"plans on {database} (statistics as autovacuum left them)"]
        for title, statement, arguments in sections:
            lines += [f"  {title}:", await _explain(conn, statement, arguments)]
        # The claim again on fresh statistics: on a table of millions, autovacuum analyzes
        # only after 10 % of it changed, so a sudden backlog meets the plan of an empty queue.
        await conn.execute("ANALYZE outbox_entries")
        title, statement, arguments = claim
        lines += [f"  {title}, after ANALYZE outbox_entries:",
                  await _explain(conn, statement, arguments)]
        return "\n".join(lines)
    finally:
        await conn.close()
