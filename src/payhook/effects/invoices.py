"""Exactly one invoice per paid session: the unique ``session_id`` makes a re-run a no-op."""

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import checkout_sessions, invoices
from payhook.effects.context import EffectContext
from payhook.ids import new_id
from payhook.outbox.drain import Writes
from payhook.outbox.store import Entry


async def create_invoice(_context: EffectContext, entry: Entry) -> Writes:
    session_id = entry.payload["session_id"]

    async def write(conn: AsyncConnection) -> None:
        session = (await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id == session_id, checkout_sessions.c.status == "paid"))).one()
        invoice_id = new_id("in")
        created = await conn.scalar(
            insert_ignoring_conflicts(conn, invoices).values(
                id=invoice_id, session_id=session_id, merchant_id=session.merchant_id,
                mode=session.mode, amount=session.amount, currency=session.currency,
                payment_provider=session.payment_provider,
                provider_reference=session.provider_reference, created_at=clock.now(),
            ).returning(invoices.c.id))
        if created is not None:
            await conn.execute(update(checkout_sessions)
                               .where(checkout_sessions.c.id == session_id)
                               .values(invoice_id=invoice_id, updated_at=clock.now()))

    return write


def to_object(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "invoice",
        "session_id": row.session_id,
        "amount": row.amount,
        "currency": row.currency,
        "mode": row.mode,
        "status": "paid",
        "payment_provider": row.payment_provider,
        "provider_reference": row.provider_reference,
        "created_at": clock.iso(row.created_at),
    }
