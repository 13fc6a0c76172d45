"""The merchant's API key for a paid session's mode, provisioned when it has no active one.

At most one key is ever auto-provisioned per (merchant, mode): the unique partial index on
``api_keys (merchant_id, mode) WHERE provisioned_for IS NOT NULL`` decides every race, and a
conflict means another session (or another worker) provisioned it first. The raw key is kept
only sealed until the customer reveals it on the session's access page (a POST, never a GET) —
once, destroying the sealed copy (:func:`payhook.services.access.reveal`).
"""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.statements import among, insert_ignoring_conflicts, paid_sessions
from payhook.db.tables import api_keys, checkout_sessions
from payhook.effects.context import EffectContext
from payhook.ids import new_id
from payhook.outbox.drain import Outcome
from payhook.outbox.store import Entry
from payhook.services.api_keys import generate, stored_form


async def provision_keys(context: EffectContext, _entries: Sequence[Entry]) -> Outcome:
    """For each (merchant, mode) of the batch's sessions with no active key: one key, labelled
    for the first of its sessions. Everything happens in the writes."""

    async def write(conn: AsyncConnection, held: Sequence[Entry]) -> None:
        paid = await paid_sessions(conn, (entry.payload["session_id"] for entry in held),
                                   checkout_sessions.c.merchant_id, checkout_sessions.c.mode)
        first: dict[tuple[str, str], str] = {}
        for session in paid.values():
            first.setdefault((session.merchant_id, session.mode), session.id)
        active = {(key.merchant_id, key.mode) for key in await conn.execute(
            select(api_keys.c.merchant_id, api_keys.c.mode).distinct().where(
                among(conn, api_keys.c.merchant_id, {merchant for merchant, _ in first}),
                api_keys.c.revoked_at.is_(None)))}
        now = clock.now()
        wanted = [(merchant, mode, session_id) for (merchant, mode), session_id in first.items()
                  if (merchant, mode) not in active]
        # A conflict is "already provisioned" (by this session's earlier run or another's).
        for merchant, mode, session_id in wanted:
            raw = generate(mode)
            await conn.execute(insert_ignoring_conflicts(conn, api_keys).values(
                id=new_id("key"), merchant_id=merchant, mode=mode,
                label=f"provisioned for {session_id}", created_at=now,
                provisioned_for=session_id, sealed_secret=context.sealer.seal(raw),
                **stored_form(context.hasher, raw)))

    return Outcome(write)
