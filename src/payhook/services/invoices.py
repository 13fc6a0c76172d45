"""Invoices as merchants read them: the caller's merchant and mode only."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import invoices
from payhook.errors import NotFound
from payhook.services.api_keys import Caller


async def get(conn: AsyncConnection, caller: Caller, invoice_id: str) -> Any:
    row = (await conn.execute(
        select(invoices).where(*_own(caller), invoices.c.id == invoice_id))).first()
    if row is None:
        raise NotFound(f"no such invoice: {invoice_id}", param="id")
    return row


async def list_invoices(conn: AsyncConnection, caller: Caller, page: PageRequest) -> Page:
    return await fetch_page(conn, invoices, page, _own(caller))


def _own(caller: Caller) -> list[Any]:
    return [invoices.c.merchant_id == caller.merchant_id, invoices.c.mode == caller.mode]


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
