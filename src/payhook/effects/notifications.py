"""``merchant.notify``: one event per session outcome, one delivery per enabled endpoint.

The ``checkout.session.paid`` event carries the session's invoice and its customer access link,
which sibling outbox rows make: until both exist the row is postponed (``NotReady``), or fails
like any error once one of those rows is dead, so that it does not wait forever. The event id
derives from the outbox row, so a re-run builds the same event, and the unique
(endpoint_id, event_id) makes each delivery once; each new delivery gets its own
``delivery.send`` row, retried on its own.
"""

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
from payhook.effects import invoices as invoice_effect
from payhook.effects.context import EffectContext
from payhook.effects.deliveries import DELIVER
from payhook.ids import new_id
from payhook.outbox.drain import NotReady, Writes
from payhook.outbox.store import Entry, new_entry
from payhook.services import sessions

EVENT_TYPES = (PAID, FAILED)
MAX_WAIT_SECONDS = 30.0


class PrerequisiteDead(Exception):
    """A row this notification waits for is dead: retry only after an operator replays it."""


async def notify(context: EffectContext, entry: Entry) -> Writes:
    session_id, kind = entry.payload["session_id"], entry.payload["type"]
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    async with reading(context.engine) as conn:
        session = (await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id == session_id))).one()
        if kind == PAID and (session.invoice_id is None or session.customer_access_url is None):
            raise await _not_ready(conn, session_id)
        invoice = None if session.invoice_id is None else (await conn.execute(
            select(invoices).where(invoices.c.id == session.invoice_id))).one()
    event = {
        "id": event_id(entry),
        "type": kind,
        "created_at": clock.iso(clock.now()),
        "data": {
            "session": sessions.to_object(session, context.settings.public_base_url),
            "invoice": invoice_effect.to_object(invoice) if invoice is not None else None,
            "customer_access": sessions.customer_access(session),
        },
    }
    return _deliveries(session, event, context.settings.outbox_max_attempts)


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


def _deliveries(session: Any, event: dict[str, Any], max_attempts: int) -> Writes:
    async def write(conn: AsyncConnection) -> None:
        enabled = (await conn.execute(select(endpoints.c.id).where(
            endpoints.c.merchant_id == session.merchant_id, endpoints.c.mode == session.mode,
            endpoints.c.status == "enabled"))).scalars().all()
        if not enabled:
            return
        now = clock.now()
        created = (await conn.execute(
            insert_ignoring_conflicts(conn, deliveries).values([
                {"id": new_id("dl"), "endpoint_id": endpoint_id, "event_id": event["id"],
                 "type": event["type"], "session_id": session.id, "body": event,
                 "status": "pending", "attempts": 0, "created_at": now}
                for endpoint_id in enabled])
            .returning(deliveries.c.id))).scalars().all()
        if created:
            await conn.execute(outbox_entries.insert(), [
                new_entry(DELIVER, {"delivery_id": delivery_id, "session_id": session.id},
                          now, max_attempts)
                for delivery_id in created])

    return write
