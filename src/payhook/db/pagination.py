"""Cursor pagination shared by every list: newest first, ``starting_after=<id>``."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import ids, inputs
from payhook.db.types import UTCDateTime
from payhook.errors import InvalidRequest

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "PageRequest":
        raw = query.get("limit")
        limit = DEFAULT_LIMIT
        if raw is not None:
            # ASCII digits only: "²" and "３" pass str.isdigit, and int() of thousands raises.
            number = inputs.unsigned(raw, len(str(MAX_LIMIT)))
            if number is None or not 1 <= number <= MAX_LIMIT:
                raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}",
                                     param="limit")
            limit = number
        cursor = query.get("starting_after") or None
        if cursor is not None and not ids.is_id(cursor):  # never a lookup for what cannot be
            raise InvalidRequest("starting_after is not one of your ids", param="starting_after")
        return cls(limit=limit, starting_after=cursor)


@dataclass(frozen=True)
class Page:
    rows: Sequence[Any]
    has_more: bool

    def to_list(self, render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """The list object every list answers (the API and the CLI alike)."""
        return {"object": "list", "data": [render(row) for row in self.rows],
                "has_more": self.has_more}


async def fetch_page(
    conn: AsyncConnection,
    table: Table,
    request: PageRequest,
    scope: Sequence[ColumnElement[bool]],
    filters: Sequence[ColumnElement[bool]] = (),
    columns: Sequence[ColumnElement[Any]] = (),
) -> Page:
    """Rows of ``table`` within ``scope`` (the caller's own) matching ``filters``, newest first.

    The cursor must be one of the caller's own ids, else 400: a foreign id must not reveal
    whether it exists. ``columns`` narrows what is read (all of them by default).
    """
    order = tuple_(table.c.created_at, table.c.id)
    query = (select(*columns) if columns else select(table)).where(*scope, *filters)
    if request.starting_after is not None:
        cursor = (await conn.execute(
            select(table.c.created_at, table.c.id).where(
                *scope, table.c.id == request.starting_after)
        )).first()
        if cursor is None:
            raise InvalidRequest("starting_after is not one of your ids", param="starting_after")
        after = tuple_(literal(cursor.created_at, UTCDateTime()), literal(cursor.id))
        query = query.where(order < after)
    query = query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(request.limit + 1)
    rows = (await conn.execute(query)).all()
    return Page(rows=rows[: request.limit], has_more=len(rows) > request.limit)
