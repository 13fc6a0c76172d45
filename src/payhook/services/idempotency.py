"""``Idempotency-Key``: the same key and body answer the first answer again.

The key row is inserted in the same transaction as the work, with ``ON CONFLICT DO NOTHING``.
On PostgreSQL a concurrent request with the same key waits on the unique index until the first
commits, then finds nothing inserted: its own work is rolled back and the stored answer is
returned. On SQLite ``BEGIN IMMEDIATE`` already serialises writers. Either way, one session.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payhook import clock
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import idempotency_keys as keys
from payhook.errors import Conflict, InvalidRequest

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class _Raced(Exception):
    """Another request stored this key first; our transaction must roll back."""


def fingerprint(document: dict[str, Any]) -> str:
    """The request's identity: key order and whitespace do not make another body."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1 to 255 printable characters",
                             param="Idempotency-Key")
    return key


async def run_once(
    engine: AsyncEngine,
    scope: tuple[str, str],
    key: str,
    request_hash: str,
    work: Callable[[AsyncConnection], Awaitable[Answer]],
) -> Answer:
    """Run ``work`` in a transaction unless (merchant, mode, key) already has an answer."""
    merchant_id, mode = scope
    try:
        async with engine.begin() as conn:
            stored = await _stored(conn, merchant_id, mode, key)
            if stored is not None:
                return _replay(stored, request_hash)
            answer = await work(conn)
            inserted = await conn.scalar(
                insert_ignoring_conflicts(conn, keys).values(
                    merchant_id=merchant_id, mode=mode, key=key, request_hash=request_hash,
                    response_status=answer.status, response_body=answer.body,
                    created_at=clock.now(),
                ).returning(keys.c.key)
            )
            if inserted is None:
                raise _Raced
            return answer
    except _Raced:
        pass
    async with engine.begin() as conn:
        stored = await _stored(conn, merchant_id, mode, key)
    assert stored is not None, "a conflicting idempotency key vanished"
    return _replay(stored, request_hash)


async def _stored(conn: AsyncConnection, merchant_id: str, mode: str, key: str) -> Any:
    return (await conn.execute(select(keys).where(
        keys.c.merchant_id == merchant_id, keys.c.mode == mode, keys.c.key == key))).first()


def _replay(stored: Any, request_hash: str) -> Answer:
    if stored.request_hash != request_hash:
        raise Conflict("this Idempotency-Key was used with a different request body",
                       param="Idempotency-Key", code="idempotency_key_reused")
    return Answer(status=stored.response_status, body=stored.response_body)
