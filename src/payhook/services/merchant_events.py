"""The events made for a merchant (``/v1/events``): each exactly as its endpoints receive it.

An event is recorded in the transaction that makes its deliveries, whether or not the merchant
has any endpoint, so that a merchant whose endpoint was down — or who has none — reconciles
from here. Kept ``PAYHOOK_RETENTION_DAYS`` (30 at least), then pruned by the sweep
(:mod:`payhook.services.retention`).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.statements import insert_rows
from payhook.db.tables import merchant_events as events
from payhook.domain.webhooks import EVENT_TYPES
from payhook.errors import InvalidRequest, NotFound
from payhook.services.api_keys import Caller


async def record(conn: AsyncConnection, made: Sequence[dict[str, Any]]) -> None:
    """Each ``{merchant_id, mode, session_id, body}``; an event id kept already (its maker ran
    again) is kept as it was first made."""
    if not made:
        return
    await insert_rows(conn, events, [
        {"id": event["body"]["id"], "type": event["body"]["type"],
         "created_at": datetime.fromisoformat(event["body"]["created_at"]), **event}
        for event in made], ignore_conflicts=True)


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


def _own(caller: Caller) -> list[Any]:
    return [events.c.merchant_id == caller.merchant_id, events.c.mode == caller.mode]


def to_object(row: Any) -> dict[str, Any]:
    """The body exactly as endpoints received it: ``id, type, created_at, data``."""
    return dict(row.body)
