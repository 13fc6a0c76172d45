"""Run the arq worker so that a Redis outage never stops the drain or the process.

* One :class:`~payhook.runtime.pump.Pump` drains from the database on a 1 s poll, whatever
  Redis does; arq's nudges make it prompt.
* arq's ``Worker.main`` raises (and arq's own CLI exits) when Redis drops: here the worker is
  closed and started again, with backoff, until Redis is back.
* arq's poll of Redis waits while the pump is draining and no job was found
  (:class:`PumpedWorker`): a busy pump needs no nudge.
* SIGTERM/SIGINT: stop taking jobs, let the batch in hand settle, close, exit 0.
"""

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from arq.worker import Worker

from payhook.config import Settings
from payhook.db.engine import create_engine
from payhook.observability import configure_logging
from payhook.runtime import close_pump, keep_out_of_collection, start_pump
from payhook.runtime.pump import Pump
from payhook.worker import WORKER_OPTIONS, redis_settings

log = logging.getLogger("payhook.worker")

INITIAL_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0
STABLE_SECONDS = 10.0
GRACE_SECONDS = 20.0  # a worker that ran this long before failing starts the backoff over
HOLD_SECONDS = 1.0  # the longest arq's poll waits for a busy pump


def run(settings: Settings) -> int:
    """``payhook worker``: the supervised worker on the settings the command read at start-up."""
    if not settings.redis_url:
        sys.stderr.write("payhook worker: REDIS_URL is required (without it the web process "
                         "drains the outbox itself)\n")
        return 2
    configure_logging()
    import uvloop

    uvloop.run(supervise(settings))
    return 0


class PumpedWorker(Worker):
    """arq's worker, whose poll of Redis waits while the pump is busy and the last poll found
    no job: a nudge only wakes the pump, which is awake, and the drain in hand claims until
    nothing is due — so under load arq no longer asks Redis 100 times a second for nothing.
    It polls at once when the pump goes idle, at its usual pace while jobs are queued, and at
    least every :data:`HOLD_SECONDS` (arq keeps its health record and cron from the poll)."""

    def __init__(self, pump: Pump[Any], **options: Any):
        super().__init__(**options)
        self.pump = pump
        self.found_jobs = True

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        self.found_jobs = bool(job_ids)
        await super().start_jobs(job_ids)

    async def _poll_iteration(self) -> None:
        if not self.found_jobs:
            await self.pump.until_idle(HOLD_SECONDS)
        await super()._poll_iteration()


def _worker(settings: Settings, ctx: dict[str, Any]) -> Worker:
    return PumpedWorker(ctx["pump"], redis_settings=redis_settings(settings), ctx=ctx,
                        handle_signals=False, **WORKER_OPTIONS)


async def _close(worker: Worker) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await worker.close()


async def _stop_gracefully(worker: Worker, running: asyncio.Task[None]) -> None:
    """Take no more jobs, let the drains in hand finish their batch, then close."""
    worker.allow_pick_jobs = False
    in_flight = list(worker.tasks.values())
    if in_flight:
        await asyncio.wait(in_flight, timeout=GRACE_SECONDS)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await _close(worker)


async def supervise(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    pump = await start_pump(settings, engine)
    keep_out_of_collection()
    ctx: dict[str, Any] = {"pump": pump}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    backoff = INITIAL_BACKOFF_SECONDS
    try:
        while not stop.is_set():
            worker = _worker(settings, ctx)
            started = loop.time()
            running = asyncio.create_task(worker.main(), name="arq-worker")
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                pump.drainer.stop()
                await _stop_gracefully(worker, running)
                break
            error = running.exception() if not running.cancelled() else None
            await _close(worker)
            if loop.time() - started > STABLE_SECONDS:
                backoff = INITIAL_BACKOFF_SECONDS
            if error is not None and not _is_redis_error(error):
                log.error("arq worker failed", exc_info=error)
            log.warning("arq worker stopped (%s); restarting in %.1f s, draining meanwhile",
                        type(error).__name__ if error else "no error", backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
        log.info("worker stopping")
    finally:
        await close_pump(pump)
        await engine.dispose()


def _is_redis_error(error: BaseException) -> bool:
    from redis.exceptions import RedisError

    return isinstance(error, RedisError | OSError)
