"""Which database errors mean an outage (admit from the last known state) and which do not."""

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from billing.db.errors import database_unreachable, refused_by_database, rolled_back


def wrapped(error: BaseException, invalidated: bool = False) -> DBAPIError:
    """As SQLAlchemy raises a driver's error."""
    return DBAPIError("SELECT quota_admit(...)", {}, error, connection_invalidated=invalidated)


def caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("error,unreachable", [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (TimeoutError(), True),  # connecting timed out
    (wrapped(caused(Exception("adapted"), ConnectionResetError(104, "reset"))), True),
    (wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")), True),  # 08003
    (wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")), True),  # 57P01
    (wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")), True),  # 57P03
    (wrapped(asyncpg.exceptions.TooManyConnectionsError("too many clients")), True),  # 53300
    (wrapped(Exception("connection is closed"), invalidated=True), True),
    # the database answered: not an outage
    (wrapped(asyncpg.exceptions.CheckViolationError("violates check constraint")), False),  # 23514
    (wrapped(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")), False),  # 40P01
    (wrapped(asyncpg.exceptions.QueryCanceledError("statement timeout")), False),  # 57014
    (wrapped(asyncpg.exceptions.InvalidCatalogNameError('database "x" does not exist')), False),  # 3D000
    (PoolTimeout("QueuePool limit of size 10 overflow 0 reached"), False),  # busy, not down
    (ValueError("bad value"), False),
])
def test_database_unreachable(error, unreachable):
    assert database_unreachable(error) is unreachable


@pytest.mark.parametrize("error,refused", [
    (wrapped(asyncpg.exceptions.UntranslatableCharacterError("\\u0000 cannot be converted to text")), True),  # 22P05
    (wrapped(asyncpg.exceptions.CheckViolationError("violates check constraint")), True),  # 23514
    (wrapped(asyncpg.exceptions.ProgramLimitExceededError("index row size exceeds")), True),  # 54000
    (OverflowError("int too big to convert"), True),  # the driver could not encode it
    (wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")), False),
    (ConnectionRefusedError(111, "Connection refused"), False),
])
def test_refused_by_database(error, refused):
    assert refused_by_database(error) is refused


@pytest.mark.parametrize("error,transient", [
    (wrapped(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")), True),  # 40P01
    (wrapped(asyncpg.exceptions.SerializationError("could not serialize access")), True),  # 40001
    (wrapped(asyncpg.exceptions.CheckViolationError("violates check constraint")), False),
    (ConnectionRefusedError(111, "Connection refused"), False),
])
def test_rolled_back(error, transient):
    assert rolled_back(error) is transient
