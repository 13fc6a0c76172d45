"""``merchant.notify``: one event per session outcome, kept for the merchant's events API, and
one delivery per endpoint whose ``enabled_events`` let it through. A disabled endpoint's
delivery is made too, and held (no ``delivery.send`` row) until the endpoint is enabled again.

The ``checkout.session.paid`` event carries the session's invoice and its customer access link,
which sibling outbox rows make: until both exist the row is postponed (``NotReady``), or fails
like any error once one of those rows is dead, so that it does not wait forever. The event id
derives from the outbox row, so a re-run builds the same event, and the unique
(endpoint_id, event_id) makes each delivery once; each new delivery gets its own
``delivery.send`` row, retried on its own.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.engine import reading
from payhook.db.json_members import member
from payhook.db.statements import among, insert_rows
from payhook.db.tables import checkout_sessions, deliveries, invoices, outbox_entries
from payhook.db.tables import webhook_endpoints as endpoints
from payhook.domain.decisions import ACCESS_LINK, DELIVER, FAILED, INVOICE, PAID
from payhook.domain.webhooks import accepts, notified_event_id
from payhook.effects.context import EffectContext
from payhook.ids import new_id
from payhook.outbox.drain import BatchWrites, NotReady, Outcome
from payhook.outbox.store import Entry, enqueue
from payhook.services import invoices as invoice_service
from payhook.services import merchant_events, sessions

EVENT_TYPES = (PAID, FAILED)
MAX_WAIT_SECONDS = 30.0


class PrerequisiteDead(Exception):
    """A row this notification waits for is dead: retry only after an operator replays it."""


async def notify(context: EffectContext, entries: Sequence[Entry]) -> Outcome:
    outcome = Outcome()
    events: dict[str, tuple[Any, dict[str, Any]]] = {}  # entry id -> (session, event)
    async with reading(context.engine) as conn:
        found = {row.id: row for row in await conn.execute(select(checkout_sessions).where(
            among(conn, checkout_sessions.c.id,
                  {entry.payload["session_id"] for entry in entries})))}
        invoice_ids = {session.invoice_id for session in found.values() if session.invoice_id}
        invoice_rows = {row.id: row for row in await conn.execute(
            select(invoices).where(among(conn, invoices.c.id, invoice_ids)))
        } if invoice_ids else {}
        # In the order their causes were recorded: the events API lists them in that order.
        for entry in sorted(entries, key=lambda entry: entry.created_at):
            session_id, kind = entry.payload["session_id"], entry.payload["type"]
            session = found.get(session_id)
            if kind not in EVENT_TYPES:
                outcome.failed[entry.id] = ValueError(f"unknown event type {kind!r}")
            elif session is None:
                outcome.failed[entry.id] = LookupError(f"no session {session_id}")
            elif kind == PAID and (session.invoice_id is None
                                   or session.customer_access_url is None):
                outcome.failed[entry.id] = await _not_ready(conn, session_id)
            else:
                invoice = invoice_rows.get(session.invoice_id)
                events[entry.id] = (session, {
                    "id": event_id(entry),
                    "type": kind,
                    "created_at": clock.iso(clock.now()),
                    "data": {
                        "session": sessions.to_object(session, context.settings),
                        "invoice": invoice_service.to_object(invoice) if invoice else None,
                        "customer_access": sessions.customer_access(session),
                    },
                })
    outcome.writes = _deliveries(events, context.settings.outbox_max_attempts)
    return outcome


def event_id(entry: Entry) -> str:
    """Stable per outbox row: a re-run (or a replay) of this row is the same event."""
    return notified_event_id(entry.id)


async def _not_ready(conn: AsyncConnection, session_id: str) -> Exception:
    """Postpone until the earliest retry of the invoice or link rows; fail if one is dead."""
    waiting = (await conn.execute(
        select(outbox_entries.c.kind, outbox_entries.c.status,
               outbox_entries.c.next_attempt_at)
        .where(outbox_entries.c.status.in_(("pending", "running", "dead")),
               outbox_entries.c.kind.in_((INVOICE, ACCESS_LINK)),
               member(outbox_entries.c.payload, "session_id") == session_id))).all()  # indexed
    dead = sorted(row.kind for row in waiting if row.status == "dead")
    if dead:
        return PrerequisiteDead(f"waiting for dead outbox rows: {', '.join(dead)}")
    due = [row.next_attempt_at for row in waiting if row.status == "pending"]
    wait = (min(due) - clock.now()) / timedelta(seconds=1) if due else 0.0
    return NotReady("the invoice or the customer access link is still in flight",
                    retry_in=min(max(wait, 0.05), MAX_WAIT_SECONDS))


def _deliveries(events: dict[str, tuple[Any, dict[str, Any]]],
                max_attempts: int) -> BatchWrites:
    """The events, and a delivery per event and endpoint of its merchant and mode that wants
    its type, with a ``delivery.send`` row if the endpoint is enabled; what exists already (the
    row ran before) is not made again."""

    async def write(conn: AsyncConnection, held: Sequence[Entry]) -> None:
        chosen = [events[entry.id] for entry in held if entry.id in events]
        if not chosen:
            return
        now = clock.now()
        await merchant_events.record(conn, [
            {"merchant_id": session.merchant_id, "mode": session.mode, "session_id": session.id,
             "body": event} for session, event in chosen])
        found = await _endpoints(conn, {session.merchant_id for session, _ in chosen})
        rows = [{"id": new_id("dl"), "endpoint_id": endpoint.id,
                 "merchant_id": session.merchant_id, "mode": session.mode,
                 "event_id": event["id"], "type": event["type"], "session_id": session.id,
                 "body": event, "status": "pending", "attempts": 0, "created_at": now}
                for session, event in chosen
                for endpoint in found.get((session.merchant_id, session.mode), ())
                if accepts(endpoint.enabled_events, event["type"])]
        if not rows:
            return
        enabled = await _enabled(conn, [one for some in found.values() for one in some])
        created = await insert_rows(conn, deliveries, rows, deliveries.c.id,
                                    deliveries.c.session_id, deliveries.c.endpoint_id,
                                    ignore_conflicts=True)
        await enqueue(conn, [(DELIVER, {"delivery_id": row.id, "session_id": row.session_id})
                             for row in created if row.endpoint_id in enabled], now, max_attempts)

    return write


async def _endpoints(conn: AsyncConnection,
                     merchant_ids: set[str]) -> dict[tuple[str, str], list[Any]]:
    """These merchants' endpoints, deleted ones aside, by (merchant, mode)."""
    found: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for endpoint in await conn.execute(
            select(endpoints.c.id, endpoints.c.merchant_id, endpoints.c.mode,
                   endpoints.c.status, endpoints.c.enabled_events)
            .where(among(conn, endpoints.c.merchant_id, merchant_ids),
                   endpoints.c.status != "deleted")):
        found[(endpoint.merchant_id, endpoint.mode)].append(endpoint)
    return found


async def _enabled(conn: AsyncConnection, found: Sequence[Any]) -> set[str]:
    """The enabled endpoints among those read. A disabled one is read again under a share
    lock (PostgreSQL; SQLite has one writer): an update enabling it at this moment then
    either comes first — and it is enabled here — or waits for this transaction, and finds
    the deliveries it must send. Nothing is locked while every endpoint is enabled."""
    enabled = {endpoint.id for endpoint in found if endpoint.status == "enabled"}
    if disabled := [endpoint.id for endpoint in found if endpoint.status != "enabled"]:
        rows = await conn.execute(
            select(endpoints.c.id, endpoints.c.status).where(endpoints.c.id.in_(disabled))
            .with_for_update(read=True))  # the latest committed status, once the lock is ours
        enabled |= {row.id for row in rows if row.status == "enabled"}
    return enabled
