"""The merchant's API key for a paid session's mode, provisioned when it has no active one.

At most one key is ever auto-provisioned per (merchant, mode): the unique partial index on
``api_keys (merchant_id, mode) WHERE provisioned_for IS NOT NULL`` decides every race, and a
conflict means another session (or another worker) provisioned it first. The raw key is kept
only sealed until the session's access page takes it — once, destroying the sealed copy.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.crypto import Sealer
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import api_keys, checkout_sessions
from payhook.effects.context import EffectContext
from payhook.ids import new_id
from payhook.outbox.drain import Writes
from payhook.outbox.store import Entry
from payhook.services.api_keys import generate, stored_form


async def provision_key(context: EffectContext, entry: Entry) -> Writes:
    session_id = entry.payload["session_id"]

    async def write(conn: AsyncConnection) -> None:
        session = (await conn.execute(
            select(checkout_sessions.c.merchant_id, checkout_sessions.c.mode).where(
                checkout_sessions.c.id == session_id,
                checkout_sessions.c.status == "paid"))).one()
        if await _has_active_key(conn, session.merchant_id, session.mode):
            return
        raw = generate(session.mode)
        # A conflict is "already provisioned" (by this session's earlier run or another's).
        await conn.execute(insert_ignoring_conflicts(conn, api_keys).values(
            id=new_id("key"), merchant_id=session.merchant_id, mode=session.mode,
            label=f"provisioned for {session_id}", created_at=clock.now(),
            provisioned_for=session_id, sealed_secret=context.sealer.seal(raw),
            **stored_form(context.hasher, raw)))

    return write


async def _has_active_key(conn: AsyncConnection, merchant_id: str, mode: str) -> bool:
    found = await conn.scalar(select(api_keys.c.id).where(
        api_keys.c.merchant_id == merchant_id, api_keys.c.mode == mode,
        api_keys.c.revoked_at.is_(None)).limit(1))
    return found is not None


@dataclass(frozen=True)
class RevealedKey:
    row: Any
    secret: str | None  # None when the key was revoked before its reveal


async def reveal_once(conn: AsyncConnection, sealer: Sealer, session_id: str) -> RevealedKey | None:
    """Take the key provisioned for this session and destroy its sealed copy, once.

    RETURNING gives the row after the update (the secret already gone), so the sealed value is
    read first and the UPDATE is the compare-and-set: of two concurrent first visits only the
    one whose UPDATE still finds the secret reveals it (on PostgreSQL the other waits for the
    row lock, then no longer matches; SQLite has one writer).
    """
    found = (await conn.execute(select(api_keys.c.id, api_keys.c.sealed_secret).where(
        api_keys.c.provisioned_for == session_id, api_keys.c.sealed_secret.is_not(None))
    )).first()
    if found is None:
        return None
    taken = (await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == found.id, api_keys.c.sealed_secret.is_not(None))
        .values(sealed_secret=None)
        .returning(*api_keys.c))).first()
    if taken is None:
        return None  # a concurrent visit took it
    secret = sealer.open(found.sealed_secret) if taken.revoked_at is None else None
    return RevealedKey(row=taken, secret=secret)
