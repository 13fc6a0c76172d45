"""Claim → run → settle, the one drain both runners use.

A handler gets the claimed :class:`Entry`, may read and do network I/O (never inside a
transaction), and returns the writes that record its effect (or ``None``). The drain runs those
writes and the fenced ``done`` in ONE transaction: a worker that lost its lease commits neither.
A failure goes back to pending with backoff, or dead after the last attempt.
"""

import asyncio
import logging
import socket
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payhook import clock
from payhook.outbox import store
from payhook.outbox.retry import RetryPolicy
from payhook.outbox.store import Entry

log = logging.getLogger("payhook.outbox")

Writes = Callable[[AsyncConnection], Awaitable[None]]
Handler = Callable[[Any, Entry], Awaitable[Writes | None]]


class NotReady(Exception):
    """A prerequisite is still in flight (e.g. the invoice a notification carries)."""

    def __init__(self, reason: str, retry_in: float = 0.2):
        super().__init__(reason)
        self.retry_in = retry_in


class LeaseLost(Exception):
    """Our lease ran out and another worker owns the row now; we commit nothing."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Drainer:
    engine: AsyncEngine
    handlers: Mapping[str, Handler]
    context: Any
    policy: RetryPolicy
    # Stages of one session's rows: kinds in one stage run side by side, a stage after the one
    # before it (the notification after the invoice and the link it carries).
    order: Sequence[Sequence[str]] = ()
    worker: str = field(default_factory=worker_name)
    batch_size: int = 20  # rows in flight at once; keep it within the engine's pool
    lease: timedelta = timedelta(seconds=60)
    handler_timeout: float = 30.0
    stopping: bool = False

    def stop(self) -> None:
        """Finish the batch in hand, claim no more."""
        self.stopping = True

    async def drain(self) -> int:
        """Run every due row until none is due; returns how many ran.

        A pipeline, not batch after batch: up to ``batch_size`` rows are in flight, and as soon
        as some finish, more are claimed — so a follow-up row (a delivery a notification just
        queued) never waits for the slowest row of an earlier batch.
        """
        total = 0
        in_flight: dict[asyncio.Task[None], int] = {}
        try:
            while not self.stopping:
                room = self.batch_size - sum(in_flight.values())
                claimed: Sequence[Entry] = []
                # Under load, claim once half the room is free rather than after every row:
                # one claim per row would cost more than the rows.
                if room > 0 and (not in_flight or room >= self.batch_size // 2):
                    async with self.engine.begin() as conn:
                        claimed = await store.claim_due(conn, self.worker, room, self.lease,
                                                        clock.now())
                for group in self.groups(claimed):
                    in_flight[asyncio.create_task(self._run_in_order(group))] = len(group)
                total += len(claimed)
                if not in_flight:
                    return total
                if not claimed or room - len(claimed) <= 0:
                    done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        del in_flight[task]
                        task.result()
        finally:
            if in_flight:
                await asyncio.gather(*in_flight)
        return total

    async def run_batch(self, entries: Sequence[Entry]) -> None:
        """Run these claimed rows (see :meth:`groups`) and wait for all of them."""
        await asyncio.gather(*(self._run_in_order(group) for group in self.groups(entries)))

    def groups(self, entries: Sequence[Entry]) -> list[list[Entry]]:
        """A session's rows of the kinds in ``order`` run stage by stage (the invoice before
        the notification that carries it); every other row, and every other session, runs
        side by side."""
        rank = self._ranks()
        groups: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            ordered = entry.kind in rank and entry.payload.get("session_id")
            groups[f"session:{entry.payload['session_id']}" if ordered else entry.id].append(
                entry)
        return [sorted(group, key=lambda e: rank.get(e.kind, len(rank)))
                for group in groups.values()]

    def _ranks(self) -> dict[str, int]:
        return {kind: stage for stage, kinds in enumerate(self.order) for kind in kinds}

    async def _run_in_order(self, entries: Sequence[Entry]) -> None:
        rank = self._ranks()
        stages: dict[int, list[Entry]] = defaultdict(list)
        for entry in entries:
            stages[rank.get(entry.kind, len(rank))].append(entry)
        for stage in sorted(stages):
            await asyncio.gather(*(self.run(entry) for entry in stages[stage]))

    async def run(self, entry: Entry) -> None:
        handler = self.handlers.get(entry.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for outbox kind {entry.kind!r}")
            writes = await asyncio.wait_for(handler(self.context, entry), self.handler_timeout)
            await self._finish(entry, writes)
        except NotReady as not_ready:
            await self._settle(store.postpone, entry,
                               clock.now() + timedelta(seconds=not_ready.retry_in))
        except LeaseLost:
            log.warning("lease lost; another worker owns the row",
                        extra={"outbox_id": entry.id, "kind": entry.kind})
        except Exception as error:  # noqa: BLE001 - every failure is kept on the row
            await self._fail(entry, error)

    async def _finish(self, entry: Entry, writes: Writes | None) -> None:
        async with self.engine.begin() as conn:
            if writes is not None:
                await writes(conn)
            if not await store.settle_done(conn, entry, clock.now()):
                raise LeaseLost(entry.id)

    async def _fail(self, entry: Entry, error: BaseException) -> None:
        now = clock.now()
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        next_attempt = self.policy.next_attempt(entry.attempts, entry.max_attempts, now)
        log.warning("outbox entry failed", extra={
            "outbox_id": entry.id, "kind": entry.kind, "attempt": entry.attempts,
            "dead": next_attempt is None, "error": message[:300]})
        async with self.engine.begin() as conn:
            await store.settle_failed(conn, entry, message, next_attempt, now)

    async def _settle(self, settle: Callable[..., Awaitable[bool]], entry: Entry,
                      until: Any) -> None:
        async with self.engine.begin() as conn:
            await settle(conn, entry, until, clock.now())
