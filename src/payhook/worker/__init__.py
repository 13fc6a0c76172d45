"""The arq worker: ``payhook worker`` (the Procfile's ``worker:`` line) runs it supervised.

arq carries nudges only. One :class:`~payhook.runtime.pump.Pump` per process drains the
outbox (on its own 1 s poll, and at once when nudged); a ``drain`` job only wakes it, so however
many nudges arrive, one drain runs and its in-flight rows stay within the database pool. A
cron job wakes it too, every 5 s. arq exits when Redis drops (arq 0.28 does), so
:mod:`payhook.worker.supervisor` restarts arq while the pump goes on: a Redis outage delays
nothing by more than a poll.

Importing this module reads no setting and touches no file: settings are read once, at start-up,
by whoever starts the worker, and handed down.
"""

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import func

from payhook.config import Settings, load_settings
from payhook.db.engine import create_engine
from payhook.effects.context import EffectContext
from payhook.outbox.nudge import DRAIN_JOB
from payhook.runtime import close_pump, start_pump
from payhook.runtime.pump import Pump

JOB_TIMEOUT_SECONDS = 10  # a job only wakes the pump
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"  # arq's own default, for `arq` without REDIS_URL


async def drain(ctx: dict[str, Any]) -> None:
    """A nudge: something was committed."""
    pump: Pump[EffectContext] = ctx["pump"]
    pump.nudge()


async def startup(ctx: dict[str, Any]) -> None:
    """Resources live in ``ctx`` (built here, never at import)."""
    if "pump" in ctx:  # the supervisor built them already and passes them in
        return
    settings: Settings = ctx["settings"]
    ctx.update(pump=await start_pump(settings, create_engine(settings.database_url)),
               owns_resources=True)


async def shutdown(ctx: dict[str, Any]) -> None:
    if ctx.get("owns_resources"):
        pump: Pump[EffectContext] = ctx["pump"]
        await close_pump(pump)
        await pump.drainer.engine.dispose()


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url or DEFAULT_REDIS_URL)


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


def worker_settings(settings: Settings) -> dict[str, Any]:
    """arq's worker settings (arq takes a dict as well as a class) for ``settings``."""
    return {**WORKER_OPTIONS, "redis_settings": redis_settings(settings),
            "ctx": {"settings": settings}}


def __getattr__(name: str) -> Any:
    """``arq payhook.worker.WorkerSettings`` and ``arq --check``; production runs the supervisor.

    arq reads its settings off the attribute it imports, so they are built when arq asks for
    them (its start-up: the environment is read then, once), never when this module is imported.
    """
    if name == "WorkerSettings":
        return worker_settings(load_settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
