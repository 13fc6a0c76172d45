"""The one way a checkout session's status changes: a compare-and-set ``UPDATE``.

A move to ``to`` happens only from one of :func:`~payhook.domain.sessions.sources` ``(to)``,
sets ``updated_at`` with the status, and may set the fields of :data:`MOVE_FIELDS` and add
conditions. Every status write calls :func:`move` or :func:`moving` — both webhook writers, cancel,
expiry and the on-chain payment; PostgreSQL's one-statement writer renders its ``UPDATE`` from
:func:`postgres_move`, so the two spell one move.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.statements import postgres_type
from payhook.db.tables import checkout_sessions as sessions
from payhook.domain.decisions import SessionView
from payhook.domain.sessions import Status, sources

# What a move may set beside status and updated_at.
MOVE_FIELDS = ("payment_provider", "paid_at", "provider_reference", "failure_reason")
# What a decision reads of the session before a move.
VIEW_COLUMNS: Sequence[str] = ("status", "amount", "currency", "mode", "expires_at",
                               "provider_reference")


async def view(conn: AsyncConnection, session_id: str, *, lock: bool = False
               ) -> SessionView | None:
    """The session as a decision sees it; ``lock`` holds its row (PostgreSQL) until the move."""
    query = select(*(sessions.c[name] for name in VIEW_COLUMNS)).where(sessions.c.id == session_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return session_view(row._mapping if row else None)


def session_view(row: Mapping[Any, Any] | None) -> SessionView | None:
    if row is None:
        return None
    return SessionView(status=Status(row["status"]), amount=int(row["amount"]),
                       currency=row["currency"], mode=row["mode"],
                       expires_at=clock.as_utc(row["expires_at"]),
                       provider_reference=row["provider_reference"])


def moving(to: Status, now: datetime, *where: Any, **fields: Any) -> Update:
    """The compare-and-set of the sessions ``where`` selects (add ``.returning``)."""
    if unknown := set(fields) - set(MOVE_FIELDS):
        raise TypeError(f"a move sets no {', '.join(sorted(unknown))}")
    return (update(sessions).where(sessions.c.status.in_(sources(to)), *where)
            .values(status=to, updated_at=now, **fields))


async def move(conn: AsyncConnection, session_id: str, to: Status, *where: Any,
               now: datetime, **fields: Any) -> bool:
    """Move one session to ``to``; False when its status (or ``where``) does not allow it."""
    moved = await conn.scalar(moving(to, now, sessions.c.id == session_id, *where, **fields)
                              .returning(sessions.c.id))
    return moved is not None


def postgres_move(param: Callable[[str], str], where: str) -> str:
    """:func:`moving` as PostgreSQL text, for a statement of raw SQL: ``param(name)`` spells the
    parameter of ``to``, ``sources`` (an array), ``now`` and each field of :data:`MOVE_FIELDS`.
    A field whose parameter is NULL keeps its value (a move sets fields, never clears one)."""
    kept = ", ".join(f"{name} = COALESCE({param(name)}::{postgres_type(sessions.c[name])}, {name})"
                     for name in MOVE_FIELDS)
    return (f"UPDATE checkout_sessions SET status = {param('to')}::text, "
            f"updated_at = {param('now')}, {kept} "
            f"WHERE status = ANY({param('sources')}::text[]) AND {where} RETURNING id")
