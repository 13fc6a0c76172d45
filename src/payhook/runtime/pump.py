"""What keeps the drain going, in either runner.

:class:`Pump` drains when nudged and on a short poll, and sweeps (expires unpaid sessions,
buries rows whose worker died on their last attempt, destroys rotated-out endpoint secrets past
their overlap, prunes what is past the retention: :mod:`payhook.services.retention`) every few
seconds. The embedded default runs one inside the web process, nudged in-process after each
commit; the arq worker runs one beside arq, so work continues even while Redis is down — Redis
only makes it prompter. Loops of their own that live as long as the pump (the chain watcher)
start and stop with it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Generic, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from payhook import clock
from payhook.outbox import store
from payhook.outbox.drain import C, Drainer
from payhook.services import retention, webhook_endpoints
from payhook.services.expiry import expire_due

log = logging.getLogger("payhook.outbox")
RETENTION = timedelta(days=30)  # PAYHOOK_RETENTION_DAYS' default


async def sweep(engine: AsyncEngine, max_attempts: int,
                keep: timedelta = RETENTION) -> int:
    """Expire unpaid sessions past ``expires_at``, bury dead workers' last attempts, destroy
    expired secrets (one transaction), then prune what is older than ``keep`` (bounded
    batches, each its own transaction, so that a backlog never holds ingest up)."""
    now = clock.now()
    async with engine.begin() as conn:
        expired = await expire_due(conn, now, max_attempts)
        buried = await store.bury_expired_leases(conn, now)
        destroyed = await webhook_endpoints.destroy_expired_secrets(conn, now)
    pruned = await retention.prune(engine, now, keep)
    if expired or buried or destroyed or pruned:
        log.info("swept", extra={"expired_sessions": expired, "buried_entries": buried,
                                 "destroyed_secrets": destroyed, "pruned": pruned})
    return expired


class Companion(Protocol):
    """A loop of its own that runs as long as the pump (the chain watcher)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class Pump(Generic[C]):
    def __init__(self, drainer: Drainer[C], max_attempts: int, poll_seconds: float = 1.0,
                 sweep_seconds: float = 5.0, keep: timedelta = RETENTION,
                 beside: Sequence[Companion] = ()):
        self.drainer = drainer
        self.beside = beside
        self.max_attempts = max_attempts
        self.keep = keep
        self.poll_seconds = poll_seconds
        self.sweep_seconds = sweep_seconds
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while neither sweeping nor draining
        self._idle.set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def nudge(self) -> None:
        """Something was committed: drain now rather than at the next poll."""
        self._wake.set()

    @property
    def busy(self) -> bool:
        """Sweeping or draining: anything committed now is claimed by the drain in hand (it
        claims until nothing is due), or by the one a nudge during it leads to."""
        return not self._idle.is_set()

    async def until_idle(self, timeout: float) -> None:
        """Wait until the pump is neither sweeping nor draining, at most ``timeout`` seconds."""
        if self.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="payhook-outbox-pump")
        for companion in self.beside:
            companion.start()

    async def stop(self) -> None:
        """Finish the batch in hand, then stop (rows not yet claimed stay pending)."""
        self._stopping = True
        self.drainer.stop()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for companion in self.beside:
            await companion.stop()

    async def _run(self) -> None:
        last_sweep = 0.0
        wait = self.poll_seconds
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._idle.clear()
                try:
                    if time.monotonic() - last_sweep >= self.sweep_seconds:
                        last_sweep = time.monotonic()
                        await sweep(self.drainer.engine, self.max_attempts, self.keep)
                    await self.drainer.drain()
                finally:
                    self._idle.set()
                wait = await self._until_next_due()
            except Exception:  # noqa: BLE001 - a database outage must not stop the pump
                log.exception("drain failed; retrying at the next poll")
                wait = self.poll_seconds

    async def _until_next_due(self) -> float:
        """Sleep no longer than until the earliest pending row is due (a short backoff or a
        postponed notification need not wait for the next poll)."""
        async with self.drainer.engine.connect() as conn:
            due = await store.next_due_at(conn)
        if due is None:
            return self.poll_seconds
        return min(self.poll_seconds, max(0.0, (due - clock.now()).total_seconds()))
