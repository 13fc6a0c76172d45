"""Which database errors answer 503 (an outage) and which connections are discarded: the
driver's error decides, raw or wrapped by SQLAlchemy."""

import asyncpg
import pytest
from sqlalchemy import exc as sa

from payhook.api.errors import is_storage_outage
from payhook.db.outages import is_connection_lost

# asyncpg's own words under pg_terminate_backend (seen here).
STATE_CLASH = asyncpg.InternalClientError(
    "cannot switch to state 12; another operation (2) is in progress")


def wrapped(driver_error: BaseException, invalidated: bool = False) -> sa.DBAPIError:
    """As SQLAlchemy raises it: its DBAPIError, from the adapter's error, from asyncpg's."""
    adapter_error = Exception(str(driver_error))
    adapter_error.__cause__ = driver_error
    error = sa.DBAPIError("SELECT 1", None, adapter_error, connection_invalidated=invalidated)
    error.__cause__ = adapter_error
    return error


@pytest.mark.parametrize("error", [
    STATE_CLASH,
    wrapped(STATE_CLASH),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    # Wrapped before asyncpg saw the socket close: SQLAlchemy did not count it as a disconnect.
    wrapped(asyncpg.AdminShutdownError("terminating connection due to administrator command")),
    wrapped(asyncpg.ConnectionDoesNotExistError("connection was closed")),
    wrapped(ValueError("anything"), invalidated=True),
    ConnectionResetError(),
])
def test_a_lost_connection_is_an_outage_and_is_discarded(error):
    assert is_storage_outage(error)
    assert is_connection_lost(error)


@pytest.mark.parametrize("error", [
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    sa.TimeoutError("QueuePool limit reached"),
    asyncpg.InterfaceError("connection is closed"),
])
def test_a_database_refusing_work_is_an_outage(error):
    assert is_storage_outage(error)


@pytest.mark.parametrize("error", [
    asyncpg.UniqueViolationError("duplicate key value"),
    wrapped(asyncpg.UndefinedTableError('relation "x" does not exist')),
    # What we sent, not the connection: a value out of range for its parameter.
    asyncpg.DataError("invalid input for query argument $1: 99999999999"),
    wrapped(asyncpg.DataError("invalid input for query argument $1: 99999999999")),
    RuntimeError("a bug of ours"),
])
def test_a_bug_of_ours_is_not_an_outage(error):
    assert not is_storage_outage(error)
    assert not is_connection_lost(error)
