"""What runs the outbox in a process: the drain built from settings (the same objects for the
embedded runner and the worker) and its :class:`~payhook.runtime.pump.Pump`, started and closed.

It sits above both the outbox machinery and the effects and services it drives, so that neither
needs the other's imports."""

import gc
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from payhook.config import Settings
from payhook.effects import HANDLERS, ORDER
from payhook.effects.context import EffectContext
from payhook.effects.watch import Watcher
from payhook.outbox.drain import Drainer
from payhook.outbox.retry import RetryPolicy
from payhook.runtime.pump import Companion, Pump
from payhook.runtime.watching import WatchLoop


def build_drainer(settings: Settings, engine: AsyncEngine) -> Drainer[EffectContext]:
    context = EffectContext.build(settings, engine)
    lease = settings.outbox_lease_seconds
    return Drainer(engine, HANDLERS, context, RetryPolicy(settings.outbox_backoff_seconds),
                   order=ORDER, lease=timedelta(seconds=lease),
                   handler_timeout=lease / 2)  # a handler never outlives its lease


async def start_pump(settings: Settings, engine: AsyncEngine,
                     poll_seconds: float = 1.0) -> Pump[EffectContext]:
    """The drain's pump, started, with the chain watcher beside it when an Ethereum node is
    configured; the node is checked first (logged only: a wrong or unreachable node never
    stops the rest of the work)."""
    drainer = build_drainer(settings, engine)
    pump = Pump(drainer, settings.outbox_max_attempts, poll_seconds=poll_seconds,
                keep=settings.retention, beside=watchers(drainer.context))
    await check_web3_node(pump.drainer.context)
    pump.start()
    return pump


def watchers(context: EffectContext) -> list[Companion]:
    if context.chain is None:
        return []
    return [WatchLoop.build(Watcher(context.engine, context.chain, context.settings))]


async def check_web3_node(context: EffectContext) -> None:
    if context.settings.web3_rpc_url:
        from payhook.effects.onchain import check_node

        await check_node(context)


async def close_pump(pump: Pump[EffectContext]) -> None:
    await pump.stop()
    await pump.drainer.context.close()


def keep_out_of_collection() -> None:
    """Once start-up is done: what it built lives as long as the process, so it is moved out of
    the collector's sight, and a full collection under load walks only what the work made (its
    pauses are the web's p99, and the worker's batches of a thousand rows set it off often)."""
    gc.collect()
    gc.freeze()
