"""The worker watches the chain for payments to open sessions' deposit addresses, so that a
payment is found with no notice at all (docs/api.md, "Deposit addresses").

A tick asks the node for its head — the one call an idle tick makes — and, while the stored
cursor is behind it, reads the next step of blocks (:mod:`payhook.domain.watching`): each
block with its transactions when ``eth`` sessions are open (else only the step's first and last
headers, for the hashes), and one ``eth_getLogs`` for the configured tokens' ``Transfer`` logs
to the open token sessions' addresses. What costs calls is blocks, never sessions. Each find
queues an ``onchain.check`` for (session, transaction), the payload a Web3 notice makes, so a
notice and the watcher finding one payment make one check (the outbox dedup key); the check
judges it. The finds and the new cursor commit in one transaction, the cursor moved by
compare-and-set on the block it was read from: a watcher killed mid-step reads that step again,
and of two watchers reading one step, one commits it and the other nothing.

*Open* is a session with a deposit address that is not paid and whose expiry is less than
:data:`LATE_GRACE` ago: a payment arriving after the session ended is still checked, and left
to operators as an anomaly. A step whose first block is not the child of the cursor's block shows a
reorganisation below the cursor: the cursor steps back (``domain.watching.rewind_to``) and the
blocks are read again; a check still at work is not queued twice, and a transaction already
paid to that session is not checked again.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payhook import clock
from payhook.config import Settings
from payhook.db.engine import reading
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import chain_cursors, checkout_sessions, onchain_payments
from payhook.domain import onchain, watching
from payhook.domain.decisions import ONCHAIN_CHECK
from payhook.domain.sessions import Status
from payhook.domain.watching import Block, Cursor, Find, Watched
from payhook.effects.chain import Chain
from payhook.outbox.store import enqueue

log = logging.getLogger("payhook.watch")

LATE_GRACE = timedelta(days=1)
MAX_STEPS_PER_TICK = 20  # then the loop comes round again at once: stopping stays prompt
PARALLEL_BLOCK_READS = 8


class Stopped(Exception):
    """The watcher was asked to stop: it leaves between reads, never inside a transaction."""


class ChainMoved(Exception):
    """The chain changed while a step was read: nothing is committed, the next tick reads it
    again."""


@dataclass(frozen=True)
class Tick:
    head: int
    cursor: Cursor
    found: int  # (session, transaction) pairs found and handed to the check

    @property
    def caught_up(self) -> bool:
        return self.cursor.number >= self.head


class Watcher:
    def __init__(self, engine: AsyncEngine, chain: Chain, settings: Settings):
        assert settings.web3_chain_id is not None  # guaranteed with PAYHOOK_WEB3_RPC_URL
        self.engine = engine
        self.chain = chain
        self.chain_id = settings.web3_chain_id
        self.confirmations = settings.web3_confirmations
        self.max_attempts = settings.outbox_max_attempts
        self.tokens = onchain.token_contracts(settings.web3_tokens)
        self.stopping = False  # set by whoever runs it: the tick ends at its next read

    async def tick(self) -> Tick:
        """Read from the cursor towards the head, a step at a time, each step committed."""
        head = await self.chain.head()
        async with reading(self.engine) as conn:
            cursor = await read_cursor(conn, self.chain_id)
        if cursor is None:
            cursor = await self._begin(head)
        found = 0
        for _ in range(MAX_STEPS_PER_TICK):
            span = watching.step(cursor, head)
            if span is None or self.stopping:
                break
            cursor, in_step = await self._step(cursor, head, *span)
            found += in_step
        return Tick(head, cursor, found)

    async def _begin(self, head: int) -> Cursor:
        """A first start: a little before the head (never from genesis)."""
        block = await self._read(watching.start_at(head))
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignoring_conflicts(conn, chain_cursors).values(
                chain_id=self.chain_id, block_number=block.number, block_hash=block.hash,
                updated_at=clock.now()))
            cursor = await read_cursor(conn, self.chain_id)
        assert cursor is not None
        log.info("watching from block %s", cursor.number, extra={"chain_id": self.chain_id})
        return cursor

    async def _step(self, cursor: Cursor, head: int, first: int, last: int) -> tuple[Cursor, int]:
        """Read blocks ``first``…``last`` and commit what they hold; the cursor it leaves."""
        async with reading(self.engine) as conn:
            watched = await open_addresses(conn, clock.now() - LATE_GRACE, self.tokens)
        blocks = await self._blocks(first, last, transfers=bool(watched.native))
        if blocks[0].parent_hash != cursor.hash:
            return await self._rewind(cursor, head), 0
        if not watching.follows(cursor, blocks):
            raise ChainMoved(f"blocks {first}-{last} changed while they were read")
        transfers = []
        if watched.tokens:
            transfers = await self.chain.token_transfers(
                first, last, sorted(watched.tokens), watched.token_recipients())
        found = watching.finds(blocks, transfers, watched)
        moved_to = Cursor(last, blocks[-1].hash)
        async with self.engine.begin() as conn:
            handed = await advance(conn, self.chain_id, cursor, moved_to, found,
                                   self.max_attempts)
        if handed:
            log.info("payments found on chain", extra={
                "chain_id": self.chain_id, "blocks": f"{first}-{last}", "found": handed})
        return moved_to, handed

    async def _blocks(self, first: int, last: int, transfers: bool) -> list[Block]:
        """Every block of the step with its transactions, or (no ``eth`` session open) only
        the last block and the first — read in that order, so that a reorg after the last
        one's read shows at the next step as a changed cursor block."""
        if not transfers:
            ends = [await self._read(number) for number in dict.fromkeys((last, first))]
            return ends[::-1]
        numbers = list(range(first, last + 1))
        blocks: list[Block] = []
        for start in range(0, len(numbers), PARALLEL_BLOCK_READS):
            if self.stopping:
                raise Stopped
            # Every read of a batch ends before a failure is raised: none outlives the step.
            read = await asyncio.gather(*(
                self._read(number, transfers=True)
                for number in numbers[start:start + PARALLEL_BLOCK_READS]),
                return_exceptions=True)
            for result in read:
                if isinstance(result, BaseException):
                    raise result
            blocks.extend(cast(list[Block], read))
        return blocks

    async def _read(self, number: int, transfers: bool = False) -> Block:
        block = await self.chain.block(number, transfers=transfers)
        if block is None:
            raise ChainMoved(f"block {number} is gone (the chain came back shorter)")
        return block

    async def _rewind(self, cursor: Cursor, head: int) -> Cursor:
        back = await self._read(watching.rewind_to(cursor, head, self.confirmations))
        rewound = Cursor(back.number, back.hash)
        async with self.engine.begin() as conn:
            await advance(conn, self.chain_id, cursor, rewound, [], self.max_attempts)
        log.warning("chain reorganised below block %s: reading again from block %s",
                    cursor.number, rewound.number, extra={"chain_id": self.chain_id})
        return rewound


