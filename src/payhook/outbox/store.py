"""Outbox rows in SQL: claim atomically, settle behind a fence, replay for operators.

Claiming is one statement: a CTE picks due rows ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
has one writer and drops the clause) and the UPDATE marks them ``running`` with a lease and
``attempts + 1``. A row whose lease ran out (its worker was killed or paused) is due again.
Settling is fenced on (id, locked_by, attempts): a worker that lost its lease settles nothing.
Work is queued here alone, by :func:`enqueue` (PostgreSQL's webhook writer renders its insert
from :func:`new_entries`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.statements import Compiled, array_of, insert_rows, is_postgres, written
from payhook.db.tables import outbox_entries as outbox
from payhook.domain.decisions import dedup_key
from payhook.ids import new_id

MAX_ERRORS_KEPT = 50
MAX_ERROR_LENGTH = 2000


# What a claim reads back: an Entry's fields, no more (every column read is decoded). A row's
# error history is not among them: only a failure needs it, and reads it then.
CLAIMED = (outbox.c.id, outbox.c.kind, outbox.c.payload, outbox.c.attempts, outbox.c.max_attempts,
           outbox.c.locked_by, outbox.c.created_at)


@dataclass(frozen=True)
class Entry:
    """A claimed row: what a handler needs and what the fence checks."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    locked_by: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> "Entry":
        """A row of :data:`CLAIMED`'s columns, in their order (by position: a claim makes one
        per row, and a row's attributes by name cost more than the rest of it)."""
        row_id, kind, payload, attempts, max_attempts, locked_by, created_at = row
        return cls(row_id, kind, payload, attempts, max_attempts, locked_by, created_at)


def new_entry(kind: str, payload: dict[str, Any], now: datetime, max_attempts: int,
              dedup_key: str | None = None) -> dict[str, Any]:
    """The values of a fresh pending row, due now; of the rows sharing a ``dedup_key``, at
    most one is unfinished (insert them ignoring conflicts)."""
    return {"id": new_id("ob"), "kind": kind, "payload": payload, "dedup_key": dedup_key,
            **entry_defaults(now, max_attempts)}


def entry_defaults(now: datetime, max_attempts: int) -> dict[str, Any]:
    """What every fresh row has alike: pending, due now, no attempt made yet."""
    return {"status": "pending", "attempts": 0, "max_attempts": max_attempts,
            "next_attempt_at": now, "errors": [], "created_at": now, "updated_at": now}


def new_entries(work: Iterable[tuple[str, dict[str, Any]]], now: datetime,
                max_attempts: int) -> list[dict[str, Any]]:
    """The rows of these (kind, payload) pieces of work, each with its dedup key."""
    return [new_entry(kind, payload, now, max_attempts, dedup_key(kind, payload))
            for kind, payload in work]


async def enqueue(conn: AsyncConnection, work: Iterable[tuple[str, dict[str, Any]]],
                  now: datetime, max_attempts: int) -> None:
    """Queue each (kind, payload), due now, in the caller's transaction; a piece whose dedup
    key is already at work is not queued again (``ON CONFLICT DO NOTHING``)."""
    await insert_rows(conn, outbox, new_entries(work, now, max_attempts), ignore_conflicts=True)


async def claim_due(conn: AsyncConnection, worker: str, limit: int, lease: timedelta,
                    now: datetime) -> list[Entry]:
    """Lease up to ``limit`` rows: pending ones that are due, oldest due first, and running
    ones whose lease ran out (a worker died holding them)."""
    values = {"worker": worker, "limit": limit, "until": now + lease, "now": now}
    if is_postgres(conn):
        claimed = await _claim_compiled().execute(conn, **values)
    else:
        claimed = await conn.execute(claim_statement(**values))
    return [Entry.from_row(row) for row in claimed]


def claim_statement(worker: Any, limit: Any, until: Any, now: Any) -> Any:
    """The claim, of these values (or parameters)."""
    # Two reads, each in the order of its partial index and cut at the limit, so a claim costs
    # the rows it takes, not the backlog: one WHERE with both cases as an OR read every due row
    # and sorted them (28 ms a claim with 50,000 due, bench/plans.py). The status is written
    # into the SQL, so every plan can prove the index's predicate; no other index is on
    # (status, …), so stale statistics have nothing to trade it for that saves a sort
    # (tests/integration/test_outbox_plans.py). A session's rows share their next_attempt_at
    # (written in one transaction), so this order keeps them side by side: they land in one
    # claim and run in order.
    pending = (select(outbox.c.id)
               .where(outbox.c.status == written("pending"), outbox.c.next_attempt_at <= now)
               .order_by(outbox.c.next_attempt_at)
               .limit(limit).with_for_update(skip_locked=True).cte("pending"))
    abandoned = (select(outbox.c.id)
                 .where(outbox.c.status == written("running"), outbox.c.locked_until < now,
                        outbox.c.attempts < outbox.c.max_attempts)
                 .order_by(outbox.c.locked_until)
                 .limit(limit).with_for_update(skip_locked=True).cte("abandoned"))
    due = union_all(select(abandoned.c.id), select(pending.c.id)).limit(limit)
    return (update(outbox)
            .where(outbox.c.id.in_(due))
            .values(status="running", locked_by=worker, locked_until=until,
                    attempts=outbox.c.attempts + 1, updated_at=now)
            .returning(*CLAIMED))


