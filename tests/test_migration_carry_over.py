"""A database made before Hookline's tables had the hookline_ prefix, or before its history had a
version table of its own, is carried over by the next upgrade with nothing lost; a host's own
tables and Alembic history in the same database are never touched (issue 12)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, Table, func, insert, select, text

from dispatcher.models import Attempt, Delivery, Event, EventType, Subscription, Tenant
from portal.extensions import db
from portal.migrations.carry_over import LEGACY_VERSION_TABLE, VERSION_TABLE
from portal.models import ApiKey, User
from portal.schema import downgrade, upgrade
from tests.test_migrations import (
    _current_revision,
    _head,
    _object_names,
    _postgres_url,
    _schema_differences,
    _tables,
    app_on,
    keep_logging,  # noqa: F401  (autouse: env.py's fileConfig)
    scratch_schema,
)

# The head before the prefix; tests/legacy_schema/ holds the schema its migrations made.
LEGACY_HEAD = "5e9a0c3b7d21"
LEGACY_SCHEMA = Path(__file__).resolve().parent / "legacy_schema"
HOST_REVISION = "a1b2c3d4host"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# One row per table, in the legacy tables' names, parents first.
LEGACY_ROWS = {
    "tenants": {"id": "ten_1", "name": "Acme", "created_at": NOW},
    "users": {
        "id": "usr_1",
        "tenant_id": "ten_1",
        "email": "ada@acme.test",
        "password_hash": "x",
        "created_at": NOW,
    },
    "api_keys": {
        "id": "key_1",
        "tenant_id": "ten_1",
        "name": "ci",
        "prefix": "hl_abc",
        "key_hash": "0" * 64,
        "created_at": NOW,
    },
    "event_types": {
        "id": "ety_1",
        "tenant_id": "ten_1",
        "name": "acme.thing",
        "group": "acme",
        "description": "",
        "example": {"a": 1},
        "archived": False,
        "created_at": NOW,
    },
    "subscriptions": {
        "id": "sub_1",
        "tenant_id": "ten_1",
        "url": "https://acme.test/hook",
        "description": "",
        "events": ["*"],
        "headers": {},
        "is_active": True,
        "secrets_encrypted": "token",
        "consecutive_failures": 0,
        "pause_seconds": 0,
        "signature_scheme": "hmac",
        "created_at": NOW,
        "updated_at": NOW,
    },
    "events": {
        "id": "evt_1",
        "tenant_id": "ten_1",
        "type": "acme.thing",
        "data": {"n": 1},
        "idempotency_key": "k1",
        "fingerprint": "f" * 64,
        "created_at": NOW,
    },
    "deliveries": {
        "id": "dlv_1",
        "tenant_id": "ten_1",
        "event_id": "evt_1",
        "subscription_id": "sub_1",
        "event_type": "acme.thing",
        "status": "pending",
        "priority": False,
        "is_test": False,
        "attempt_count": 1,
        "next_trigger": "auto",
        "next_attempt_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    },
    "attempts": {
        "id": "att_1",
        "tenant_id": "ten_1",
        "delivery_id": "dlv_1",
        "number": 1,
        "trigger": "auto",
        "started_at": NOW,
        "duration_ms": 3,
        "request_headers": {},
        "response_status": 500,
        "response_truncated": False,
    },
}
MODELS = {
    "tenants": Tenant,
    "users": User,
    "api_keys": ApiKey,
    "event_types": EventType,
    "subscriptions": Subscription,
    "events": Event,
    "deliveries": Delivery,
    "attempts": Attempt,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, test_env, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or a scratch schema on PostgreSQL when there is one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'carried.db'}"
        return
    url = _postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 and DATABASE_URL is not PostgreSQL")
    with scratch_schema(url) as scratch:
        yield scratch.render_as_string(hide_password=False)


def _statements(sql: str) -> list[str]:
    code = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", code) if part.strip()]


def _make_legacy_database(engine: Engine, versions: list[str]) -> None:
    """The schema the migrations made at LEGACY_HEAD, one row in each table, and `versions`
    in alembic_version, as such a database was left."""
    schema = (LEGACY_SCHEMA / f"{LEGACY_HEAD}.{engine.dialect.name}.sql").read_text()
    with engine.begin() as connection:
        for statement in _statements(schema):
            connection.exec_driver_sql(statement)
        legacy = MetaData()
        for name, row in LEGACY_ROWS.items():
            connection.execute(insert(Table(name, legacy, autoload_with=connection)), row)
        for version in versions:
            connection.execute(
                text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES (:v)"), {"v": version}
            )


def _fresh_object_names(url: str) -> list[str]:
    """The names a fresh database gets from the migrations (in another SQLite file, or another
    scratch schema)."""
    if url.startswith("sqlite"):
        fresh = url.replace(".db", "-fresh.db")
        with app_on(fresh):
            upgrade()
            return _object_names()
    with scratch_schema(_postgres_url()) as scratch, app_on(scratch):
        upgrade()
        return _object_names()


def test_a_database_from_before_the_prefix_is_carried_over_with_every_row(database) -> None:
    fresh_names = _fresh_object_names(database)
    with app_on(database):
        _make_legacy_database(db.engine, [LEGACY_HEAD])

        upgrade()

        assert _tables() == set(db.metadata.tables) | {VERSION_TABLE}  # no alembic_version
        assert _current_revision() == _head()
        assert _schema_differences() == []
        assert _object_names() == fresh_names  # tables, indexes, keys: named as if made today
        for name, row in LEGACY_ROWS.items():
            found = db.session.get(MODELS[name], row["id"])
            assert found is not None, name
            assert found.created_at == NOW if "created_at" in row else found.started_at == NOW
        assert db.session.get(Event, "evt_1").data == {"n": 1}
        assert db.session.get(Subscription, "sub_1").events == ["*"]

        # The foreign keys point at the renamed tables: a tenant's rows still go with it.
        db.session.execute(text("DELETE FROM hookline_tenants WHERE id = 'ten_1'"))
        db.session.commit()
        for model in MODELS.values():
            assert db.session.scalar(select(func.count()).select_from(model)) == 0, model

        # And the revisions work on it as on a database they made: down to nothing and back.
        db.session.remove()  # its transaction would hold locks the downgrade waits for
        downgrade("base")
        assert _tables() <= {VERSION_TABLE}
        upgrade()
        assert _schema_differences() == []


def test_the_partial_claim_index_keeps_its_where_clause(database) -> None:
    with app_on(database):
        _make_legacy_database(db.engine, [LEGACY_HEAD])
        upgrade()

        with db.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                query = "SELECT sql FROM sqlite_master WHERE name = :name"
            else:
                query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
            definition = connection.scalar(
                text(query), {"name": "ix_hookline_deliveries_pending_due"}
            )
    assert "hookline_deliveries" in definition
    assert re.search(r"WHERE \(?\(?status\)?(::text)? = 'pending'", definition), definition


def test_a_host_revision_sharing_alembic_version_stays_there(database) -> None:
    with app_on(database):
        _make_legacy_database(db.engine, [LEGACY_HEAD, HOST_REVISION])

        upgrade()

        assert _current_revision() == _head()
        with db.engine.connect() as connection:
            held = connection.execute(text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}"))
            assert held.scalars().all() == [HOST_REVISION]


def test_a_hosts_own_tables_and_history_are_left_alone(database) -> None:
    """The host already has `tenants`, `users` and `events` of its own, and its Alembic history
    in alembic_version: Hookline's migrations make their own tables beside them."""
    host_schema = [
        "CREATE TABLE tenants (id VARCHAR(20) PRIMARY KEY, plan VARCHAR(20))",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, tenant_id VARCHAR(20) REFERENCES tenants)",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, what VARCHAR(50))",
        "CREATE INDEX ix_events_created_at ON events (what)",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO tenants VALUES ('org_1', 'gold')",
        "INSERT INTO users VALUES (1, 'org_1')",
        "INSERT INTO events VALUES (1, 'signed up')",
        f"INSERT INTO alembic_version VALUES ('{HOST_REVISION}')",
    ]
    with app_on(database):
        with db.engine.begin() as connection:
            for statement in host_schema:
                connection.exec_driver_sql(statement)
        host_names = _object_names()

        upgrade()

        assert _tables() == set(db.metadata.tables) | {
            VERSION_TABLE,
            "tenants",
            "users",
            "events",
            LEGACY_VERSION_TABLE,
        }
        assert _current_revision() == _head()
        assert set(host_names) <= set(_object_names())
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT * FROM tenants")).all() == [("org_1", "gold")]
            assert connection.execute(text("SELECT * FROM users")).all() == [(1, "org_1")]
            assert connection.scalar(text("SELECT what FROM events")) == "signed up"
            assert connection.scalar(text("SELECT version_num FROM alembic_version")) == (
                HOST_REVISION
            )

        downgrade("base")
        assert _tables() == {VERSION_TABLE, "tenants", "users", "events", LEGACY_VERSION_TABLE}
