"""What operators do with the outbox: look, and replay what died — always on the record.

Replay moves ``dead`` rows back to ``pending`` with fresh attempts; it never touches a running
row (another worker owns it) and writes who replayed which rows, when and why.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.statements import written
from payhook.db.tables import outbox_entries as outbox
from payhook.db.tables import outbox_replays
from payhook.errors import Conflict, InvalidRequest, NotFound
from payhook.ids import new_id

STATUSES = ("pending", "running", "done", "dead")


def _filters(status: str | None, kind: str | None) -> list[Any]:
    filters = []
    if status is not None:
        if status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", param="status")
        filters.append(outbox.c.status == written(status))  # a partial index's predicate
    if kind is not None:
        filters.append(outbox.c.kind == kind)
    return filters


async def list_entries(conn: AsyncConnection, page: PageRequest, status: str | None = None,
                       kind: str | None = None) -> Page:
    return await fetch_page(conn, outbox, page, (), _filters(status, kind))


async def get_entry(conn: AsyncConnection, entry_id: str) -> Any:
    row = (await conn.execute(select(outbox).where(outbox.c.id == entry_id))).first()
    if row is None:
        raise NotFound(f"no such outbox entry: {entry_id}", param="id")
    return row


async def replay_one(conn: AsyncConnection, entry_id: str, actor: str,
                     reason: str | None = None) -> Any:
    replayed = await _replay(conn, [outbox.c.id == entry_id], clock.now())
    if not replayed:
        current = await get_entry(conn, entry_id)
        raise Conflict(f"only dead entries can be replayed; this one is {current.status}",
                       code="entry_not_dead")
    await audit(conn, actor, reason, [row.id for row in replayed])
    return replayed[0]


async def replay_dead(conn: AsyncConnection, actor: str, kind: str | None = None,
                      reason: str | None = None, dry_run: bool = False) -> list[str]:
    """Every dead row (of one kind, if given) back to pending; returns their ids."""
    filters = _filters("dead", kind)
    if dry_run:
        return list((await conn.execute(select(outbox.c.id).where(*filters))).scalars())
    replayed = [row.id for row in await _replay(conn, filters, clock.now())]
    if replayed:
        await audit(conn, actor, reason, replayed)
    return replayed


async def replay_entries(conn: AsyncConnection, entry_ids: list[str], actor: str,
                         reason: str | None = None) -> list[str]:
    """Exactly these rows, those of them still dead, back to pending (the console's confirmed
    bulk replay: what the operator previewed, never a row that died since); their ids."""
    if not entry_ids:
        return []
    replayed = [row.id for row in await _replay(conn, [outbox.c.id.in_(entry_ids)], clock.now())]
    if replayed:
        await audit(conn, actor, reason, replayed)
    return replayed


async def retry_now(conn: AsyncConnection, entry_id: str, actor: str,
                    reason: str | None = None) -> Any:
    """A pending row waiting out its backoff, due now (its attempts count on); audited like a
    replay. A row that is not pending — running, done or dead (replay that) — is a 409."""
    now = clock.now()
    row = (await conn.execute(
        update(outbox).where(outbox.c.id == entry_id, outbox.c.status == "pending")
        .values(next_attempt_at=now, updated_at=now).returning(*outbox.c))).first()
    if row is None:
        current = await get_entry(conn, entry_id)
        raise Conflict(f"only pending entries can be retried now; this one is {current.status}",
                       code="entry_not_pending")
    await audit(conn, actor, reason, [entry_id])
    return row


async def _replay(conn: AsyncConnection, filters: list[Any], now: datetime) -> list[Any]:
    return list(await conn.execute(
        update(outbox).where(*filters, outbox.c.status == written("dead"))
        .values(status="pending", attempts=0, next_attempt_at=now, locked_by=None,
                locked_until=None, updated_at=now)
        .returning(*outbox.c)))


async def audit(conn: AsyncConnection, actor: str, reason: str | None,
                entry_ids: list[str]) -> None:
    """The audit trail's line: ``actor`` sent these rows' work again, for ``reason``."""
    await conn.execute(outbox_replays.insert().values(
        id=new_id("rp"), actor=actor[:200], reason=reason, entry_ids=entry_ids,
        created_at=clock.now()))


def to_object(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "outbox_entry",
        "kind": row.kind,
        "payload": row.payload,
        "status": row.status,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "next_attempt_at": clock.iso(row.next_attempt_at),
        "locked_by": row.locked_by,
        "locked_until": clock.iso(row.locked_until),
        "last_error": row.last_error,
        "errors": row.errors,
        "created_at": clock.iso(row.created_at),
        "updated_at": clock.iso(row.updated_at),
    }
