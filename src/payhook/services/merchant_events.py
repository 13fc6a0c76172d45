"""The events made for a merchant (``/v1/events``): each exactly as its endpoints receive it.

An event is recorded in the transaction that makes its deliveries, whether or not the merchant
has any endpoint, so that a merchant whose endpoint was down — or who has none — reconciles
from here. Kept :data:`RETENTION`, then pruned by the sweep a bounded batch at a time.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import merchant_events as events
from payhook.domain.webhooks import EVENT_TYPES
from payhook.errors import InvalidRequest, NotFound
from payhook.services.api_keys import Caller

RETENTION = timedelta(days=30)
PRUNE_BATCH = 1000  # rows per sweep: a backlog is worked off over several sweeps


async def record(conn: AsyncConnection, made: Sequence[dict[str, Any]]) -> None:
    """Each ``{merchant_id, mode, session_id, body}``; an event id kept already (its maker ran
    again) is kept as it was first made."""
    if not made:
        return
    await conn.execute(insert_ignoring_conflicts(conn, events), [
        {"id": event["body"]["id"], "type": event["body"]["type"],
         "created_at": datetime.fromisoformat(event["body"]["created_at"]), **event}
        for event in made])


async def list_events(conn: AsyncConnection, caller: Caller, page: PageRequest,
                      type: str | None = None) -> Page:
    filters = []
    if type is not None:
        if type not in EVENT_TYPES:
            raise InvalidRequest(f"type must be one of {', '.join(EVENT_TYPES)}", param="type")
        filters.append(events.c.type == type)
    return await fetch_page(conn, events, page, _own(caller), filters)


async def get(conn: AsyncConnection, caller: Caller, event_id: str) -> Any:
    row = (await conn.execute(
        select(events).where(*_own(caller), events.c.id == event_id))).first()
    if row is None:
        raise NotFound(f"no such event: {event_id}", param="id")
    return row


async def prune(conn: AsyncConnection, now: datetime, limit: int = PRUNE_BATCH) -> int:
    """Forget up to ``limit`` events older than :data:`RETENTION`, oldest first."""
    oldest = (select(events.c.id).where(events.c.created_at < now - RETENTION)
              .order_by(events.c.created_at).limit(limit).scalar_subquery())
    pruned = await conn.execute(delete(events).where(events.c.id.in_(oldest)))
    return int(pruned.rowcount)


def _own(caller: Caller) -> list[Any]:
    return [events.c.merchant_id == caller.merchant_id, events.c.mode == caller.mode]


def to_object(row: Any) -> dict[str, Any]:
    """The body exactly as endpoints received it: ``id, type, created_at, data``."""
    return dict(row.body)
