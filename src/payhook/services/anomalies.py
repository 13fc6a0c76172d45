"""Anomalies, as operators read them: late payments, mismatches, on-chain checks that did not
pay their session. Newest first, filterable by kind and session."""

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import anomalies
from payhook.errors import InvalidRequest

# Kinds are open-ended (the worker adds its own), so a filter is checked for shape only: an
# unknown but well-formed kind simply matches nothing.
KIND = re.compile(r"[a-z][a-z0-9_.]{0,39}")
MAX_SESSION_ID = 255


async def list_anomalies(
    conn: AsyncConnection, page: PageRequest, *, kind: str | None = None,
    session_id: str | None = None,
) -> Page:
    filters = []
    if kind is not None:
        if not KIND.fullmatch(kind):
            raise InvalidRequest("kind must be a lowercase name such as amount_mismatch",
                                 param="kind")
        filters.append(anomalies.c.kind == kind)
    if session_id is not None:
        if not 0 < len(session_id) <= MAX_SESSION_ID:
            raise InvalidRequest("session_id must be a session id", param="session_id")
        filters.append(anomalies.c.session_id == session_id)
    return await fetch_page(conn, anomalies, page, (), filters)


def to_object(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "anomaly",
        "kind": row.kind,
        "session_id": row.session_id,
        "event_id": row.event_id,
        "provider": row.provider,
        "details": row.details,
        "created_at": clock.iso(row.created_at),
    }