async def read_cursor(conn: AsyncConnection, chain_id: int) -> Cursor | None:
    row = (await conn.execute(select(chain_cursors.c.block_number, chain_cursors.c.block_hash)
                              .where(chain_cursors.c.chain_id == chain_id))).first()
    return None if row is None else Cursor(row.block_number, row.block_hash)


async def open_addresses(conn: AsyncConnection, ended_after: datetime,
                         tokens: dict[str, str]) -> Watched:
    """The deposit addresses of sessions not paid whose expiry is after ``ended_after``, by
    asset (``tokens``: {symbol: contract}); a currency no longer configured is not watched."""
    rows = await conn.execute(
        select(checkout_sessions.c.id, checkout_sessions.c.deposit_address,
               checkout_sessions.c.currency).where(*_open(ended_after)))
    native: dict[str, str] = {}
    by_token: dict[str, dict[str, str]] = {}
    for session_id, address, currency in rows:
        if currency == onchain.NATIVE:
            native[address] = session_id
        elif currency in tokens:
            by_token.setdefault(tokens[currency], {})[address] = session_id
    return Watched(native=native, tokens=by_token)


async def count_open(conn: AsyncConnection, ended_after: datetime) -> int:
    """How many deposit addresses :func:`open_addresses` watches (whatever their asset)."""
    return int(await conn.scalar(select(func.count()).where(*_open(ended_after))) or 0)


def _open(ended_after: datetime) -> list[Any]:
    return [checkout_sessions.c.deposit_address.is_not(None),
            checkout_sessions.c.status != Status.PAID,
            checkout_sessions.c.expires_at > ended_after]


async def advance(conn: AsyncConnection, chain_id: int, cursor: Cursor, moved_to: Cursor,
                  found: Sequence[Find], max_attempts: int) -> int:
    """Move the cursor from ``cursor`` (compare-and-set) and queue a check per find not yet
    paid to its session (one already at work is not queued twice); how many finds that was.
    :class:`ChainMoved` if another watcher moved the cursor first (nothing is written)."""
    now = clock.now()
    moved = await conn.execute(
        update(chain_cursors)
        .where(chain_cursors.c.chain_id == chain_id,
               chain_cursors.c.block_number == cursor.number,
               chain_cursors.c.block_hash == cursor.hash)
        .values(block_number=moved_to.number, block_hash=moved_to.hash, updated_at=now))
    if moved.rowcount != 1:
        raise ChainMoved("another watcher moved the cursor")
    fresh = await _unpaid(conn, chain_id, found)
    await enqueue(conn, [(ONCHAIN_CHECK, {"session_id": find.session_id, "event": None,
                                          "tx_hash": find.tx_hash}) for find in fresh],
                  now, max_attempts)
    return len(fresh)


async def _unpaid(conn: AsyncConnection, chain_id: int, found: Sequence[Find]) -> list[Find]:
    """The finds whose transaction has not already paid their session (a re-read after a
    reorg finds them again)."""
    if not found:
        return []
    rows = await conn.execute(
        select(onchain_payments.c.session_id, onchain_payments.c.tx_hash).where(
            onchain_payments.c.chain_id == chain_id,
            tuple_(onchain_payments.c.session_id, onchain_payments.c.tx_hash).in_(
                [(find.session_id, find.tx_hash) for find in found])))
    paid = {(row.session_id, row.tx_hash) for row in rows}
    return [find for find in found if (find.session_id, find.tx_hash) not in paid]
