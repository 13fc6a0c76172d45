"""Unpaid sessions past ``expires_at`` become ``failed``/``expired`` through the same
compare-and-set as every other transition, and their merchants are notified."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.sessions import moving
from payhook.db.tables import checkout_sessions as sessions
from payhook.domain.decisions import FAILED, NOTIFY
from payhook.domain.sessions import FailureReason, Status, sources
from payhook.outbox.store import enqueue


async def expire_due(conn: AsyncConnection, now: datetime, max_attempts: int,
                     limit: int = 500) -> int:
    due = (select(sessions.c.id)
           .where(sessions.c.status.in_(sources(Status.FAILED)), sessions.c.expires_at <= now)
           .limit(limit).with_for_update(skip_locked=True).scalar_subquery())
    expired = (await conn.execute(
        moving(Status.FAILED, now, sessions.c.id.in_(due), failure_reason=FailureReason.EXPIRED)
        .returning(sessions.c.id))).scalars().all()
    await enqueue(conn, [(NOTIFY, {"session_id": session_id, "type": FAILED})
                         for session_id in expired], now, max_attempts)
    return len(expired)
