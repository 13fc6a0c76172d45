"""The delivery log (``/v1/deliveries``) and sending again: retry one, recover a window.

A delivery is sent by its one unfinished ``delivery.send`` outbox row (the row's dedup key makes
it one): to send a delivery again is to make that row due now with fresh attempts — replaying
it if it is dead — or to queue a new row when it has none (it was delivered, or held while its
endpoint was disabled). A row that is running is in flight: left alone (a retry says 409).
Every try of one delivery carries the same ``webhook-id`` (its event id).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import deliveries, delivery_attempts
from payhook.db.tables import outbox_entries as outbox
from payhook.db.tables import webhook_endpoints as endpoints
from payhook.domain.decisions import DELIVER, dedup_key
from payhook.domain.webhooks import DELIVERY_STATUSES as STATUSES
from payhook.domain.webhooks import TEST
from payhook.errors import Conflict, InvalidRequest, NotFound
from payhook.ids import has_prefix, new_id
from payhook.outbox.store import enqueue
from payhook.services import merchant_events
from payhook.services.api_keys import Caller

CHUNK = 500  # deliveries rescheduled per statement


async def list_deliveries(conn: AsyncConnection, caller: Caller, page: PageRequest,
                          endpoint: str | None = None, status: str | None = None) -> Page:
    return await fetch_page(conn, deliveries, page, _own(caller), _filters(endpoint, status))


async def list_for_merchant(conn: AsyncConnection, merchant_id: str, mode: str | None,
                            page: PageRequest, status: str | None = None) -> Page:
    """Operators' view (the CLI): one merchant's deliveries, of one mode or both."""
    scope = [deliveries.c.merchant_id == merchant_id]
    if mode is not None:
        scope.append(deliveries.c.mode == mode)
    return await fetch_page(conn, deliveries, page, scope, _filters(None, status))


def _filters(endpoint: str | None, status: str | None) -> list[Any]:
    filters = []
    if endpoint is not None:
        if not has_prefix(endpoint, "we"):
            raise InvalidRequest("endpoint must be a webhook endpoint id (we_…)",
                                 param="endpoint")
        filters.append(deliveries.c.endpoint_id == endpoint)
    if status is not None:
        if status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", param="status")
        filters.append(deliveries.c.status == status)
    return filters


async def get(conn: AsyncConnection, caller: Caller, delivery_id: str) -> Any:
    row = (await conn.execute(
        select(deliveries).where(*_own(caller), deliveries.c.id == delivery_id))).first()
    if row is None:
        raise NotFound(f"no such delivery: {delivery_id}", param="id")
    return row


async def retry(conn: AsyncConnection, caller: Caller, delivery_id: str,
                max_attempts: int) -> Any:
    """Send one of the caller's deliveries again now (see :func:`send_again`)."""
    await send_again(conn, await get(conn, caller, delivery_id), max_attempts)
    return await get(conn, caller, delivery_id)


async def find(conn: AsyncConnection, delivery_id: str) -> Any:
    """Any merchant's delivery, for operators."""
    row = (await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))).first()
    if row is None:
        raise NotFound(f"no such delivery: {delivery_id}", param="id")
    return row


async def send_again(conn: AsyncConnection, delivery: Any, max_attempts: int) -> None:
    """One delivery sent again now, whatever its status — the merchant's retry and the
    console's; 409 while it is in flight or while its endpoint is not enabled (it would only
    be held)."""
    status = await conn.scalar(select(endpoints.c.status)
                               .where(endpoints.c.id == delivery.endpoint_id))
    if status != "enabled":
        raise Conflict(f"the endpoint is {status}: enable it to send its deliveries",
                       code="endpoint_disabled")
    if not await reschedule(conn, [delivery], clock.now(), max_attempts):
        raise Conflict("the delivery is in flight: it is being sent right now",
                       code="delivery_in_flight")


async def sending_row(conn: AsyncConnection, delivery_id: str) -> str | None:
    """The id of the outbox row that sends this delivery, while one is unfinished."""
    return await conn.scalar(select(outbox.c.id).where(  # the unique index on unfinished keys
        outbox.c.dedup_key == dedup_key(DELIVER, {"delivery_id": delivery_id}),
        outbox.c.status != "done"))


async def send_test(conn: AsyncConnection, caller: Caller, endpoint: Any,
                    max_attempts: int) -> Any:
    """A ``webhook_endpoint.test`` event, to this (enabled) endpoint alone, whatever its
    ``enabled_events``; the new delivery."""
    now = clock.now()
    body = {"id": new_id("evt"), "type": TEST, "created_at": clock.iso(now),
            "data": {"webhook_endpoint": {"id": endpoint.id, "url": endpoint.url}}}
    await merchant_events.record(conn, [{"merchant_id": caller.merchant_id, "mode": caller.mode,
                                         "session_id": None, "body": body}])
    delivery = (await conn.execute(deliveries.insert().values(
        id=new_id("dl"), endpoint_id=endpoint.id, merchant_id=caller.merchant_id,
        mode=caller.mode, event_id=body["id"], type=TEST, session_id=None, body=body,
        status="pending", attempts=0, created_at=now).returning(*deliveries.c))).one()
    await enqueue(conn, [(DELIVER, _payload(delivery))], now, max_attempts)
    return delivery


