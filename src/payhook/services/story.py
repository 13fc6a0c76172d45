"""One payment's whole story, for the console: everything the tables hold about a session, in
time order, and the search that finds a session from whatever an operator has in hand.

The story is read, never kept: provider events (raw bodies included), the transitions the
session's own columns record, every outbox row with its errors, every delivery with each of its
attempts, the merchant events made for it (their bodies exactly as endpoints received them),
e-mails, anomalies, the invoice, the provisioned key and on-chain payments. Outbox rows are
found by the ``session_id`` every payload carries, through an index on that expression.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select, union
from sqlalchemy import text as text_clause
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock, ids, providers
from payhook.db.json_members import member
from payhook.db.tables import (
    ONCHAIN_CHECKS,
    anomalies,
    api_keys,
    checkout_sessions,
    deliveries,
    delivery_attempts,
    invoices,
    merchant_events,
    onchain_payments,
    outbox_entries,
    webhook_endpoints,
    webhook_events,
)
from payhook.errors import NotFound

TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
MAX_QUERY = 255
MAX_FOUND = 50
# Within one instant (one transaction), the cause before its effects: the event, then the
# transition it made, then the work it queued; an event for the merchant before its deliveries.
TIES = {kind: rank for rank, kind in enumerate(("created", "event", "paid", "failed", "outbox",
                                                "merchant_event", "delivery"))}


@dataclass(frozen=True)
class Chapter:
    """One line of the story: when, what kind of thing, the row, and its attempts if any."""

    at: datetime
    kind: str
    row: Any
    attempts: Sequence[Any] = field(default_factory=tuple)


@dataclass(frozen=True)
class Story:
    session: Any
    invoice: Any | None
    key: Any | None
    chapters: list[Chapter]

    @property
    def sending(self) -> dict[str, Any]:
        """Each delivery's outbox row (where its replay or retry is), by delivery id."""
        return {chapter.row.payload["delivery_id"]: chapter.row for chapter in self.chapters
                if chapter.kind == "outbox" and "delivery_id" in chapter.row.payload}


async def find(conn: AsyncConnection, text: str) -> list[Any]:
    """Sessions matching a session id, invoice id, provider event id (ours or the provider's),
    customer e-mail or transaction hash; newest first, at most ``MAX_FOUND``."""
    statement = search(text)
    return [] if statement is None else list(await conn.execute(statement))


def search(text: str) -> Select[Any] | None:
    """The query :func:`find` runs for ``text`` (None: nothing could match)."""
    text = text.strip()
    if not text or len(text) > MAX_QUERY:
        return None
    lookups = _lookups(text)
    matching = (lookups[0] if len(lookups) == 1 else union(*lookups)).subquery()
    return (select(checkout_sessions)
            .where(checkout_sessions.c.id.in_(select(matching.c.id)))
            .order_by(checkout_sessions.c.created_at.desc()).limit(MAX_FOUND))


def _lookups(text: str) -> list[Select[Any]]:
    """A select of session ids per reading of ``text``; an id's prefix says what it is."""
    if ids.has_prefix(text, "cs"):
        return [select(checkout_sessions.c.id.label("id")).where(checkout_sessions.c.id == text)]
    if ids.has_prefix(text, "in"):
        return [select(invoices.c.session_id.label("id")).where(invoices.c.id == text)]
    if TX_HASH.fullmatch(text):
        tx = text.lower()
        return [
            select(onchain_payments.c.session_id.label("id")).where(
                onchain_payments.c.tx_hash == tx),
            select(checkout_sessions.c.id.label("id")).where(
                checkout_sessions.c.provider_reference == tx),
            select(member(outbox_entries.c.payload, "session_id").label("id")).where(
                text_clause(ONCHAIN_CHECKS),  # the partial index's predicate, word for word
                member(outbox_entries.c.payload, "tx_hash") == tx),
        ]
    # The provider named too, so the unique (provider, event_id) index finds it.
    by_event = [select(webhook_events.c.session_id.label("id")).where(
        webhook_events.c.provider.in_(providers.names()), webhook_events.c.event_id == text)]
    if ids.has_prefix(text, "ev"):
        by_event.append(select(webhook_events.c.session_id.label("id")).where(
            webhook_events.c.id == text))
    if "@" in text:
        by_event.append(select(checkout_sessions.c.id.label("id")).where(
            func.lower(checkout_sessions.c.customer_email) == text.lower()))
    return by_event


