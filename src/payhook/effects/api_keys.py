"""The merchant's API key for a paid session's mode, provisioned when it has no active one.

At most one key is ever auto-provisioned per (merchant, mode): the unique partial index on
``api_keys (merchant_id, mode) WHERE provisioned_for IS NOT NULL`` decides every race, and a
conflict means another session (or another worker) provisioned it first. The raw key is kept
only sealed until the customer reveals it on the session's access page (a POST, never a GET) —
once, destroying the sealed copy.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.crypto import Sealer, Unsealable
from payhook.db.statements import insert_ignoring_conflicts, paid_sessions
from payhook.db.tables import api_keys, checkout_sessions
from payhook.effects.context import EffectContext
from payhook.errors import Conflict
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
                api_keys.c.merchant_id.in_({merchant for merchant, _ in first}),
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


@dataclass(frozen=True)
class RevealedKey:
    row: Any
    secret: str


async def provisioned_for(conn: AsyncConnection, session_id: str) -> Any | None:
    """The key provisioned for this session, if any, with ``waiting``: whether its raw value
    still waits to be revealed. The sealed value itself is not read here."""
    waiting = and_(api_keys.c.sealed_secret.is_not(None), api_keys.c.revoked_at.is_(None))
    return (await conn.execute(
        select(*(column for column in api_keys.c if column.key != "sealed_secret"),
               waiting.label("waiting"))
        .where(api_keys.c.provisioned_for == session_id))).first()


async def reveal_once(conn: AsyncConnection, sealer: Sealer, session_id: str) -> RevealedKey:
    """Take the key provisioned for this session and destroy its sealed copy, once; a
    :class:`Conflict` when there is none, or it was revealed or revoked already.

    RETURNING gives the row after the update (the secret already gone), so the sealed value is
    read first and the UPDATE is the compare-and-set: of two concurrent reveals only the one
    whose UPDATE still finds the secret reveals it (on PostgreSQL the other waits for the row
    lock, then no longer matches; SQLite has one writer).
    """
    found = (await conn.execute(
        select(api_keys.c.id, api_keys.c.sealed_secret, api_keys.c.revoked_at)
        .where(api_keys.c.provisioned_for == session_id))).first()
    if found is None:
        raise Conflict("no API key was provisioned for this session", code="no_api_key")
    taken = (await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == found.id, api_keys.c.sealed_secret.is_not(None),
               api_keys.c.revoked_at.is_(None))
        .values(sealed_secret=None)
        .returning(*api_keys.c))).first()
    if taken is None:
        if found.revoked_at is not None:
            raise Conflict("this API key was revoked", code="api_key_revoked")
        raise Conflict("this API key was already revealed: it is shown only once",
                       code="api_key_already_revealed")
    try:
        secret = sealer.open(found.sealed_secret)
    except Unsealable:  # raised inside the caller's transaction: the sealed copy stays
        raise Conflict("this API key cannot be opened any more (the service's secret key "
                       "changed); an operator can issue the merchant a new key",
                       code="api_key_unavailable") from None
    return RevealedKey(row=taken, secret=secret)
