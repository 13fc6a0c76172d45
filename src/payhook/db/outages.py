"""Which database errors are an outage (answer 503, retry later) rather than a bug of ours, and
which of those mean the connection itself is gone and must be discarded, not pooled again.

asyncpg's errors reach us raw (the :class:`~payhook.ingest.postgres.PostgresWriter` pool; and
SQLAlchemy re-raises what is not a DBAPI error, such as ``InternalClientError``, unwrapped) or
wrapped by SQLAlchemy with the driver's error as the cause: the driver's error decides.
"""

import asyncpg
from sqlalchemy import exc as sa

# The server ended the session (pg_terminate_backend, shutdown, crash, a session timeout: a
# FATAL, then the socket closes), the socket failed, or asyncpg's protocol state no longer
# matches the server's. That last one is seen under pg_terminate_backend: a pooled connection
# that has read the server's FATAL but not yet its EOF answers the next query with
# ``InternalClientError: cannot switch to state 12; another operation (2) is in progress``.
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
    asyncpg.DatabaseDroppedError, asyncpg.IdleSessionTimeoutError,
    asyncpg.IdleInTransactionSessionTimeoutError, asyncpg.InternalClientError, OSError,
)

# The database refuses new work for now, or the client could not use it.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.InterfaceError,
    sa.OperationalError, sa.InterfaceError, sa.TimeoutError,
)

# asyncpg's InterfaceErrors about what we sent (a value out of range, say), not the connection.
_OUR_INPUT: tuple[type[BaseException], ...] = (
    asyncpg.DataError, asyncpg.ClientConfigurationError, asyncpg.UnsupportedClientFeatureError,
    asyncpg.UnsupportedServerFeatureError,
)


def _chain(error: BaseException) -> list[BaseException]:
    """The error and its causes (``raise … from``), outermost first: the last is the driver's."""
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    return chain


def is_connection_lost(error: BaseException) -> bool:
    """Whether the connection that raised ``error`` can no longer be used."""
    chain = _chain(error)
    return isinstance(chain[-1], _CONNECTION_LOST) or any(
        isinstance(cause, sa.DBAPIError) and cause.connection_invalidated for cause in chain)


def is_storage_outage(error: BaseException) -> bool:
    """Whether the database could not be reached or used, as opposed to a bug of ours."""
    if is_connection_lost(error):
        return True
    chain = _chain(error)
    return not isinstance(chain[-1], _OUR_INPUT) and any(
        isinstance(cause, _UNAVAILABLE) for cause in chain)
