"""The chain watcher's loop, beside the drain in either runner (the embedded default's web
process and ``payhook worker``), when a Web3 node is configured.

Every :data:`TICK_SECONDS` it runs one :meth:`~payhook.effects.watch.Watcher.tick` — at once
again while the cursor is behind the head. One process watches at a time: the holder of a
PostgreSQL advisory lock (:class:`~payhook.db.locks.ProcessLock`); the others try for it each
tick, so a killed watcher's place is taken within a tick. Before its first tick, after any
failure and every :data:`VERIFY_SECONDS`, the node must serve ``PAYHOOK_WEB3_CHAIN_ID`` (not at
every tick: an idle tick costs the node one call). A node that is down or on the wrong
chain is logged (once, then again when it recovers), retried with backoff up to
:data:`MAX_BACKOFF_SECONDS`, and never stops the process or its drain.
"""

import asyncio
import contextlib
import logging
import time

from payhook.db.locks import ProcessLock
from payhook.effects.chain import WrongChain
from payhook.effects.watch import ChainMoved, Stopped, Watcher
from payhook.redaction import describe

log = logging.getLogger("payhook.watch")

TICK_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0
VERIFY_SECONDS = 300.0


class WatchLoop:
    def __init__(self, watcher: Watcher, lock: ProcessLock, tick_seconds: float = TICK_SECONDS):
        self.watcher = watcher
        self.lock = lock
        self.tick_seconds = tick_seconds
        self._verified_until = 0.0  # monotonic time: ask the node its chain id again then
        self._failing: str | None = None  # what the last failure was, while it lasts
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, watcher: Watcher, tick_seconds: float = TICK_SECONDS) -> "WatchLoop":
        return cls(watcher, ProcessLock(watcher.engine, watcher.chain_id % 2**31), tick_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="payhook-chain-watch")

    async def stop(self) -> None:
        """Stop at the tick's next read (a step left half read is read again by the next
        watcher: a step commits what it found with its cursor, or nothing). Never cancelled
        mid-transaction: on SQLite that could leave the write lock held."""
        self._stop.set()
        self.watcher.stopping = True
        if self._task is not None:
            await self._task
        await self.lock.release()

    async def _run(self) -> None:
        wait = 0.0
        backoff = self.tick_seconds
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)
            if self._stop.is_set():
                return
            try:
                wait = await self.run_once()
                backoff = self.tick_seconds
            except Stopped:
                return
            except ChainMoved as moved:  # a reorg or another watcher: read again soon
                log.info("watch step not committed: %s", moved)
                wait = self.tick_seconds
            except Exception as error:  # noqa: BLE001 - a node or database outage
                self._failed(error)
                wait, backoff = backoff, min(MAX_BACKOFF_SECONDS, backoff * 2)

    async def run_once(self) -> float:
        """One tick if this process holds the watch; the seconds until the next."""
        if not await self.lock.hold():
            return self.tick_seconds
        if time.monotonic() >= self._verified_until:
            await self.watcher.chain.require_chain_id(self.watcher.chain_id)
            self._verified_until = time.monotonic() + VERIFY_SECONDS
        tick = await self.watcher.tick()
        if self._failing is not None:
            log.info("chain watch recovered", extra={"head": tick.head})
            self._failing = None
        return self.tick_seconds if tick.caught_up else 0.0

    def _failed(self, error: Exception) -> None:
        self._verified_until = 0.0  # the node may have been swapped for another: ask again
        what = type(error).__name__
        if what == self._failing:  # said already: once per outage, not once per retry
            log.debug("chain watch still failing (%s)", describe(error))
            return
        self._failing = what
        if not isinstance(error, WrongChain):  # which require_chain_id has logged
            log.error("chain watch failed (%s); retrying with backoff", describe(error))

