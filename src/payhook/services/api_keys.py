"""API keys: ``sk_test_…`` / ``sk_live_…``, stored as a keyed hash plus a display prefix."""

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock, crypto
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import api_keys, merchants
from payhook.errors import NotFound, Unauthorized
from payhook.ids import ALPHABET, new_id

_SECRET_CHARS = 40
_PREFIX_CHARS = 12
_HASH_PURPOSE = "api-key-hash"


@dataclass(frozen=True)
class Caller:
    """Who a merchant request acts for: the key's merchant and the key's mode."""

    merchant_id: str
    mode: str
    key_id: str


@dataclass(frozen=True)
class IssuedKey:
    row: Any
    secret: str  # shown once, never stored


class KeyHasher:
    def __init__(self, secret_key: str):
        self._key = crypto.derive_key(secret_key, _HASH_PURPOSE)

    def hash(self, raw: str) -> str:
        return crypto.keyed_hash(self._key, raw)


def generate(mode: str) -> str:
    """A raw key: the mode, then 40 base-62 characters (238 random bits)."""
    return f"sk_{mode}_{''.join(secrets.choice(ALPHABET) for _ in range(_SECRET_CHARS))}"


def mode_of(raw: str) -> str | None:
    for mode in ("test", "live"):
        if raw.startswith(f"sk_{mode}_") and len(raw) == len(f"sk_{mode}_") + _SECRET_CHARS:
            return mode
    return None


def stored_form(hasher: KeyHasher, raw: str) -> dict[str, str]:
    """How a key is kept: its keyed hash and a short display prefix, never the key itself."""
    return {"key_hash": hasher.hash(raw), "prefix": raw[:_PREFIX_CHARS]}


async def issue(
    conn: AsyncConnection, hasher: KeyHasher, merchant_id: str, mode: str, label: str | None
) -> IssuedKey:
    raw = generate(mode)
    row = (await conn.execute(
        api_keys.insert().values(
            id=new_id("key"), merchant_id=merchant_id, mode=mode, label=label,
            created_at=clock.now(), **stored_form(hasher, raw),
        ).returning(*api_keys.c)
    )).one()
    return IssuedKey(row=row, secret=raw)


async def authenticate(conn: AsyncConnection, hasher: KeyHasher, raw: str) -> Caller:
    """The caller behind a raw key; 401 for unknown, malformed or revoked keys alike."""
    if mode_of(raw) is None:
        raise Unauthorized("invalid API key")
    row = (await conn.execute(
        select(api_keys.c.id, api_keys.c.merchant_id, api_keys.c.mode)
        .join(merchants, merchants.c.id == api_keys.c.merchant_id)
        .where(api_keys.c.key_hash == hasher.hash(raw), api_keys.c.revoked_at.is_(None))
    )).first()
    if row is None:
        raise Unauthorized("invalid API key")
    return Caller(merchant_id=row.merchant_id, mode=row.mode, key_id=row.id)


async def list_keys(conn: AsyncConnection, caller: Caller, page: PageRequest) -> Page:
    return await fetch_page(conn, api_keys, page, _own(caller))


async def revoke(conn: AsyncConnection, caller: Caller, key_id: str) -> Any:
    """Revoke one of the caller's keys; revoking a revoked key answers it again."""
    revoked = (await conn.execute(
        update(api_keys)
        .where(*_own(caller), api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=clock.now(), sealed_secret=None)  # never reveal a revoked key
        .returning(*api_keys.c)
    )).first()
    if revoked is not None:
        return revoked
    existing = (await conn.execute(
        select(api_keys).where(*_own(caller), api_keys.c.id == key_id))).first()
    if existing is None:
        raise NotFound(f"no such API key: {key_id}", param="id")
    return existing


def _own(caller: Caller) -> list[Any]:
    return [api_keys.c.merchant_id == caller.merchant_id, api_keys.c.mode == caller.mode]


def to_object(row: Any, secret: str | None = None) -> dict[str, Any]:
    document = {
        "id": row.id,
        "object": "api_key",
        "mode": row.mode,
        "prefix": row.prefix,
        "label": row.label,
        "status": "revoked" if row.revoked_at is not None else "active",
        "created_at": clock.iso(row.created_at),
        "revoked_at": clock.iso(row.revoked_at),
    }
    if secret is not None:
        document["secret"] = secret
    return document
