"""One Alembic chain that builds exactly the models' schema, up and down, on both databases."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.engine import URL

from dispatcher.connection import get_redis
from portal import create_app
from portal.extensions import db
from portal.migrations.carry_over import VERSION_TABLE
from portal.migrations.compare import compare_type
from portal.schema import downgrade, upgrade

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = str(ROOT / "portal" / "migrations")
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"

# The indexes the delivery log and the sweeper depend on (issue 2): tenant + time-sortable id,
# status + next attempt, subscription + status.
REQUIRED_INDEXES = {
    "hookline_deliveries": [
        ("tenant_id", "id"),
        ("status",),
        ("subscription_id", "status"),
    ],
    "hookline_events": [("tenant_id", "id")],
    "hookline_attempts": [("delivery_id",)],
}


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """migrations/env.py runs logging.config.fileConfig, which disables every logger that exists
    and replaces the root handlers; undo that so later tests' log capture still works."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = {
        name: (logger.disabled, logger.level)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.handlers[:], root.level = handlers, level
    for name, (disabled, logger_level) in loggers.items():
        logger = logging.getLogger(name)
        logger.disabled, logger.level = disabled, logger_level


@contextmanager
def app_on(url: str | URL) -> Iterator[Flask]:
    """A Hookline app (with an app context) on the database at `url`."""
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
            get_redis().close()


def _head() -> str:
    heads = ScriptDirectory(MIGRATIONS).get_heads()
    assert len(heads) == 1, heads
    return heads[0]


def _schema_differences() -> list:
    """What autogenerate would write to make the database match the models (none, we hope)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": compare_type, "version_table": VERSION_TABLE}
        )
        return compare_metadata(context, db.metadata)


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names())


# What every table, index and constraint of Hookline's is called: a host's database holds its
# own `tenants`, `users_pkey`, `ix_events_created_at` …, never ours.
HOOKLINE_NAMES = ("hookline_", "ix_hookline_", "uq_hookline_")


def _object_names() -> list[str]:
    """The names of the database's tables, indexes and constraints (SQLite's internal
    sqlite_autoindex_… aside), sorted."""
    with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        else:
            query = (
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() UNION ALL "
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() UNION ALL "
                "SELECT conname FROM pg_constraint WHERE connamespace = "
                "CAST(current_schema() AS regnamespace)"
            )
        return sorted(connection.execute(text(query)).scalars())


def _current_revision() -> str | None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def _assert_full_cycle() -> None:
    """Upgrade an empty database, check it, downgrade to nothing, upgrade again."""
    model_tables = set(db.metadata.tables)
    assert _tables() == set()

    upgrade()
    assert _tables() == model_tables | {VERSION_TABLE}
    assert _current_revision() == _head()
    assert _schema_differences() == []
    assert [name for name in _object_names() if not name.startswith(HOOKLINE_NAMES)] == []

    downgrade("base")
    assert _tables() <= {VERSION_TABLE}
    assert _current_revision() is None

    upgrade()
    assert _tables() == model_tables | {VERSION_TABLE}
    assert _schema_differences() == []


def test_the_migration_chain_has_a_single_head() -> None:
    script = ScriptDirectory(MIGRATIONS)

    heads = script.get_heads()
    bases = script.get_bases()

    assert len(heads) == 1, f"several heads, merge them: {heads}"
    assert len(bases) == 1, f"several bases: {bases}"
    chain = list(script.walk_revisions(base="base", head=heads[0]))
    assert len(chain) == len(list(script.walk_revisions()))  # no revision off the main line


def test_the_test_database_matches_the_models(app) -> None:
    assert _current_revision() == _head()
    assert _schema_differences() == []


def test_upgrade_downgrade_upgrade_on_an_empty_sqlite_file(test_env, tmp_path: Path) -> None:
    with app_on(f"sqlite:///{tmp_path / 'empty.db'}"):
        _assert_full_cycle()


def test_the_migrated_schema_has_the_indexes_the_queries_need(test_env, tmp_path: Path) -> None:
    with app_on(f"sqlite:///{tmp_path / 'indexed.db'}"):
        upgrade()
        inspector = inspect(db.engine)
        for table, wanted in REQUIRED_INDEXES.items():
            indexed = [tuple(index["column_names"]) for index in inspector.get_indexes(table)]
            for columns in wanted:
                assert any(found[: len(columns)] == columns for found in indexed), (table, columns)


def _postgres_url() -> URL | None:
    """PostgreSQL to test on: DATABASE_URL if it is PostgreSQL, else a local server if one
    answers on 127.0.0.1:5432, else None."""
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql")):
        url = make_url(configured.replace("postgres://", "postgresql://", 1))
    else:
        try:
            socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        except OSError:
            return None
        url = make_url(LOCAL_POSTGRES)
    return url.set(drivername="postgresql+psycopg")


@contextmanager
def scratch_schema(url: URL) -> Iterator[URL]:
    """A new, empty schema in that database, dropped afterwards; the shared schema is untouched.
    The yielded URL puts the scratch schema first on the search path."""
    name = f"hookline_scratch_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        yield url.update_query_dict({"options": f"-csearch_path={name}"})
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def test_upgrade_on_an_empty_postgresql_database(test_env, tmp_path: Path) -> None:
    """On PostgreSQL when there is one (always in CI's second pass). With no PostgreSQL at all,
    the same cycle runs on a second empty SQLite file in a fresh directory instead."""
    url = _postgres_url()
    if url is None:
        (tmp_path / "fallback").mkdir()
        with app_on(f"sqlite:///{tmp_path / 'fallback' / 'empty.db'}"):
            _assert_full_cycle()
        return

    with scratch_schema(url) as scratch, app_on(scratch):
        assert db.engine.dialect.name == "postgresql"
        _assert_full_cycle()
        scratch_name = scratch.query["options"].split("=", 1)[1]
        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT current_schema()")) == scratch_name
