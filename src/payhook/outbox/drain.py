"""Claim → run → settle, the one drain both runners use — a claimed batch at a time.

A handler (one shape, :data:`Handler`) gets the claimed rows of its kind at once and may read and
do network I/O (never inside a transaction); it answers with an :class:`Outcome`: the writes
that record its effects, set-based, and which rows failed and why. The drain runs those writes
and the fenced ``done`` of the rows that succeeded in ONE transaction, the writes only for the
rows whose fence still holds: a worker that lost a row's lease commits neither its effect nor
its ``done``. A failed row goes back to pending with backoff, or dead after its last attempt,
with what it keeps all the same (a delivery's failed try) in that settle's transaction, fenced
alike. Should the shared transaction fail, each row is settled on its own, so one bad row costs
only itself. A handler of one row at a time joins the registry through :func:`each`."""

import asyncio
import logging
import socket
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payhook import clock
from payhook.outbox import store
from payhook.outbox.retry import RetryPolicy
from payhook.outbox.store import Entry
from payhook.redaction import describe

log = logging.getLogger("payhook.outbox")

C = TypeVar("C")  # what every handler of a drain is given: its context

# The writes of a batch, given the rows whose fence held.
BatchWrites = Callable[[AsyncConnection, Sequence[Entry]], Awaitable[None]]
# The writes of one row (see :func:`each`).
Writes = Callable[[AsyncConnection], Awaitable[None]]


@dataclass
class Outcome:
    """What a handler did: ``failed`` maps a row's id to its error (``NotReady`` to postpone
    it); every other row succeeded, and ``writes`` records their effects. ``failure_writes``,
    if any, records what a failed row keeps all the same, committed with its failure settle."""

    writes: BatchWrites | None = None
    failed: dict[str, BaseException] = field(default_factory=dict)
    failure_writes: BatchWrites | None = None


# A registry entry: the context and the claimed rows of one kind in, what it did out.
Handler = Callable[[C, Sequence[Entry]], Awaitable[Outcome]]


def each(handle: Callable[[C, Entry], Awaitable[Writes | None]]) -> Handler[C]:
    """A handler of one row at a time as a batch handler: its rows side by side, each failing
    alone, the writes of those that succeed together (the drain's handler timeout bounds the
    batch, as for every handler)."""

    async def handle_all(context: C, entries: Sequence[Entry]) -> Outcome:
        results = await asyncio.gather(*(handle(context, entry) for entry in entries),
                                       return_exceptions=True)
        writes: dict[str, Writes] = {}
        outcome = Outcome()
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, Exception):
                outcome.failed[entry.id] = result
            elif isinstance(result, BaseException):
                raise result  # cancelled: the rows stay leased and run again after the lease
            elif result is not None:
                writes[entry.id] = result

        async def write(conn: AsyncConnection, held: Sequence[Entry]) -> None:
            for entry in held:
                if entry.id in writes:
                    await writes[entry.id](conn)

        outcome.writes = write
        return outcome

    return handle_all


class NotReady(Exception):
    """A prerequisite is still in flight (e.g. the invoice a notification carries). ``shown``:
    the reason becomes the row's ``last_error`` — a wait on the outside world (a transaction
    not yet mined) an operator should see, unlike a sibling row's moment in flight."""

    def __init__(self, reason: str, retry_in: float = 0.2, shown: bool = False):
        super().__init__(reason)
        self.retry_in = retry_in
        self.shown = shown


class RetryLater(Exception):
    """A failure whose peer said when to come back (an HTTP ``Retry-After``): the retry waits
    for the later of that and the backoff, that wait capped at :data:`MAX_RETRY_IN`."""

    def __init__(self, reason: str, retry_in: float | None = None):
        super().__init__(reason)
        self.retry_in = retry_in


MAX_RETRY_IN = timedelta(hours=1)


