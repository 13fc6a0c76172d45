"""Nudging the arq worker after a commit, coalesced: at most one enqueue in flight, and every
nudge that arrives meanwhile folds into one more. A lost nudge (Redis down, flushed) only delays
work until the worker's next poll of the outbox table — the table, not Redis, is the record.

At most one nudge waits in Redis: every nudge is the job id :data:`DRAIN_JOB`, and arq queues no
job whose id is queued or running already. A queued nudge covers whatever is committed before
it runs; one that is running has woken a pump whose drain claims until nothing is due and then
looks for the next due row, so a commit meanwhile is claimed by it. A thousand webhooks taken
while the worker was down or busy cost it one job, not a thousand."""

import asyncio
import logging

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from redis.exceptions import RedisError

log = logging.getLogger("payhook.outbox")

DRAIN_JOB = "drain"


class ArqNudger:
    def __init__(self, redis_url: str):
        self._settings = RedisSettings.from_dsn(redis_url)
        self._settings.conn_retries = 0
        self._pool: ArqRedis | None = None
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def nudge(self) -> None:
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send(), name="payhook-nudge")

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            try:
                if self._pool is None:
                    self._pool = await create_pool(self._settings)
                await self._pool.enqueue_job(DRAIN_JOB, _job_id=DRAIN_JOB)
            except (RedisError, OSError) as error:
                log.warning("nudge not sent (%s); the worker's poll will pick the work up",
                            type(error).__name__)
                await self._drop_pool()
                return

    async def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.aclose()
            except (RedisError, OSError):
                log.debug("closing a broken Redis pool failed")

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drop_pool()
