"""The arq worker: ``payhook worker`` (the Procfile's ``worker:`` line) runs it supervised.

arq carries nudges only. Each ``drain`` job drains every due outbox row; a cron sweep expires
unpaid sessions and drains whatever a lost nudge left behind. arq exits when Redis drops
(FIELD-NOTES.md), so :mod:`worker.supervisor` restarts it and, meanwhile, keeps draining from
the database on its own poll: a Redis outage delays nothing by more than a poll.
"""

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import func

from payhook.config import load_settings
from payhook.db.engine import create_engine
from payhook.outbox.drain import Drainer
from payhook.outbox.nudge import DRAIN_JOB
from payhook.outbox.runner import sweep
from payhook.runtime import build_drainer, check_web3_node

JOB_TIMEOUT_SECONDS = 300


async def drain(ctx: dict[str, Any]) -> int:
    drainer: Drainer = ctx["drainer"]
    return await drainer.drain()


async def sweep_and_drain(ctx: dict[str, Any]) -> int:
    drainer: Drainer = ctx["drainer"]
    await sweep(drainer.engine, ctx["max_attempts"])
    return await drainer.drain()


async def startup(ctx: dict[str, Any]) -> None:
    """Resources live in ``ctx`` (built here, never at import)."""
    if "drainer" in ctx:  # the supervisor built them already and passes them in
        return
    settings = load_settings()
    engine = create_engine(settings.database_url)
    drainer = build_drainer(settings, engine)
    await check_web3_node(drainer.context)
    ctx.update(drainer=drainer, max_attempts=settings.outbox_max_attempts, owns_resources=True)


async def shutdown(ctx: dict[str, Any]) -> None:
    if ctx.get("owns_resources"):
        drainer: Drainer = ctx["drainer"]
        await drainer.context.close()
        await drainer.engine.dispose()


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(load_settings().redis_url or "redis://127.0.0.1:6379")


WORKER_OPTIONS: dict[str, Any] = {
    "functions": [func(drain, name=DRAIN_JOB, timeout=JOB_TIMEOUT_SECONDS, max_tries=1)],
    "cron_jobs": [cron(sweep_and_drain, second=set(range(0, 60, 5)), run_at_startup=True,
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