def worker_name() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Drainer(Generic[C]):
    engine: AsyncEngine
    handlers: Mapping[str, Handler[C]]
    context: C
    policy: RetryPolicy
    # Stages of one session's rows: kinds in one stage run side by side, a stage after the one
    # before it (the notification after the invoice and the link it carries).
    order: Sequence[Sequence[str]] = ()
    worker: str = field(default_factory=worker_name)
    # Rows in flight at once. A kind's batch costs a few statements and transactions whatever
    # its size, so under a backlog a bigger batch is cheaper per row (bench/worker.py: worker
    # CPU per session 2.73 ms at 200, 2.25 ms at 600, 2.15 ms at 1,200); every network call
    # still has its own deadline, its wait for a connection or its turn included.
    batch_size: int = 1000
    lease: timedelta = timedelta(seconds=60)
    handler_timeout: float = 30.0
    stopping: bool = False

    def stop(self) -> None:
        """Finish the batches in hand, claim no more."""
        self.stopping = True

    async def drain(self) -> int:
        """Run every due row until none is due; returns how many ran.

        A pipeline, not batch after batch: up to ``batch_size`` rows are in flight, and as soon
        as half of that room is free, more are claimed — so a follow-up row (a delivery a
        notification just queued) never waits for the slowest row of an earlier batch.
        """
        total = 0
        in_flight: dict[asyncio.Task[None], int] = {}
        try:
            while not self.stopping:
                room = self.batch_size - sum(in_flight.values())
                claimed: Sequence[Entry] = []
                # Under load, claim once half the room is free rather than after every batch:
                # many small claims would cost more than their rows.
                if room > 0 and (not in_flight or room >= self.batch_size // 2):
                    async with self.engine.begin() as conn:
                        claimed = await store.claim_due(conn, self.worker, room, self.lease,
                                                        clock.now())
                for work, rows in self._work(claimed):
                    in_flight[asyncio.create_task(work)] = rows
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

    def _work(self, entries: Sequence[Entry]) -> list[tuple[Coroutine[Any, Any, None], int]]:
        """Claimed rows as work to run, each piece with its count of rows (the room it frees
        when done): the kinds named in ``order`` stage by stage (the invoice before the
        notification that carries it), every other kind on its own, beside them — so a slow
        merchant endpoint holds up only the deliveries claimed with its own."""
        rank = {kind: stage for stage, kinds in enumerate(self.order) for kind in kinds}
        staged: dict[int, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
        free: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            if entry.kind in rank and entry.payload.get("session_id"):
                staged[rank[entry.kind]][entry.kind].append(entry)
            else:
                free[entry.kind].append(entry)

        async def in_stages() -> None:
            for stage in sorted(staged):
                await asyncio.gather(*(self.run_kind(kind, rows)
                                       for kind, rows in staged[stage].items()))

        work = [(self.run_kind(kind, rows), len(rows)) for kind, rows in free.items()]
        if staged:
            work.append((in_stages(), sum(len(rows) for kinds in staged.values()
                                          for rows in kinds.values())))
        return work

    async def run_kind(self, kind: str, entries: Sequence[Entry]) -> None:
        """Run, then settle, claimed rows of one kind."""
        try:
            outcome = await self._handle(kind, entries)
        except Exception as error:  # noqa: BLE001 - every failure is kept on the rows
            outcome = Outcome(failed=dict.fromkeys((entry.id for entry in entries), error))
        succeeded = [entry for entry in entries if entry.id not in outcome.failed]
        if succeeded:
            await self._finish(succeeded, outcome.writes)
        for entry in entries:
            if entry.id in outcome.failed:
                await self._settle_failure(entry, outcome.failed[entry.id],
                                           outcome.failure_writes)

    async def _handle(self, kind: str, entries: Sequence[Entry]) -> Outcome:
        handler = self.handlers.get(kind)
        if handler is None:
            raise LookupError(f"no handler for outbox kind {kind!r}")
        return await asyncio.wait_for(handler(self.context, entries), self.handler_timeout)

    async def _finish(self, entries: Sequence[Entry], writes: BatchWrites | None) -> None:
        """The fenced ``done`` of these rows and the writes of those whose fence held, in one
        transaction; if it fails, row by row, so that the failure is the bad row's alone."""
        try:
            async with self.engine.begin() as conn:
                held = await store.settle_done(conn, entries, clock.now())
                if writes is not None and held:
                    await writes(conn, held)
        except Exception as error:  # noqa: BLE001 - isolated below, then kept on the row
            if len(entries) == 1:
                await self._settle_failure(entries[0], error)
            else:
                for entry in entries:
                    await self._finish([entry], writes)
            return
        for lost in {entry.id for entry in entries} - {entry.id for entry in held}:
            log.warning("lease lost; another worker owns the row", extra={"outbox_id": lost})

    async def _settle_failure(self, entry: Entry, error: BaseException,
                              writes: BatchWrites | None = None) -> None:
        """The row back to pending (or dead, or postponed) and, if its fence held, the
        ``writes`` it keeps, in one transaction; should those fail, the row is settled
        without them rather than left running until its lease runs out."""
        try:
            async with self.engine.begin() as conn:
                if await self._fail(conn, entry, error) and writes is not None:
                    await writes(conn, [entry])
        except Exception:
            if writes is None:
                raise
            log.exception("settling a failed row with its writes failed; settling it alone",
                          extra={"outbox_id": entry.id})
            await self._settle_failure(entry, error)

    async def _fail(self, conn: AsyncConnection, entry: Entry, error: BaseException) -> bool:
        """Settle a failed row; whether its fence held."""
        now = clock.now()
        if isinstance(error, NotReady):
            return await store.postpone(conn, entry, now + timedelta(seconds=error.retry_in),
                                        now, str(error) if error.shown else None)
        message = describe(error)  # kept on the row, shown by the admin API: no credentials
        next_attempt = self.policy.next_attempt(entry.attempts, entry.max_attempts, now)
        if isinstance(error, RetryLater) and error.retry_in and next_attempt is not None:
            asked = now + timedelta(seconds=min(error.retry_in, MAX_RETRY_IN.total_seconds()))
            next_attempt = max(next_attempt, asked)
        log.warning("outbox entry failed", extra={
            "outbox_id": entry.id, "kind": entry.kind, "attempt": entry.attempts,
            "dead": next_attempt is None, "error": message[:300]})
        return await store.settle_failed(conn, entry, message, next_attempt, now)
