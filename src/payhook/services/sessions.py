"""Checkout sessions: create, read, list and cancel, always within the caller's merchant and mode.

Another merchant's session, or one of the other mode, is answered exactly like an unknown id.
A crypto session gets its own deposit address when it is created (docs/api.md, "Deposit
addresses"): the next index of the ``deposit_index`` counter, taken in the creating
transaction, and the address derived from ``PAYHOOK_WEB3_XPUB`` at that index.
"""

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.config import Settings
from payhook.db import counters
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.sessions import moving
from payhook.db.tables import checkout_sessions as sessions
from payhook.domain import money, onchain
from payhook.domain.decisions import FAILED, NOTIFY
from payhook.domain.deposits import DepositAccount, payment_uri
from payhook.domain.sessions import FailureReason, Status, payment_status
from payhook.errors import Conflict, InvalidRequest, NotFound
from payhook.ids import new_id
from payhook.outbox.store import enqueue
from payhook.schemas import SessionCreate
from payhook.services.api_keys import Caller


async def create(conn: AsyncConnection, merchant_id: str, mode: str, body: SessionCreate,
                 deposits: DepositAccount | None) -> Any:
    now = clock.now()
    values: dict[str, Any] = {}
    if not money.is_fiat(body.currency):
        values = await _deposit(conn, deposits)
    return (await conn.execute(
        sessions.insert().values(
            id=new_id("cs"), merchant_id=merchant_id, mode=mode, status=Status.CREATED,
            amount=body.amount, currency=body.currency, success_url=body.success_url,
            cancel_url=body.cancel_url, customer_email=body.customer_email,
            customer_name=body.customer_name, metadata=body.metadata, created_at=now,
            updated_at=now, expires_at=now + timedelta(seconds=body.expires_in), **values,
        ).returning(*sessions.c)
    )).one()


async def _deposit(conn: AsyncConnection, deposits: DepositAccount | None) -> dict[str, Any]:
    """The next deposit index and its address. The counter is taken last before the insert:
    other crypto sessions' transactions wait on it until this one commits."""
    if deposits is None:  # the body's validation refuses crypto without a deposit key
        raise InvalidRequest("crypto payments need PAYHOOK_WEB3_XPUB", param="currency")
    index = await counters.take(conn, counters.DEPOSIT_INDEX)
    return {"deposit_index": index, "deposit_address": deposits.address(index)}


async def get(conn: AsyncConnection, caller: Caller, session_id: str) -> Any:
    row = (await conn.execute(select(sessions).where(*_own(caller), sessions.c.id == session_id)
                              )).first()
    if row is None:
        raise NotFound(f"no such checkout session: {session_id}", param="id")
    return row


async def get_public(conn: AsyncConnection, session_id: str) -> Any:
    row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
    if row is None:
        raise NotFound(f"no such checkout session: {session_id}", param="id")
    return row


async def list_sessions(
    conn: AsyncConnection, caller: Caller, page: PageRequest, status: str | None
) -> Page:
    filters = []
    if status is not None:
        if status not in Status.__members__.values():
            raise InvalidRequest(f"status must be one of {', '.join(Status)}", param="status")
        filters.append(sessions.c.status == status)
    return await fetch_page(conn, sessions, page, _own(caller), filters)


async def cancel(conn: AsyncConnection, caller: Caller, session_id: str,
                 max_attempts: int) -> Any:
    """``created``/``pending`` → ``failed``/``canceled`` by compare-and-set, notifying the
    merchant's endpoints of the failure like any other.

    Cancelling a canceled session answers it again (a retried cancel is not an error); any
    other terminal session is a 409.
    """
    canceled = (await conn.execute(
        moving(Status.FAILED, clock.now(), *_own(caller), sessions.c.id == session_id,
               failure_reason=FailureReason.CANCELED)
        .returning(*sessions.c)
    )).first()
    if canceled is not None:
        await enqueue(conn, [(NOTIFY, {"session_id": session_id, "type": FAILED})],
                      canceled.updated_at, max_attempts)
        return canceled
    current = await get(conn, caller, session_id)
    if current.failure_reason == FailureReason.CANCELED:
        return current
    raise Conflict(f"a {current.status} session cannot be canceled", code="session_not_cancelable")


def _own(caller: Caller) -> list[Any]:
    return [sessions.c.merchant_id == caller.merchant_id, sessions.c.mode == caller.mode]


def to_object(row: Any, settings: Settings) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "checkout.session",
        "mode": row.mode,
        "status": row.status,
        "payment_status": payment_status(Status(row.status)),
        "amount": row.amount,
        "currency": row.currency,
        "payment_provider": row.payment_provider,
        "url": f"{settings.public_base_url}/session/{row.id}/status",
        "success_url": row.success_url,
        "cancel_url": row.cancel_url,
        "customer_email": row.customer_email,
        "customer_name": row.customer_name,
        "metadata": row.metadata,
        "failure_reason": row.failure_reason,
        "created_at": clock.iso(row.created_at),
        "expires_at": clock.iso(row.expires_at),
        "paid_at": clock.iso(row.paid_at),
        "invoice_id": row.invoice_id,
        "customer_access": customer_access(row),
        "crypto_payment": crypto_payment(row, settings),
    }


def to_status(row: Any, settings: Settings) -> dict[str, Any]:
    """The public view (the session's hosted ``url``): no customer or merchant data; for a
    crypto session, where to pay and an EIP-681 ``uri`` a wallet opens."""
    payment = crypto_payment(row, settings)
    if payment is not None:
        payment["uri"] = payment_uri(payment["address"], payment["chain_id"], row.amount,
                                     payment["contract"])
    return {
        "session_id": row.id,
        "status": row.status,
        "payment_status": payment_status(Status(row.status)),
        "payment_provider": row.payment_provider,
        "paid_at": clock.iso(row.paid_at),
        "amount": row.amount,
        "currency": row.currency,
        "created_at": clock.iso(row.created_at),
        "expires_at": clock.iso(row.expires_at),
        "crypto_payment": payment,
    }


def crypto_payment(row: Any, settings: Settings) -> dict[str, Any] | None:
    """Where and what to pay on chain: the session's own address, the amount in base units as
    a string (JSON numbers lose precision past 2^53); null for a session without an address."""
    if row.deposit_address is None:
        return None
    return {"chain_id": settings.web3_chain_id, "asset": row.currency,
            "contract": onchain.token_contracts(settings.web3_tokens).get(row.currency),
            "address": row.deposit_address, "amount": str(row.amount)}


def customer_access(row: Any) -> dict[str, Any] | None:
    if row.customer_access_url is None:
        return None
    return {"url": row.customer_access_url,
            "expires_at": clock.iso(row.customer_access_expires_at)}