@cache
def _claim_compiled() -> Compiled:
    """On PostgreSQL the claim runs once per batch of the drain: compiled once."""
    return Compiled(claim_statement(bindparam("worker", None, type_=String()),
                                    bindparam("limit", None, type_=Integer()),
                                    bindparam("until", None, type_=outbox.c.locked_until.type),
                                    bindparam("now", None, type_=outbox.c.updated_at.type)))


def _fence(entry: Entry) -> list[Any]:
    return [outbox.c.id == entry.id, outbox.c.status == "running",
            outbox.c.locked_by == entry.locked_by, outbox.c.attempts == entry.attempts]


async def settle_done(conn: AsyncConnection, entries: Sequence[Entry],
                      now: datetime) -> list[Entry]:
    """Mark done, in one statement, the rows whose lease we still hold; returns those. Run it
    in the effects' own transaction so a worker that lost a lease commits that row's effect
    neither."""
    if not entries:
        return []
    if is_postgres(conn):
        settled = await _settle_compiled().execute(
            conn, ids=[entry.id for entry in entries],
            owners=[entry.locked_by for entry in entries],
            attempts=[entry.attempts for entry in entries], now=now)
    else:
        settled = await conn.execute(_settle_statement(
            tuple_(*_FENCED).in_([(entry.id, entry.locked_by, entry.attempts)
                                  for entry in entries]), now))
    held = {row[0] for row in settled}
    return [entry for entry in entries if entry.id in held]


_FENCED = (outbox.c.id, outbox.c.locked_by, outbox.c.attempts)


def _settle_statement(fenced: Any, now: Any) -> Any:
    return (update(outbox).where(outbox.c.status == "running", fenced)
            .values(status="done", locked_by=None, locked_until=None, updated_at=now)
            .returning(outbox.c.id))


@cache
def _settle_compiled() -> Compiled:
    """On PostgreSQL the fence of each row given as three arrays, unnested side by side."""
    given = select(*(func.unnest(array_of(column, name))
                     for column, name in zip(_FENCED, ("ids", "owners", "attempts"),
                                             strict=True)))
    return Compiled(_settle_statement(tuple_(*_FENCED).in_(given),
                                      bindparam("now", None, type_=outbox.c.updated_at.type)))


async def settle_failed(conn: AsyncConnection, entry: Entry, error: str,
                        next_attempt: datetime | None, now: datetime) -> bool:
    """Back to pending at ``next_attempt``, or ``dead`` when there is none; keeps each error."""
    error = error[:MAX_ERROR_LENGTH]
    kept = await conn.scalar(select(outbox.c.errors).where(*_fence(entry)))
    history = [*(kept or []), {"attempt": entry.attempts, "at": now.isoformat(),
                               "error": error}][-MAX_ERRORS_KEPT:]
    values: dict[str, Any] = {"locked_by": None, "locked_until": None, "last_error": error,
                              "errors": history, "updated_at": now}
    if next_attempt is None:
        values["status"] = "dead"
    else:
        values.update(status="pending", next_attempt_at=next_attempt)
    settled = await conn.execute(update(outbox).where(*_fence(entry)).values(**values))
    return settled.rowcount == 1


async def postpone(conn: AsyncConnection, entry: Entry, until: datetime, now: datetime,
                   reason: str | None = None) -> bool:
    """Not ready yet (a prerequisite is still in flight): try again later, attempt not counted.
    A ``reason`` is kept as the row's ``last_error``, so that a long wait shows why."""
    values: dict[str, Any] = {} if reason is None else {"last_error": reason[:MAX_ERROR_LENGTH]}
    settled = await conn.execute(
        update(outbox).where(*_fence(entry))
        .values(status="pending", next_attempt_at=until, attempts=outbox.c.attempts - 1,
                locked_by=None, locked_until=None, updated_at=now, **values))
    return settled.rowcount == 1


async def bury_expired_leases(conn: AsyncConnection, now: datetime) -> int:
    """Rows whose worker died on their last attempt: dead, with the reason kept."""
    buried = await conn.execute(
        update(outbox)
        .where(outbox.c.status == written("running"), outbox.c.locked_until < now,
               outbox.c.attempts >= outbox.c.max_attempts)
        .values(status="dead", locked_by=None, locked_until=None,
                last_error="lease expired on the last attempt (worker stopped)", updated_at=now)
        .returning(outbox.c.id))
    return len(buried.all())


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    return await conn.scalar(
        select(outbox.c.next_attempt_at).where(outbox.c.status == written("pending"))
        .order_by(outbox.c.next_attempt_at).limit(1))
