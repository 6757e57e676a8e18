"""What a database error says: the rows were refused for what they hold, or the database
cannot be reached. Anything else (a statement that failed for another reason, a pool that
is exhausted) is neither, and must not be taken for an outage."""

from typing import Iterator

# SQLSTATE classes that blame the data, not the database: data exception (a NUL in text, a
# number out of range), integrity constraint violation, program limit exceeded (an index
# row too large).
_REJECTING_CLASSES = ("22", "23", "54")
# Connection exception, and the server shutting down, crashed or starting up, or out of
# connection slots: no statement can run.
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it: SQLAlchemy's wrapped driver error, then `__cause__`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "orig", None) or current.__cause__


def refused_by_database(error: BaseException) -> bool:
    """Whether `error` says the rows were refused for what they hold (retrying cannot help),
    as opposed to the database being unreachable or busy (retrying will)."""
    for current in _causes(error):
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate.startswith(_REJECTING_CLASSES)
        if isinstance(current, (ValueError, TypeError, OverflowError)):  # a value the driver cannot encode
            return True
    return False


def database_unreachable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached at all: no connection could be
    made or kept (refused, reset, timed out connecting), or the server says it is going
    away or cannot take connections."""
    for current in _causes(error):
        if getattr(current, "connection_invalidated", False):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate.startswith(_UNREACHABLE_STATES)
        if isinstance(current, (OSError, TimeoutError)):
            return True
    return False


def rolled_back(error: BaseException) -> bool:
    """Whether the server rolled the statement back for a transient conflict (SQLSTATE class
    40: a deadlock or a serialization failure): nothing stayed, so one retry is safe."""
    return any(str(getattr(current, "sqlstate", None) or "").startswith("40") for current in _causes(error))
