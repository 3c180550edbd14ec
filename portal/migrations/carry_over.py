"""Carry a database made before issue 12 over to Hookline's own names, once.

Hookline's tables used to be called `tenants`, `users`, `events`, … and its Alembic history lived
in `alembic_version`: in a host's database those clash with the host's own. Every revision now
names them `hookline_<name>` (indexes `ix_hookline_…`, PostgreSQL's key names
`hookline_<table>_pkey` …) and the history lives in `hookline_alembic_version`.

A database whose `alembic_version` holds one of OUR revision ids is such an older database (any
revision of it: all of them used the old names). Before Alembic reads the history, `carry_over`
renames its tables, indexes and constraints as the revisions now name them, copies our row into
`hookline_alembic_version` and drops `alembic_version` if nothing else is left in it (a host's
own revision in it stays where it is). All of it is one transaction: it happens entirely or not
at all, and rows are renamed with their tables, never copied out and back (except SQLite's two
tables with named unique constraints, rebuilt in place, since SQLite cannot rename those).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Engine, inspect, text

VERSION_TABLE = "hookline_alembic_version"
LEGACY_VERSION_TABLE = "alembic_version"
PREFIX = "hookline_"
LEGACY_TABLES = (
    "tenants",
    "users",
    "api_keys",
    "event_types",
    "subscriptions",
    "events",
    "deliveries",
    "attempts",
)

log = logging.getLogger(__name__)

Execute = Callable[[str, dict[str, Any]], Any]


def prefixed(name: str, table: str) -> str:
    """The name a revision now gives the index or constraint `name` of legacy table `table`:
    ix_events_created_at → ix_hookline_events_created_at, events_pkey → hookline_events_pkey."""
    if re.match(rf"(ix|uq)_(?!{PREFIX})", name):
        return f"{name[:3]}{PREFIX}{name[3:]}"
    if name.startswith(f"{table}_"):
        return PREFIX + name
    return name


def carry_over(engine: Engine, revisions: Collection[str]) -> bool:
    """Bring an older Hookline database (see the module docstring) to the current names; True
    if there was one. `revisions` are the ids of Hookline's migrations."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables:
            return False
        held = connection.execute(text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")).scalars()
        held = list(held)
    ours = [revision for revision in held if revision in revisions]
    if not ours:
        return False  # a host's own history: not ours to touch
    legacy = [table for table in LEGACY_TABLES if table in tables]
    clashing = [table for table in legacy if PREFIX + table in tables]
    if clashing:
        raise RuntimeError(
            f"both {clashing[0]!r} and {PREFIX + clashing[0]!r} exist: cannot carry this "
            "database over to Hookline's prefixed table names"
        )
    keep_legacy_table = len(ours) < len(held)
    if engine.dialect.name == "sqlite":
        _carry_over_sqlite(engine, legacy, ours, keep_legacy_table)
    else:
        _carry_over_postgresql(engine, legacy, ours, keep_legacy_table)
    log.info(
        "carried over a database made before Hookline's prefixed names: %d tables renamed, "
        "revision %s moved to %s",
        len(legacy),
        ", ".join(ours),
        VERSION_TABLE,
    )
    return True


def _carry_over_postgresql(
    engine: Engine, legacy: list[str], ours: list[str], keep_legacy_table: bool
) -> None:
    """Rename in place: tables, then their constraints (which renames the indexes behind keys),
    then the remaining indexes. PostgreSQL's DDL is transactional."""
    with engine.begin() as connection:
        for table in legacy:
            new = PREFIX + table
            connection.exec_driver_sql(f'ALTER TABLE "{table}" RENAME TO "{new}"')
            constraints = connection.execute(
                text("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"),
                {"t": new},
            ).scalars()
            for name in list(constraints):
                if (renamed := prefixed(name, table)) != name:
                    connection.exec_driver_sql(
                        f'ALTER TABLE "{new}" RENAME CONSTRAINT "{name}" TO "{renamed}"'
                    )
            indexes = connection.execute(
                text(
                    "SELECT indexname FROM pg_indexes "
                    "WHERE schemaname = current_schema() AND tablename = :t"
                ),
                {"t": new},
            ).scalars()
            for name in list(indexes):
                if (renamed := prefixed(name, table)) != name:
                    connection.exec_driver_sql(f'ALTER INDEX "{name}" RENAME TO "{renamed}"')
        _move_version(lambda sql, params: connection.execute(text(sql), params), ours,
                      keep_legacy_table)  # fmt: skip


def _carry_over_sqlite(
    engine: Engine, legacy: list[str], ours: list[str], keep_legacy_table: bool
) -> None:
    """SQLite renames a table (and the references to it) in place, but has no ALTER INDEX:
    indexes are dropped and made again from their own SQL (so a partial index keeps its WHERE).
    A named constraint lives in its table's SQL, so those tables are rebuilt: with foreign keys
    off, or dropping the old copy would cascade to the rows that point at it."""
    raw = engine.raw_connection()
    try:
        connection: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
        saved_isolation = connection.isolation_level
        connection.isolation_level = None  # our own BEGIN and COMMIT: all of it or nothing
        enforced = connection.execute("PRAGMA foreign_keys").fetchone()[0]
        connection.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
        try:
            connection.execute("BEGIN IMMEDIATE")
            for table in legacy:
                _rename_sqlite_table(connection, table)
            problems = connection.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"foreign keys broken by the carry-over: {problems[:5]}")
            _move_version(connection.execute, ours, keep_legacy_table)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")
            connection.isolation_level = saved_isolation
    finally:
        raw.close()


def _rename_sqlite_table(connection: sqlite3.Connection, table: str) -> None:
    new = PREFIX + table
    connection.execute(f'ALTER TABLE "{table}" RENAME TO "{new}"')
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",
        (new,),
    ).fetchall()
    (table_sql,) = connection.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (new,)
    ).fetchone()
    renamed_sql = re.sub(
        r"CONSTRAINT (\w+)", lambda m: f"CONSTRAINT {prefixed(m[1], table)}", table_sql
    )
    if renamed_sql != table_sql:  # rebuild: the indexes go with the old copy
        scratch = f"{new}__carry_over"
        connection.execute(
            re.sub(rf'^CREATE TABLE "?{new}"?', f'CREATE TABLE "{scratch}"', renamed_sql)
        )
        connection.execute(f'INSERT INTO "{scratch}" SELECT * FROM "{new}"')
        connection.execute(f'DROP TABLE "{new}"')
        connection.execute(f'ALTER TABLE "{scratch}" RENAME TO "{new}"')
    for name, sql in indexes:
        if renamed_sql == table_sql:
            connection.execute(f'DROP INDEX "{name}"')
        pattern = rf'^(CREATE (?:UNIQUE )?INDEX )"?{re.escape(name)}"?'
        connection.execute(re.sub(pattern, rf'\1"{prefixed(name, table)}"', sql))


def _move_version(execute: Execute, ours: list[str], keep_legacy_table: bool) -> None:
    """Our revision into our own version table (made as Alembic makes it), out of the old one."""
    execute(
        f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
        f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))",
        {},
    )
    for revision in ours:
        execute(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)", {"v": revision})
        if keep_legacy_table:
            execute(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :v", {"v": revision})
    if not keep_legacy_table:
        execute(f"DROP TABLE {LEGACY_VERSION_TABLE}", {})
