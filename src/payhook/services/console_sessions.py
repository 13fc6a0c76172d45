"""Console sign-out that holds: a signed-out cookie's nonce is kept until the cookie would have
expired, and a cookie whose nonce is kept is refused — so a copy of the cookie (a shared
machine, a stolen one) stops working at sign-out, not eight hours later."""

from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import console_sign_outs


async def sign_out(conn: AsyncConnection, nonce: str, expires_at: datetime,
                   now: datetime) -> None:
    """Refuse this cookie from now on; forget sign-outs whose cookies have expired anyway."""
    await conn.execute(delete(console_sign_outs).where(console_sign_outs.c.expires_at <= now))
    await conn.execute(insert_ignoring_conflicts(conn, console_sign_outs).values(
        nonce=nonce, expires_at=expires_at))


async def signed_out(conn: AsyncConnection, nonce: str) -> bool:
    return bool(await conn.scalar(select(exists().where(console_sign_outs.c.nonce == nonce))))
