"""Database engine tuning that the ORM cannot express."""

from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record) -> None:
    """Make SQLite safe for a web process and workers writing at once.

    WAL lets readers run beside the writer and busy_timeout makes a writer wait for the lock
    instead of failing. pysqlite's default transaction handling is kept on purpose: it opens a
    transaction only at the first write, so a session that has only read holds no lock and no
    stale snapshot while a worker in another process writes.
    """
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
