"""Stored provider events, as operators read them: newest first, the raw body one at a time.

Lists leave ``raw_body`` out (it can be up to 1 MiB per event); one event carries it as the
UTF-8 text of the bytes exactly as received.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock, providers
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import EVENT_OUTCOMES, webhook_events
from payhook.errors import InvalidRequest, NotFound

LISTED = [column for column in webhook_events.c if column.name != "raw_body"]


async def list_events(
    conn: AsyncConnection, page: PageRequest, *, provider: str | None = None,
    outcome: str | None = None,
) -> Page:
    filters = []
    if provider is not None:
        named = one_of("provider", provider, providers.names())
        filters.append(webhook_events.c.provider == named)
    if outcome is not None:
        filters.append(webhook_events.c.outcome == one_of("outcome", outcome, EVENT_OUTCOMES))
    return await fetch_page(conn, webhook_events, page, (), filters, columns=LISTED)


async def get(conn: AsyncConnection, event_id: str) -> Any:
    row = (await conn.execute(
        select(webhook_events).where(webhook_events.c.id == event_id))).first()
    if row is None:
        raise NotFound(f"no such event: {event_id}", param="id")
    return row


def one_of(param: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidRequest(f"{param} must be one of {', '.join(allowed)}", param=param)
    return value


def to_object(row: Any, *, with_body: bool = False) -> dict[str, Any]:
    event = {
        "id": row.id,
        "object": "webhook_event",
        "provider": row.provider,
        "event_id": row.event_id,
        "type": row.type,
        "session_id": row.session_id,
        "outcome": row.outcome,
        "received_at": clock.iso(row.created_at),
        "headers": row.headers,
    }
    if with_body:
        # Verified bodies are JSON, so UTF-8 in practice; never fail to show one that is not.
        event["raw_body"] = bytes(row.raw_body).decode("utf-8", errors="replace")
    return event
