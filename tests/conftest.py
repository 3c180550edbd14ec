"""Shared fixtures: a real database (SQLite, or PostgreSQL via DATABASE_URL), a real Redis
(embedded, or REDIS_URL), a real HTTP receiver on loopback, and an app per test."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, text

from dispatcher.connection import ensure_embedded_redis, get_redis, stop_embedded_redis
from portal import create_app
from portal.extensions import db
from portal.migrations.carry_over import LEGACY_TABLES, LEGACY_VERSION_TABLE, VERSION_TABLE
from portal.models import (
    ApiKey,
    Attempt,
    Delivery,
    Event,
    EventType,
    OperatorKey,
    PortalLink,
    Subscription,
    Tenant,
    User,
)
from portal.schema import upgrade
from portal.services.event_types import sync_standard_types
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def test_env(tmp_path_factory):
    """Environment shared by the test app and any worker process a test starts."""
    base = tmp_path_factory.mktemp("hookline")
    embedded = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        embedded = base / "redis.db"
        redis_url = ensure_embedded_redis(embedded)
    env = {
        "HOOKLINE_ENV": "development",
        "SECRET_KEY": "test-secret-key",
        "HOOKLINE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "HOOKLINE_QUEUE_PREFIX": f"hookline-test-{os.getpid()}",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{base / 'test.db'}",
        "REDIS_URL": redis_url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name in ("HOOKLINE_RETRY_SCHEDULE", "HOOKLINE_ALLOW_PRIVATE_TARGETS"):
            mp.delenv(name, raising=False)
        _migrate_fresh()
        yield env
    if embedded is not None:
        stop_embedded_redis(embedded, save=False)


def _migrate_fresh() -> None:
    app = create_app({"TESTING": True})
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            # and what a run from before issue 12 left: unprefixed tables, alembic_version
            for table in (VERSION_TABLE, LEGACY_VERSION_TABLE, *reversed(LEGACY_TABLES)):
                connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        upgrade()
        sync_standard_types()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


TEST_CONFIG = {
    "TESTING": True,
    "WTF_CSRF_ENABLED": True,
    "HOOKLINE_RETRY_SCHEDULE": [300, 3600, 21600],
}


def _clean_database() -> None:
    for model in (Attempt, Delivery, Event, Subscription, ApiKey, User, PortalLink, OperatorKey):
        db.session.execute(delete(model))
    db.session.execute(delete(EventType).where(EventType.tenant_id.is_not(None)))
    db.session.execute(delete(Tenant))
    db.session.commit()


@pytest.fixture
def app(test_env):
    """A fresh app on an emptied database and a flushed Redis database."""
    app = create_app(dict(TEST_CONFIG))
    with app.app_context():
        _clean_database()
        get_redis().flushdb()
        yield app
        db.session.remove()
        db.engine.dispose()
        get_redis().close()  # else GC finds the socket open: a ResourceWarning, an error here


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 that records requests and answers as scripted."""
    server = Receiver().start()
    yield server
    server.stop()


class FakeClock:
    """A clock tests move by hand instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def clock(monkeypatch):
    """Freeze the dispatcher's clock at the real now; move it with `clock.advance(...)`."""
    fake = FakeClock(datetime.now(UTC))
    monkeypatch.setattr("dispatcher.clock.now", fake.now)
    return fake


@pytest.fixture
def run_worker(app):
    """Run an RQ worker in this process until the queues are empty (with due scheduled jobs).

    It runs in an app context of its own, so it has its own database session, as a real
    worker process would, and leaves the test's session alone."""
    from dispatcher import worker

    def run() -> None:
        with app.app_context():
            worker.run(burst=True)

    return run
