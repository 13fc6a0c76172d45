"""What the console lists for operators — outbox rows that are dead or retrying, deliveries
that fail, the replay audit trail — and the dry run of a bulk replay: which rows, of which
kinds, would do what for whom (which endpoint would receive which event)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import (
    checkout_sessions,
    deliveries,
    outbox_entries,
    outbox_replays,
    webhook_endpoints,
)
from payhook.domain import decisions
from payhook.errors import InvalidRequest

# "retrying": pending again after at least one failed attempt (waiting out its backoff).
OUTBOX_VIEWS = ("dead", "retrying", "running", "pending", "done")
DELIVERY_VIEWS = ("failing", "pending", "delivered")
PREVIEW_LIMIT = 500
DELIVER = "delivery.send"  # effects.deliveries.DELIVER; services sit below effects

WHAT = {
    decisions.INVOICE: "create the invoice",
    decisions.API_KEY: "provision the merchant's API key",
    decisions.ACCESS_LINK: "issue the customer's access link",
    decisions.EMAIL: "e-mail the customer their access link",
    decisions.ONCHAIN_CHECK: "check the transaction on chain",
}


def _choice(param: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{param} must be one of {', '.join(allowed)}", param=param)
    return value or None


async def outbox_rows(conn: AsyncConnection, page: PageRequest, view: str | None,
                      kind: str | None) -> Page:
    view = _choice("status", view, OUTBOX_VIEWS)
    filters = []
    if view == "retrying":
        filters += [outbox_entries.c.status == "pending", outbox_entries.c.attempts > 0]
    elif view is not None:
        filters.append(outbox_entries.c.status == view)
    if kind:
        filters.append(outbox_entries.c.kind == kind)
    return await fetch_page(conn, outbox_entries, page, (), filters)


async def delivery_rows(conn: AsyncConnection, page: PageRequest, view: str | None) -> Page:
    view = _choice("status", view, DELIVERY_VIEWS)
    filters = []
    if view == "failing":
        filters += [deliveries.c.status != "delivered", deliveries.c.attempts > 0]
    elif view is not None:
        filters.append(deliveries.c.status == view)
    return await fetch_page(conn, deliveries, page, (), filters)


async def replays(conn: AsyncConnection, page: PageRequest) -> Page:
    return await fetch_page(conn, outbox_replays, page, ())


@dataclass(frozen=True)
class Planned:
    """One dead row a replay would run again, and what running it would do."""

    entry: Any
    does: str
    endpoints: Sequence[str] = ()


async def preview(conn: AsyncConnection, kind: str | None) -> list[Planned]:
    """The dead rows (of one kind, if given) a bulk replay would take, oldest first — a dry
    run: nothing is written."""
    filters = [outbox_entries.c.status == "dead"]
    if kind:
        filters.append(outbox_entries.c.kind == kind)
    rows = list(await conn.execute(select(outbox_entries).where(*filters)
                                   .order_by(outbox_entries.c.created_at)
                                   .limit(PREVIEW_LIMIT)))
    targets = await _delivery_targets(conn, rows)
    endpoints = await _merchant_endpoints(conn, rows)
    return [_plan(row, targets, endpoints) for row in rows]


def _plan(row: Any, targets: dict[str, Any], endpoints: dict[str, list[str]]) -> Planned:
    session_id = row.payload.get("session_id")
    if row.kind == DELIVER:
        target = targets.get(row.payload.get("delivery_id"))
        if target is None:
            return Planned(row, "send a delivery that no longer exists (it will fail)")
        return Planned(row, f"send {target.type}", (target.endpoint_url,))
    if row.kind == decisions.NOTIFY:
        return Planned(row, f"notify the merchant: {row.payload.get('type')}",
                       endpoints.get(session_id, ()))
    return Planned(row, WHAT.get(row.kind, f"run {row.kind}"))


async def _delivery_targets(conn: AsyncConnection, rows: list[Any]) -> dict[str, Any]:
    wanted = {row.payload.get("delivery_id") for row in rows if row.kind == DELIVER}
    if not wanted:
        return {}
    return {target.id: target for target in await conn.execute(
        select(deliveries.c.id, deliveries.c.type, webhook_endpoints.c.url.label("endpoint_url"))
        .join(webhook_endpoints, webhook_endpoints.c.id == deliveries.c.endpoint_id)
        .where(deliveries.c.id.in_(wanted)))}


async def _merchant_endpoints(conn: AsyncConnection, rows: list[Any]) -> dict[str, list[str]]:
    """The enabled endpoints of each notifying row's merchant and mode, by session id."""
    wanted = {row.payload.get("session_id") for row in rows if row.kind == decisions.NOTIFY}
    if not wanted:
        return {}
    found: dict[str, list[str]] = {session_id: [] for session_id in wanted}
    for row in await conn.execute(
            select(checkout_sessions.c.id, webhook_endpoints.c.url)
            .join(webhook_endpoints,
                  (webhook_endpoints.c.merchant_id == checkout_sessions.c.merchant_id)
                  & (webhook_endpoints.c.mode == checkout_sessions.c.mode))
            .where(checkout_sessions.c.id.in_(wanted), webhook_endpoints.c.status == "enabled")):
        found[row.id].append(row.url)
    return found
