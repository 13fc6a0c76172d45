"""What the console lists for operators: outbox rows that are dead or retrying, deliveries
that fail (with their endpoints), the replay audit trail. The dry run of a bulk replay is
:mod:`payhook.services.replay_plan`."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.statements import written
from payhook.db.tables import deliveries, outbox_entries, outbox_replays, webhook_endpoints
from payhook.domain.webhooks import DELIVERY_STATUSES
from payhook.errors import InvalidRequest
from payhook.ids import has_prefix

# "retrying": pending again after at least one failed attempt (waiting out its backoff).
OUTBOX_VIEWS = ("dead", "retrying", "running", "pending", "done")
DELIVERY_VIEWS = ("failing", *DELIVERY_STATUSES)
FAILING = ("failed", "dead")


def _choice(param: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{param} must be one of {', '.join(allowed)}", param=param)
    return value or None


async def outbox_rows(conn: AsyncConnection, page: PageRequest, view: str | None,
                      kind: str | None) -> Page:
    return await fetch_page(conn, outbox_entries, page, (), outbox_filters(view, kind))


def outbox_filters(view: str | None, kind: str | None = None) -> list[ColumnElement[bool]]:
    """The outbox rows of a view (of one kind, if given), as the lists and counts ask."""
    view = _choice("status", view, OUTBOX_VIEWS)
    filters = []
    if view == "retrying":  # the predicate of ix_outbox_entries_retrying, written out
        filters += [outbox_entries.c.status == written("pending"),
                    outbox_entries.c.attempts > written(0)]
    elif view is not None:
        filters.append(outbox_entries.c.status == written(view))
    if kind:
        filters.append(outbox_entries.c.kind == kind)
    return filters


async def delivery_rows(conn: AsyncConnection, page: PageRequest, status: str | None = None,
                        endpoint: str | None = None, merchant: str | None = None) -> Page:
    """Deliveries, newest first: "failing" are those failed (retrying) or dead (no tries
    left); of one endpoint or one merchant if asked."""
    view = _choice("status", status, DELIVERY_VIEWS)
    filters: list[ColumnElement[bool]] = []
    if view == "failing":
        filters.append(deliveries.c.status.in_(FAILING))
    elif view is not None:
        filters.append(deliveries.c.status == view)
    if endpoint:
        filters.append(deliveries.c.endpoint_id == _id("endpoint", endpoint, "we"))
    if merchant:
        filters.append(deliveries.c.merchant_id == _id("merchant", merchant, "mer"))
    return await fetch_page(conn, deliveries, page, (), filters)


def _id(param: str, value: str, prefix: str) -> str:
    if not has_prefix(value, prefix):
        raise InvalidRequest(f"{param} must be an id starting {prefix}_", param=param)
    return value


async def endpoints_of(conn: AsyncConnection, rows: Sequence[Any]) -> dict[str, Any]:
    """The endpoints (url, status, why disabled) of these deliveries, by id: one query."""
    wanted = {row.endpoint_id for row in rows}
    if not wanted:
        return {}
    return {row.id: row for row in await conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.url, webhook_endpoints.c.status,
               webhook_endpoints.c.disabled_reason)
        .where(webhook_endpoints.c.id.in_(wanted)))}


async def replays(conn: AsyncConnection, page: PageRequest) -> Page:
    return await fetch_page(conn, outbox_replays, page, ())
