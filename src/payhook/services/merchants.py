"""Merchants: created by operators (admin API or CLI), each with a first test key; more keys
from operators too, for a merchant that lost its own."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.tables import merchants
from payhook.errors import NotFound
from payhook.ids import new_id
from payhook.services import api_keys
from payhook.services.api_keys import IssuedKey, KeyHasher


@dataclass(frozen=True)
class NewMerchant:
    row: Any
    key: IssuedKey


async def create(conn: AsyncConnection, hasher: KeyHasher, name: str) -> NewMerchant:
    row = (await conn.execute(
        merchants.insert()
        .values(id=new_id("mer"), name=name, created_at=clock.now())
        .returning(*merchants.c)
    )).one()
    key = await api_keys.issue(conn, hasher, row.id, "test", label="first test key")
    return NewMerchant(row=row, key=key)


async def issue_key(conn: AsyncConnection, hasher: KeyHasher, merchant_id: str, mode: str,
                    label: str | None) -> IssuedKey:
    """An operator's new key for a merchant (one that lost its key): 404 for an unknown one."""
    if not await exists(conn, merchant_id):
        raise NotFound(f"no such merchant: {merchant_id}", param="id")
    return await api_keys.issue(conn, hasher, merchant_id, mode, label)


async def exists(conn: AsyncConnection, merchant_id: str) -> bool:
    found = await conn.scalar(select(merchants.c.id).where(merchants.c.id == merchant_id))
    return found is not None


def to_object(created: NewMerchant) -> dict[str, Any]:
    return {
        "id": created.row.id,
        "object": "merchant",
        "name": created.row.name,
        "created_at": clock.iso(created.row.created_at),
        "api_key": api_keys.to_object(created.key.row, secret=created.key.secret),
    }
