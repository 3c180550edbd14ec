"""/healthz says the process is up; /readyz checks the database and Redis and says which is down."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask

from dispatcher.connection import get_redis
from portal import create_app
from portal.extensions import db


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound by us, never listening, so no other
    process can take it while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextmanager
def app_with(test_env: dict[str, str], **overrides: str) -> Iterator[Flask]:
    """An app like the test app but with some settings pointed elsewhere."""
    app = create_app({"TESTING": True, **overrides})
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
            get_redis().close()


def _ready(app: Flask) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json(), time.monotonic() - started


def test_healthz_answers_200(app) -> None:
    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_answers_200_when_database_and_redis_answer(app) -> None:
    status, body, _ = _ready(app)

    assert status == 200
    assert body == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_answers_503_naming_redis_when_redis_is_unreachable(
    test_env: dict[str, str], closed_port: int
) -> None:
    with app_with(test_env, REDIS_URL=f"redis://127.0.0.1:{closed_port}/0") as app:
        status, body, elapsed = _ready(app)

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unavailable: ")
    assert elapsed < 10  # a load balancer's probe must get an answer, not hang


def test_readyz_answers_503_naming_the_database_when_sqlite_cannot_open(
    test_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "directory" / "hookline.db"

    with app_with(test_env, SQLALCHEMY_DATABASE_URI=f"sqlite:///{missing}") as app:
        status, body, _ = _ready(app)

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "unavailable: OperationalError"
    assert body["checks"]["redis"] == "ok"
    assert not missing.parent.exists()


def test_readyz_answers_503_naming_the_database_when_postgresql_is_unreachable(
    test_env: dict[str, str], closed_port: int
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/hookline?connect_timeout=2"

    with app_with(test_env, SQLALCHEMY_DATABASE_URI=url) as app:
        status, body, elapsed = _ready(app)

    assert status == 503
    assert body["checks"]["database"] == "unavailable: OperationalError"
    assert body["checks"]["redis"] == "ok"
    assert elapsed < 10


def test_readyz_reports_both_when_both_are_down(
    test_env: dict[str, str], closed_port: int, tmp_path: Path
) -> None:
    with app_with(
        test_env,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
        REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
    ) as app:
        status, body, _ = _ready(app)

    assert status == 503
    assert set(body["checks"]) == {"database", "redis"}
    assert all(value.startswith("unavailable: ") for value in body["checks"].values())


def test_healthz_answers_200_even_when_dependencies_are_down(
    test_env: dict[str, str], closed_port: int, tmp_path: Path
) -> None:
    with app_with(
        test_env,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
        REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
    ) as app:
        response = app.test_client().get("/healthz")

    assert response.status_code == 200
