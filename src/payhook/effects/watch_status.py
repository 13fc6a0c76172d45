"""What an operator sees of the chain watcher: ``payhook web3 status`` and ``/readyz``'s
``web3`` detail, one document for both.

``status`` is ``ok``, ``unreachable`` (the node did not answer within
:data:`NODE_TIMEOUT_SECONDS`) or ``wrong_chain`` (it serves another chain than
``PAYHOOK_WEB3_CHAIN_ID``: no check runs and nothing is watched). An error's text is redacted:
a node's URL often carries an API key, and transport errors quote it.
"""

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payhook import clock
from payhook.config import Settings
from payhook.db.engine import reading
from payhook.db.tables import chain_cursors
from payhook.effects.chain import Chain
from payhook.effects.watch import LATE_GRACE, count_open
from payhook.redaction import describe

NODE_TIMEOUT_SECONDS = 3.0
OK, UNREACHABLE, WRONG_CHAIN = "ok", "unreachable", "wrong_chain"


async def report(engine: AsyncEngine, chain: Chain, settings: Settings) -> dict[str, Any]:
    """The node as it answers now, and the watcher as the database shows it."""
    async with reading(engine) as conn:
        cursor = (await conn.execute(select(chain_cursors).where(
            chain_cursors.c.chain_id == settings.web3_chain_id))).first()
        watched = await count_open(conn, clock.now() - LATE_GRACE)
    document: dict[str, Any] = {
        "status": OK, "chain_id": settings.web3_chain_id, "served_chain_id": None,
        "head": None, "confirmations": settings.web3_confirmations,
        "cursor": None if cursor is None else {
            "block_number": cursor.block_number, "block_hash": cursor.block_hash,
            "updated_at": clock.iso(clock.as_utc(cursor.updated_at))},
        "behind": None, "watched_addresses": watched}
    try:
        served, head = await asyncio.wait_for(_ask(chain), NODE_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any transport error: the node is unreachable
        document.update(status=UNREACHABLE, error=describe(error))
        return document
    document.update(served_chain_id=served, head=head,
                    status=OK if served == settings.web3_chain_id else WRONG_CHAIN)
    if cursor is not None:
        document["behind"] = max(0, head - cursor.block_number)
    return document


async def _ask(chain: Chain) -> tuple[int, int]:
    # One after the other: web3.py's first requests, made side by side, each open an HTTP
    # session of their own, and all but one are left unclosed.
    return await chain.served_chain_id(), await chain.head()