async def read(conn: AsyncConnection, session_id: str) -> Story:
    session = (await conn.execute(select(checkout_sessions).where(
        checkout_sessions.c.id == session_id))).first()
    if session is None:
        raise NotFound(f"no such checkout session: {session_id}", param="id")
    invoice = (await conn.execute(
        select(invoices).where(invoices.c.session_id == session_id))).first()
    key = (await conn.execute(
        select(*(column for column in api_keys.c if column.key != "sealed_secret"),
               and_(api_keys.c.sealed_secret.is_not(None),
                    api_keys.c.revoked_at.is_(None)).label("waiting"))
        .where(api_keys.c.provisioned_for == session_id))).first()
    chapters = [*_transitions(session), *await _records(conn, session)]
    if invoice is not None:
        chapters.append(Chapter(clock.as_utc(invoice.created_at), "invoice", invoice))
    if key is not None:
        chapters.append(Chapter(clock.as_utc(key.created_at), "api_key", key))
    chapters.sort(key=lambda chapter: (chapter.at, TIES.get(chapter.kind, len(TIES))))
    return Story(session=session, invoice=invoice, key=key, chapters=chapters)


def _transitions(session: Any) -> list[Chapter]:
    """What the session's own columns record of its life (each status change is also the
    provider event or on-chain payment that made it, shown beside it)."""
    told = [Chapter(clock.as_utc(session.created_at), "created", session)]
    if session.paid_at is not None:
        told.append(Chapter(clock.as_utc(session.paid_at), "paid", session))
    if session.status == "failed":
        told.append(Chapter(clock.as_utc(session.updated_at), "failed", session))
    if session.email_sent_at is not None:
        told.append(Chapter(clock.as_utc(session.email_sent_at), "email_sent", session))
    return told


def queries(session_id: str) -> dict[str, Select[Any]]:
    """What a story reads by the session's id, each through an index on it (a test EXPLAINs
    them): provider events, anomalies, outbox rows (by the ``session_id`` their payloads
    carry), on-chain payments, the merchant events made and their deliveries."""
    return {
        "event": select(webhook_events).where(webhook_events.c.session_id == session_id),
        "anomaly": select(anomalies).where(anomalies.c.session_id == session_id),
        "outbox": select(outbox_entries).where(
            member(outbox_entries.c.payload, "session_id") == session_id),
        "onchain": select(onchain_payments).where(onchain_payments.c.session_id == session_id),
        "merchant_event": select(merchant_events).where(
            merchant_events.c.session_id == session_id),
        "delivery": select(deliveries, webhook_endpoints.c.url.label("endpoint_url"),
                           webhook_endpoints.c.status.label("endpoint_status"),
                           webhook_endpoints.c.disabled_reason)
        .join(webhook_endpoints, webhook_endpoints.c.id == deliveries.c.endpoint_id)
        .where(deliveries.c.session_id == session_id),
    }


async def _records(conn: AsyncConnection, session: Any) -> list[Chapter]:
    chapters = []
    for kind, statement in queries(session.id).items():
        rows = list(await conn.execute(statement))
        attempts = await _attempts(conn, rows) if kind == "delivery" else {}
        chapters += [Chapter(clock.as_utc(row.created_at), kind, row, attempts.get(row.id, ()))
                     for row in rows]
    return chapters


async def _attempts(conn: AsyncConnection, rows: list[Any]) -> dict[str, list[Any]]:
    """Each delivery's attempts, oldest first, in one query."""
    attempts: dict[str, list[Any]] = {row.id: [] for row in rows}
    if attempts:
        for attempt in await conn.execute(
                select(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(attempts))
                .order_by(delivery_attempts.c.attempted_at, delivery_attempts.c.id)):
            attempts[attempt.delivery_id].append(attempt)
    return attempts
