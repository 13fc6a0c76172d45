"""The supervised arq worker (against a Redis of the test's own) asks Redis for jobs only when a
nudge can matter: while the pump drains and the last poll found no job, its poll waits for the
pump — at most HOLD_SECONDS, so a queued nudge still runs and arq's health record stays fresh."""

import asyncio
import contextlib
import warnings
from types import SimpleNamespace

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import JobStatus
from arq.worker import Worker

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.tables import outbox_entries
from payhook.outbox import store
from payhook.outbox.drain import Drainer, each
from payhook.outbox.nudge import DRAIN_JOB, ArqNudger
from payhook.outbox.retry import RetryPolicy
from payhook.runtime.pump import Pump
from payhook.worker import WORKER_OPTIONS
from payhook.worker.supervisor import HOLD_SECONDS, PumpedWorker


async def until(check, seconds: float, what: str) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {seconds} s: {what}")


async def test_arq_polls_wait_while_the_pump_drains(pg_url, redis_server, monkeypatch):
    polls = 0
    arqs_poll = Worker._poll_iteration

    async def counted(self):
        nonlocal polls
        polls += 1
        await arqs_poll(self)

    monkeypatch.setattr(Worker, "_poll_iteration", counted)
    engine = create_engine(pg_url)
    release = asyncio.Event()

    async def hangs(_context, _entry):
        await release.wait()

    pump = Pump(Drainer(engine, {"test.slow": each(hangs)}, None, RetryPolicy(60)), 3,
                poll_seconds=0.05)
    settings = RedisSettings.from_dsn(redis_server.url)
    worker = PumpedWorker(pump, redis_settings=settings, ctx={"pump": pump},
                          handle_signals=False, **WORKER_OPTIONS)
    nudges = await create_pool(settings)
    pump.start()
    running = asyncio.create_task(worker.main())
    try:
        await until(lambda: polls >= 20, 5, "arq polls at its pace while the pump is idle")
        async with engine.begin() as conn:
            await conn.execute(outbox_entries.insert(),
                               [store.new_entry("test.slow", {"n": 1}, clock.now(), 3)])
        pump.nudge()
        await until(lambda: pump.busy, 5, "the pump drains the slow row")
        await asyncio.sleep(0.3)  # the poll in hand ends; then it waits for the pump
        before = polls
        await asyncio.sleep(HOLD_SECONDS / 2)
        assert polls - before <= 1  # at its own pace: about 50

        # A nudge queued meanwhile still runs within the hold, the pump still busy.
        # Watched by its id: arq's cron sweep, every 5 s, may run a job of its own meanwhile.
        nudge = await nudges.enqueue_job(DRAIN_JOB)
        assert nudge is not None
        for _ in range(int((HOLD_SECONDS + 2) / 0.05)):
            if await nudge.status() == JobStatus.not_found:  # ran; no result is kept
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the queued nudge did not run")
        assert pump.busy  # (the queue may hold the next cron sweep, deferred to its second)

        # Once the pump is idle, arq polls at its pace again.
        release.set()
        await until(lambda: not pump.busy, 5, "the pump finishes its drain")
        before = polls
        await until(lambda: polls - before >= 10, 2, "arq polls at once, then at its pace")
    finally:
        release.set()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        with warnings.catch_warnings():  # arq 0.28 closes its Redis pool the deprecated way
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()
        await pump.stop()
        await nudges.aclose()
        await engine.dispose()


async def test_nudges_while_no_worker_runs_wait_in_redis_as_one_job(redis_server):
    """Every nudge of the web process is the one job id: a burst of commits while the worker is
    down queues one job; once a worker has run it, the next nudge is queued again."""
    settings = RedisSettings.from_dsn(redis_server.url)
    queue = await create_pool(settings)
    nudger = ArqNudger(redis_server.url)
    woken: list[str] = []
    try:
        for _ in range(20):
            nudger.nudge()
            await asyncio.sleep(0.002)  # some enqueues land apart, some fold into one
        await nudger.close()
        assert await queue.zrange("arq:queue", 0, -1) == [DRAIN_JOB.encode()]

        pump = SimpleNamespace(nudge=lambda: woken.append("nudge"))
        worker = Worker(redis_settings=settings, ctx={"pump": pump}, burst=True,
                        handle_signals=False, **WORKER_OPTIONS)
        with warnings.catch_warnings():  # arq 0.28 closes its Redis pool the deprecated way
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.main()
            await worker.close()
        # (arq may have queued its next cron sweep, deferred to its second, beside.)
        assert woken and await queue.zscore("arq:queue", DRAIN_JOB) is None

        nudger = ArqNudger(redis_server.url)
        nudger.nudge()
        await nudger.close()
        assert await queue.zscore("arq:queue", DRAIN_JOB) is not None
    finally:
        await nudger.close()
        await queue.aclose()
