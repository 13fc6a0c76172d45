"""The dry run of a bulk replay, for the console: the dead rows it would take and, for each,
what running it again would do — for merchant webhooks, which endpoint would receive which
event, decided as the worker decides it, and nothing written.

A ``merchant.notify`` row makes its event for every endpoint of the session's merchant and
mode that is not deleted and whose ``enabled_events`` let the type through; a disabled
endpoint's delivery is made but held until it is enabled again; an endpoint that has the event
already (the row ran before) is not sent it again — retry that delivery instead. A
``delivery.send`` row sends its one delivery: held if the endpoint is disabled, ended untried if
it is deleted, nothing at all if it was delivered meanwhile.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.statements import written
from payhook.db.tables import checkout_sessions, deliveries, outbox_entries, webhook_endpoints
from payhook.domain import decisions
from payhook.domain.webhooks import accepts, notified_event_id

LIMIT = 500

WHAT = {
    decisions.INVOICE: "create the invoice",
    decisions.API_KEY: "provision the merchant's API key",
    decisions.ACCESS_LINK: "issue the customer's access link",
    decisions.EMAIL: "e-mail the customer their access link",
    decisions.ONCHAIN_CHECK: "check the transaction on chain",
}


@dataclass(frozen=True)
class Receiver:
    """One endpoint and what it would get: ``fate`` is sent, held, filtered (its
    ``enabled_events`` leave the type out), has_it (made before), delivered or ended."""

    url: str
    fate: str
    note: str

    @property
    def receives(self) -> bool:
        return self.fate == "sent"


@dataclass(frozen=True)
class Planned:
    """One dead row a replay would run again, and what running it would do."""

    entry: Any
    does: str
    receivers: Sequence[Receiver] = ()


async def preview(conn: AsyncConnection, kind: str | None) -> list[Planned]:
    """The dead rows (of one kind, if given) a bulk replay would take, oldest first."""
    filters = [outbox_entries.c.status == written("dead")]  # ix_outbox_entries_dead
    if kind:
        filters.append(outbox_entries.c.kind == kind)
    rows = list(await conn.execute(select(outbox_entries).where(*filters)
                                   .order_by(outbox_entries.c.created_at).limit(LIMIT)))
    targets = await _delivery_targets(conn, rows)
    endpoints = await _merchant_endpoints(conn, rows)
    made = await _made(conn, rows)
    return [_plan(row, targets, endpoints, made) for row in rows]


def _plan(row: Any, targets: dict[str, Any], endpoints: dict[str, list[Any]],
          made: dict[tuple[str, str], str]) -> Planned:
    if row.kind == decisions.DELIVER:
        target = targets.get(row.payload.get("delivery_id"))
        if target is None:
            return Planned(row, "send a delivery that no longer exists (it will fail)")
        return Planned(row, f"send {target.type}", (_sending(target),))
    if row.kind == decisions.NOTIFY:
        event_type, event_id = row.payload.get("type"), notified_event_id(row.id)
        return Planned(row, f"notify the merchant: {event_type}", [
            _notifying(endpoint, str(event_type), made.get((endpoint.id, event_id)))
            for endpoint in endpoints.get(row.payload.get("session_id"), ())])
    return Planned(row, WHAT.get(row.kind, f"run {row.kind}"))


def _sending(target: Any) -> Receiver:
    if target.status == "delivered":
        return Receiver(target.url, "delivered", "delivered meanwhile: nothing is sent")
    if target.endpoint_status == "deleted":
        return Receiver(target.url, "ended", "the endpoint is deleted: ends untried")
    return _enabled_or_held(target.url, target.endpoint_status, target.disabled_reason)


def _notifying(endpoint: Any, event_type: str, made: str | None) -> Receiver:
    if not accepts(endpoint.enabled_events, event_type):
        return Receiver(endpoint.url, "filtered", f"its enabled events leave {event_type} out")
    if made is not None:
        return Receiver(endpoint.url, "has_it",
                        f"has this event already ({made}): not sent again — retry that delivery")
    return _enabled_or_held(endpoint.url, endpoint.status, endpoint.disabled_reason)


def _enabled_or_held(url: str, status: str, reason: str | None) -> Receiver:
    if status == "enabled":
        return Receiver(url, "sent", "receives it")
    return Receiver(url, "held", f"held: the endpoint is disabled ({reason or 'no reason'}); "
                                 "sent once it is enabled")


async def _delivery_targets(conn: AsyncConnection, rows: list[Any]) -> dict[str, Any]:
    wanted = {row.payload.get("delivery_id") for row in rows if row.kind == decisions.DELIVER}
    if not wanted:
        return {}
    return {target.id: target for target in await conn.execute(
        select(deliveries.c.id, deliveries.c.type, deliveries.c.status,
               webhook_endpoints.c.url, webhook_endpoints.c.status.label("endpoint_status"),
               webhook_endpoints.c.disabled_reason)
        .join(webhook_endpoints, webhook_endpoints.c.id == deliveries.c.endpoint_id)
        .where(deliveries.c.id.in_(wanted)))}


async def _merchant_endpoints(conn: AsyncConnection, rows: list[Any]) -> dict[str, list[Any]]:
    """The endpoints (deleted ones aside) of each notifying row's merchant and mode, by
    session id."""
    wanted = {row.payload.get("session_id") for row in rows if row.kind == decisions.NOTIFY}
    if not wanted:
        return {}
    found: dict[str, list[Any]] = defaultdict(list)
    for row in await conn.execute(
            select(checkout_sessions.c.id.label("session_id"), webhook_endpoints.c.id,
                   webhook_endpoints.c.url, webhook_endpoints.c.status,
                   webhook_endpoints.c.disabled_reason, webhook_endpoints.c.enabled_events)
            .join(webhook_endpoints,
                  (webhook_endpoints.c.merchant_id == checkout_sessions.c.merchant_id)
                  & (webhook_endpoints.c.mode == checkout_sessions.c.mode))
            .where(checkout_sessions.c.id.in_(wanted), webhook_endpoints.c.status != "deleted")
            .order_by(webhook_endpoints.c.created_at)):
        found[row.session_id].append(row)
    return found


async def _made(conn: AsyncConnection, rows: list[Any]) -> dict[tuple[str, str], str]:
    """The deliveries the notifying rows' events have already, (endpoint, event) → status."""
    notifying = [row for row in rows if row.kind == decisions.NOTIFY]
    if not notifying:
        return {}
    return {(row.endpoint_id, row.event_id): row.status for row in await conn.execute(
        select(deliveries.c.endpoint_id, deliveries.c.event_id, deliveries.c.status).where(
            # by the sessions (indexed), then exactly these events
            deliveries.c.session_id.in_({row.payload.get("session_id") for row in notifying}),
            deliveries.c.event_id.in_([notified_event_id(row.id) for row in notifying])))}
