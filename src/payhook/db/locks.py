"""One holder at a time across processes, for work that must not run twice side by side.

PostgreSQL: a session-level advisory lock, taken with ``pg_try_advisory_lock`` on a connection
kept for it alone. The lock lives exactly as long as that connection: a holder that is killed,
or whose connection drops, releases it, and another process takes it at its next try. SQLite
(the embedded default, one process) needs none: every claim succeeds.
"""

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("payhook.db")

WATCHER_LOCK = 0x70617968  # "payh": the advisory lock namespace; the second key says what


class ProcessLock:
    def __init__(self, engine: AsyncEngine, key: int):
        self.engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def hold(self) -> bool:
        """Whether this process holds the lock now: kept if its connection still answers,
        else tried for (never waiting)."""
        if not self.needed:
            return True
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                return True
            except Exception as error:  # noqa: BLE001 - the connection is gone, and the lock
                log.warning("lost the advisory lock %s (%s)", self.key, type(error).__name__)
                await self.release()
        return await self._try()

    async def _try(self) -> bool:
        conn = await self.engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            taken = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:a, :b)"),
                                           {"a": WATCHER_LOCK, "b": self.key}))
        except BaseException:
            await conn.close()
            raise
        if not taken:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def release(self) -> None:
        """Give the lock up: its connection is closed, never returned to the pool holding it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
            finally:
                await conn.close()
