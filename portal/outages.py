"""Which errors mean a server Hookline needs (the database, Redis) cannot be reached right now.

Both surfaces answer those 503 with Retry-After (the API as a problem, the portal as a page) so
a client can tell an outage, which it should retry, from a bug, which it should report. One
rule here keeps the API and the portal from disagreeing about which is which.
"""

from __future__ import annotations

import sqlite3

import redis
from sqlalchemy import exc as sa_exc

# Seconds a client is asked to wait: about what a database failover or a Redis restart takes.
RETRY_AFTER_SECONDS = 5

# SQLite reports a bug (no such table, bad SQL) with the same OperationalError as a file that
# cannot be opened; only these messages are the database being unavailable.
_SQLITE_UNAVAILABLE = ("unable to open database", "database is locked", "disk i/o error")

# The classes worth registering an error handler for; unreachable() has the final word.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    redis.ConnectionError,
    redis.TimeoutError,
)


def _database_unreachable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.TimeoutError):
        return True  # no connection came free from the pool in time
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if isinstance(error.orig, sqlite3.Error):
        text = str(error.orig).lower()
        return any(message in text for message in _SQLITE_UNAVAILABLE)
    # psycopg raises OperationalError for refused, dropped and timed-out connections and for
    # a server shutting down or starting up; InterfaceError for a connection already closed.
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)


def unreachable(error: BaseException | None) -> str | None:
    """ "database" or "redis" when `error` (or what caused it) says that server is unreachable."""
    seen = 0
    while error is not None and seen < 5:
        if _database_unreachable(error):
            return "database"
        if isinstance(error, redis.ConnectionError | redis.TimeoutError):
            return "redis"
        error = getattr(error, "original_exception", None) or error.__cause__ or error.__context__
        seen += 1
    return None
