"""The worker's set-based statements (``payhook.db.statements``) on both databases: on
PostgreSQL a batch's values travel as one array per column, which must round-trip every value
a column holds — JSON documents whose top level is a list, NULLs, long strings, odd text — and
never match a row by a cut-off value."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.statements import among, insert_rows, update_each
from payhook.db.tables import outbox_entries as outbox
from payhook.outbox import store
from payhook.outbox.store import Entry

LONG_ID = "ob_" + "x" * 10_000  # a 10 kB id: no column of 40 characters may cut it to match
ODD = "é\"'\\ ; -- 𝔘 ٣"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def row(id: str, **values: object) -> dict[str, object]:
    now = clock.now()
    return {"id": id, "kind": "invoice.create", "payload": {"session_id": id, "odd": ODD},
            "dedup_key": None, "status": "pending", "attempts": 0, "max_attempts": 5,
            "next_attempt_at": now, "errors": [], "created_at": now, "updated_at": now,
            **values}


async def test_rows_round_trip_and_conflicts_are_ignored(engine: AsyncEngine) -> None:
    rows = [row("ob_a", errors=[{"attempt": 1, "error": ODD}]), row("ob_b", dedup_key="k"),
            row("ob_c", payload={"list": [[1, 2], []], "null": None})]
    async with engine.begin() as conn:
        inserted = await insert_rows(conn, outbox, rows, outbox.c.id, ignore_conflicts=True)
        again = await insert_rows(conn, outbox, [*rows, row("ob_d", dedup_key="k")],
                                  outbox.c.id, ignore_conflicts=True)
        stored = {r.id: r for r in await conn.execute(select(outbox))}
    assert sorted(r.id for r in inserted) == ["ob_a", "ob_b", "ob_c"]
    assert again == []  # the same ids, and a dedup key already at work
    assert stored["ob_a"].errors == [{"attempt": 1, "error": ODD}]
    assert stored["ob_a"].payload == {"session_id": "ob_a", "odd": ODD}
    assert stored["ob_c"].payload == {"list": [[1, 2], []], "null": None}
    assert stored["ob_b"].dedup_key == "k" and stored["ob_a"].dedup_key is None
    assert stored["ob_a"].next_attempt_at.tzinfo is not None


async def test_update_each_sets_each_row_its_own_values(engine: AsyncEngine) -> None:
    later = clock.now() + timedelta(hours=1)
    async with engine.begin() as conn:
        await insert_rows(conn, outbox, [row("ob_a"), row("ob_b"), row("ob_c", status="done")])
        await update_each(conn, outbox, [
            {"id": "ob_a", "last_error": ODD * 100, "next_attempt_at": later},
            {"id": "ob_b", "last_error": None, "next_attempt_at": later},
            {"id": "ob_c", "last_error": "not pending", "next_attempt_at": later},
            {"id": LONG_ID, "last_error": "no such row", "next_attempt_at": later},
        ], outbox.c.status == "pending", attempts=outbox.c.attempts + 1)
        stored = {r.id: r for r in await conn.execute(select(outbox))}
    assert stored["ob_a"].last_error == ODD * 100 and stored["ob_a"].attempts == 1
    assert stored["ob_a"].next_attempt_at == later
    assert stored["ob_b"].last_error is None and stored["ob_b"].attempts == 1
    assert stored["ob_c"].last_error is None and stored["ob_c"].attempts == 0  # its where held
    assert len(stored) == 3


async def test_among_matches_whole_values_only(engine: AsyncEngine) -> None:
    truncated = LONG_ID[:40]
    async with engine.begin() as conn:
        await insert_rows(conn, outbox, [row(truncated), row("ob_b", attempts=2)])
        found = (await conn.scalars(select(outbox.c.id).where(
            among(conn, outbox.c.id, [LONG_ID, "ob_b", ODD])))).all()
        none = (await conn.scalars(select(outbox.c.id).where(among(conn, outbox.c.id, [])))).all()
    assert found == ["ob_b"]  # the long id did not match the row holding its first 40 characters
    assert none == []


async def test_settle_done_holds_each_rows_whole_fence(engine: AsyncEngine) -> None:
    """The fence (id, lease holder, attempt) of every row at once: a row is settled only when
    all three match — never by a cut-off id, another holder, or an older attempt."""
    truncated = LONG_ID[:40]
    async with engine.begin() as conn:
        await insert_rows(conn, outbox, [row(id, status="running", locked_by="w", attempts=n)
                                         for id, n in ((truncated, 1), ("ob_b", 2), ("ob_c", 1),
                                                       ("ob_d", 1))])

    def entry(id: str, locked_by: str, attempts: int) -> Entry:
        return Entry(id=id, kind="invoice.create", payload={}, attempts=attempts,
                     max_attempts=5, locked_by=locked_by, created_at=clock.now())

    given = [entry(LONG_ID, "w", 1), entry(truncated, "w", 2), entry("ob_b", "w", 2),
             entry("ob_c", "other", 1), entry("ob_d", "w", 1)]
    async with engine.begin() as conn:
        held = await store.settle_done(conn, given, clock.now())
        statuses = dict((await conn.execute(select(outbox.c.id, outbox.c.status))).all())
    assert [e.id for e in held] == ["ob_b", "ob_d"]
    assert statuses == {truncated: "running", "ob_b": "done", "ob_c": "running", "ob_d": "done"}


async def test_a_nul_byte_is_refused_by_postgresql_and_nothing_is_written(pg_url: str) -> None:
    engine = create_engine(pg_url)  # SQLite keeps a NUL in text; PostgreSQL refuses it
    try:
        with pytest.raises(Exception, match="0x00|\\\\u0000|null"):
            async with engine.begin() as conn:
                await insert_rows(conn, outbox, [row("ob_a"), row("ob_\x00")])
        async with engine.begin() as conn:
            assert (await conn.scalars(select(outbox.c.id))).all() == []
    finally:
        await engine.dispose()
