"""``merchant.notify``: one event per session outcome, one delivery per enabled endpoint.

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
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import checkout_sessions, deliveries, invoices, outbox_entries
from payhook.db.tables import webhook_endpoints as endpoints
from payhook.domain.decisions import ACCESS_LINK, FAILED, INVOICE, PAID
from payhook.effects.context import EffectContext
from payhook.effects.deliveries import DELIVER
from payhook.ids import new_id
from payhook.outbox.drain import BatchWrites, NotReady, Outcome
from payhook.outbox.store import Entry, enqueue
from payhook.services import invoices as invoice_service
from payhook.services import sessions

EVENT_TYPES = (PAID, FAILED)
MAX_WAIT_SECONDS = 30.0


class PrerequisiteDead(Exception):
    """A row this notification waits for is dead: retry only after an operator replays it."""


async def notify(context: EffectContext, entries: Sequence[Entry]) -> Outcome:
    outcome = Outcome()
    events: dict[str, tuple[Any, dict[str, Any]]] = {}  # entry id -> (session, event)
    async with reading(context.engine) as conn:
        found = {row.id: row for row in await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id.in_({entry.payload["session_id"] for entry in entries})))}
        invoice_ids = {session.invoice_id for session in found.values() if session.invoice_id}
        invoice_rows = {row.id: row for row in await conn.execute(
            select(invoices).where(invoices.c.id.in_(invoice_ids)))} if invoice_ids else {}
        for entry in entries:
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
    return "evt_" + entry.id.split("_", 1)[1]


async def _not_ready(conn: AsyncConnection, session_id: str) -> Exception:
    """Postpone until the earliest retry of the invoice or link rows; fail if one is dead."""
    waiting = (await conn.execute(
        select(outbox_entries.c.kind, outbox_entries.c.status,
               outbox_entries.c.next_attempt_at)
        .where(outbox_entries.c.status.in_(("pending", "running", "dead")),
               outbox_entries.c.kind.in_((INVOICE, ACCESS_LINK)),
               outbox_entries.c.payload["session_id"].as_string() == session_id))).all()
    dead = sorted(row.kind for row in waiting if row.status == "dead")
    if dead:
        return PrerequisiteDead(f"waiting for dead outbox rows: {', '.join(dead)}")
    due = [row.next_attempt_at for row in waiting if row.status == "pending"]
    wait = (min(due) - clock.now()) / timedelta(seconds=1) if due else 0.0
    return NotReady("the invoice or the customer access link is still in flight",
                    retry_in=min(max(wait, 0.05), MAX_WAIT_SECONDS))


def _deliveries(events: dict[str, tuple[Any, dict[str, Any]]],
                max_attempts: int) -> BatchWrites:
    """A delivery (and its ``delivery.send`` row) per event and enabled endpoint of its
    merchant and mode; an event's deliveries that exist already are not made again."""

    async def write(conn: AsyncConnection, held: Sequence[Entry]) -> None:
        chosen = [events[entry.id] for entry in held if entry.id in events]
        if not chosen:
            return
        enabled: dict[tuple[str, str], list[str]] = defaultdict(list)
        for endpoint in await conn.execute(
                select(endpoints.c.id, endpoints.c.merchant_id, endpoints.c.mode).where(
                    endpoints.c.merchant_id.in_({session.merchant_id for session, _ in chosen}),
                    endpoints.c.status == "enabled")):
            enabled[(endpoint.merchant_id, endpoint.mode)].append(endpoint.id)
        now = clock.now()
        rows = [{"id": new_id("dl"), "endpoint_id": endpoint_id, "event_id": event["id"],
                 "type": event["type"], "session_id": session.id, "body": event,
                 "status": "pending", "attempts": 0, "created_at": now}
                for session, event in chosen
                for endpoint_id in enabled[(session.merchant_id, session.mode)]]
        if not rows:
            return
        created = (await conn.execute(
            insert_ignoring_conflicts(conn, deliveries).returning(deliveries.c.id,
                                                                  deliveries.c.session_id),
            rows)).all()
        await enqueue(conn, [(DELIVER, {"delivery_id": row.id, "session_id": row.session_id})
                             for row in created], now, max_attempts)

    return write
