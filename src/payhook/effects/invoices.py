"""Exactly one invoice per paid session: the unique ``session_id`` makes a re-run a no-op."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.statements import insert_rows, paid_sessions, update_each
from payhook.db.tables import checkout_sessions, invoices
from payhook.effects.context import EffectContext
from payhook.ids import new_id
from payhook.outbox.drain import Outcome
from payhook.outbox.store import Entry

# What an invoice copies from its session.
INVOICED = (checkout_sessions.c.merchant_id, checkout_sessions.c.mode, checkout_sessions.c.amount,
            checkout_sessions.c.currency, checkout_sessions.c.payment_provider,
            checkout_sessions.c.provider_reference)


async def create_invoices(_context: EffectContext, _entries: Sequence[Entry]) -> Outcome:
    """Everything happens in the writes: one INSERT for the batch, conflicts ignored."""

    async def write(conn: AsyncConnection, held: Sequence[Entry]) -> None:
        paid = await paid_sessions(conn, (entry.payload["session_id"] for entry in held),
                                   *INVOICED)
        now = clock.now()
        created = await insert_rows(conn, invoices, [
            {"id": new_id("in"), "session_id": session.id, "merchant_id": session.merchant_id,
             "mode": session.mode, "amount": session.amount, "currency": session.currency,
             "payment_provider": session.payment_provider,
             "provider_reference": session.provider_reference, "created_at": now}
            for session in paid.values()], invoices.c.id, invoices.c.session_id,
            ignore_conflicts=True)
        await update_each(conn, checkout_sessions,
                          [{"id": row.session_id, "invoice_id": row.id} for row in created],
                          updated_at=now)

    return Outcome(write)
