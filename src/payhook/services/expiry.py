"""Unpaid sessions past ``expires_at`` become ``failed``/``expired`` through the same
compare-and-set as every other transition, and their merchants are notified."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.tables import checkout_sessions as sessions
from payhook.db.tables import outbox_entries
from payhook.domain.decisions import FAILED, NOTIFY
from payhook.domain.sessions import FailureReason, Status, sources
from payhook.outbox.store import new_entry


async def expire_due(conn: AsyncConnection, now: datetime, max_attempts: int,
                     limit: int = 500) -> int:
    due = (select(sessions.c.id)
           .where(sessions.c.status.in_(sources(Status.FAILED)), sessions.c.expires_at <= now)
           .limit(limit).with_for_update(skip_locked=True).scalar_subquery())
    expired = (await conn.execute(
        update(sessions)
        .where(sessions.c.id.in_(due), sessions.c.status.in_(sources(Status.FAILED)))
        .values(status=Status.FAILED, failure_reason=FailureReason.EXPIRED, updated_at=now)
        .returning(sessions.c.id))).scalars().all()
    if expired:
        await conn.execute(outbox_entries.insert(), [
            new_entry(NOTIFY, {"session_id": session_id, "type": FAILED}, now, max_attempts)
            for session_id in expired])
    return len(expired)
