"""The arq worker: ``payhook worker`` (the Procfile's ``worker:`` line) runs it supervised.

arq carries nudges only. One :class:`~payhook.outbox.runner.Pump` per process drains the
outbox (on its own 1 s poll, and at once when nudged); a ``drain`` job only wakes it, so however
many nudges arrive, one drain runs and its in-flight rows stay within the database pool. A
cron job wakes it too, every 5 s. arq exits when Redis drops (FIELD-NOTES.md), so
:mod:`worker.supervisor` restarts arq while the pump goes on: a Redis outage delays nothing by
more than a poll.
"""

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import func

from payhook.config import load_settings
from payhook.db.engine import create_engine
from payhook.outbox.nudge import DRAIN_JOB
from payhook.outbox.runner import Pump
from payhook.runtime import close_pump, start_pump

JOB_TIMEOUT_SECONDS = 10  # a job only wakes the pump


async def drain(ctx: dict[str, Any]) -> None:
    """A nudge: something was committed."""
    pump: Pump = ctx["pump"]
    pump.nudge()


async def startup(ctx: dict[str, Any]) -> None:
    """Resources live in ``ctx`` (built here, never at import)."""
    if "pump" in ctx:  # the supervisor built them already and passes them in
        return
    settings = load_settings()
    ctx.update(pump=await start_pump(settings, create_engine(settings.database_url)),
               owns_resources=True)


async def shutdown(ctx: dict[str, Any]) -> None:
    if ctx.get("owns_resources"):
        pump: Pump = ctx["pump"]
        await close_pump(pump)
        await pump.drainer.engine.dispose()


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(load_settings().redis_url or "redis://127.0.0.1:6379")


WORKER_OPTIONS: dict[str, Any] = {
    "functions": [func(drain, name=DRAIN_JOB, timeout=JOB_TIMEOUT_SECONDS, max_tries=1)],
    "cron_jobs": [cron(drain, name="sweep", second=set(range(0, 60, 5)), run_at_startup=True,
                       unique=True, timeout=JOB_TIMEOUT_SECONDS)],
    "on_startup": startup,
    "on_shutdown": shutdown,
    # Nudges need no results; arq would otherwise refuse a job id while its result is kept.
    "keep_result": 0,
    "poll_delay": 0.01,  # the default 0.5 s is most of a webhook-to-delivery budget
    "max_jobs": 8,
    "job_timeout": JOB_TIMEOUT_SECONDS,
    "health_check_interval": 30,
}


class WorkerSettings:
    """For ``arq worker.WorkerSettings`` and ``arq --check``; production runs the supervisor."""

    functions = WORKER_OPTIONS["functions"]
    cron_jobs = WORKER_OPTIONS["cron_jobs"]
    on_startup = startup
    on_shutdown = shutdown
    keep_result = WORKER_OPTIONS["keep_result"]
    poll_delay = WORKER_OPTIONS["poll_delay"]
    max_jobs = WORKER_OPTIONS["max_jobs"]
    job_timeout = WORKER_OPTIONS["job_timeout"]
    health_check_interval = WORKER_OPTIONS["health_check_interval"]
    redis_settings = redis_settings()
