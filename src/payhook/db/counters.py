"""Named counters moved by compare-and-set, in the caller's transaction.

``UPDATE … SET value = value + 1 RETURNING value`` takes the row's lock until the transaction
ends (SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway): concurrent transactions get one
value each, in order, and a transaction that rolls back gives its value back, so the values
that were ever used are contiguous and none is used twice.
"""

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.tables import counters

DEPOSIT_INDEX = "deposit_index"  # seeded at 0 by migration 0006


async def take(conn: AsyncConnection, name: str) -> int:
    """The counter's next value, from 0; call it late in the transaction, since every other
    transaction taking this counter waits for this one to end."""
    value = await conn.scalar(update(counters).where(counters.c.name == name)
                              .values(value=counters.c.value + 1).returning(counters.c.value))
    if value is None:
        raise LookupError(f"no counter {name!r} (run the migrations)")
    return int(value) - 1