async def recover(conn: AsyncConnection, endpoint_id: str, since: datetime,
                  until: datetime | None, max_attempts: int) -> int:
    """Every failed or dead delivery of this (enabled, the caller's) endpoint made in
    [since, until) sent again; how many."""
    window = [deliveries.c.endpoint_id == endpoint_id, deliveries.c.created_at >= since,
              deliveries.c.status.in_(("failed", "dead"))]
    if until is not None:
        window.append(deliveries.c.created_at < until)
    found = (await conn.execute(select(deliveries.c.id, deliveries.c.session_id)
                                .where(*window))).all()
    return len(await reschedule(conn, found, clock.now(), max_attempts))


async def release_held(conn: AsyncConnection, endpoint_id: str, max_attempts: int) -> int:
    """An endpoint enabled again: its deliveries not yet delivered nor dead go out now."""
    held = (await conn.execute(select(deliveries.c.id, deliveries.c.session_id).where(
        deliveries.c.endpoint_id == endpoint_id,
        deliveries.c.status.in_(("pending", "failed"))))).all()
    return len(await reschedule(conn, held, clock.now(), max_attempts))


async def reschedule(conn: AsyncConnection, found: Sequence[Any], now: datetime,
                     max_attempts: int) -> list[str]:
    """Each delivery (``id``, ``session_id``) due now with fresh attempts, set-based a chunk
    at a time (a recovery of a long outage names many, and SQLite binds at most 32 766
    values); returns the ids rescheduled — all but those in flight."""
    chosen: list[str] = []
    for start in range(0, len(found), CHUNK):
        chosen += await _reschedule(conn, found[start:start + CHUNK], now, max_attempts)
    return chosen


async def _reschedule(conn: AsyncConnection, found: Sequence[Any], now: datetime,
                      max_attempts: int) -> list[str]:
    by_key = {dedup_key(DELIVER, {"delivery_id": row.id}): row for row in found}
    if not by_key:
        return []
    unfinished = (await conn.execute(
        select(outbox.c.id, outbox.c.dedup_key, outbox.c.status)
        .where(outbox.c.dedup_key.in_(list(by_key)), outbox.c.status != "done"))).all()
    running = {row.dedup_key for row in unfinished if row.status == "running"}
    waiting = [row.id for row in unfinished if row.status != "running"]
    if waiting:  # the status is checked again: a worker may have claimed one since
        await conn.execute(
            update(outbox).where(outbox.c.id.in_(waiting), outbox.c.status.in_(("pending",
                                                                                 "dead")))
            .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now))
    queued = {row.dedup_key for row in unfinished}
    await enqueue(conn, [(DELIVER, _payload(row)) for key, row in by_key.items()
                         if key not in queued], now, max_attempts)
    chosen = [row.id for key, row in by_key.items() if key not in running]
    if chosen:
        await conn.execute(update(deliveries).where(deliveries.c.id.in_(chosen))
                           .values(status="pending"))
    return chosen


def _payload(row: Any) -> dict[str, Any]:
    payload = {"delivery_id": row.id}
    if row.session_id is not None:
        payload["session_id"] = row.session_id
    return payload


def _own(caller: Caller) -> list[Any]:
    return [deliveries.c.merchant_id == caller.merchant_id, deliveries.c.mode == caller.mode]


async def details(conn: AsyncConnection, rows: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Each delivery's attempts (oldest first) and next attempt time, by delivery id: two
    queries for a whole page."""
    ids = [row.id for row in rows]
    found: dict[str, dict[str, Any]] = {i: {"attempts": [], "next_attempt_at": None}
                                        for i in ids}
    if not ids:
        return found
    for attempt in await conn.execute(
            select(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(ids))
            .order_by(delivery_attempts.c.attempted_at, delivery_attempts.c.id)):
        found[attempt.delivery_id]["attempts"].append({
            "at": clock.iso(attempt.attempted_at), "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms, "response_snippet": attempt.response_snippet,
            "error": attempt.error})
    keys = {dedup_key(DELIVER, {"delivery_id": i}): i for i in ids}
    for row in await conn.execute(
            select(outbox.c.dedup_key, outbox.c.next_attempt_at)
            .where(outbox.c.dedup_key.in_(list(keys)), outbox.c.status != "done",  # the index
                   outbox.c.status == "pending")):
        found[keys[row.dedup_key]]["next_attempt_at"] = clock.iso(row.next_attempt_at)
    return found


def to_object(row: Any, more: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "delivery",
        "endpoint_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.type,
        "status": row.status,
        "attempts": more["attempts"],
        "next_attempt_at": more["next_attempt_at"],
        "created_at": clock.iso(row.created_at),
        "delivered_at": clock.iso(row.delivered_at),
    }
