"""Outages answered as outages: with the database or Redis unreachable the API answers 503
problem+json with Retry-After and the portal a 503 page, promptly; never a 500, never a hang.

Each outage is real: a Redis of the test's own that it kills, a PostgreSQL of the test's own
(initdb/pg_ctl in a temporary directory) that it stops with `pg_ctl -m immediate`, and for
SQLite a database path that cannot be opened. The shared servers are never touched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dispatcher.connection import get_redis
from portal import create_app
from portal.api import API_PREFIX
from portal.config import engine_options
from portal.extensions import db
from portal.models import Delivery
from portal.schema import upgrade
from portal.services import accounts
from portal.services import deliveries as delivery_service
from portal.services.event_types import sync_standard_types
from tests.conftest import TEST_CONFIG
from tests.factories import make_subscription
from tests.hardening.conftest import close_app
from tests.servers import PostgresServer, RedisServer, postgres_bin
from tests.ui.conftest import PASSWORD, FreshContextClient, csrf_token

UNAVAILABLE = "https://hookline.dev/problems/service-unavailable"
PROMPT = 5.0  # seconds an outage may take to be answered


def _client(app: Flask) -> FlaskClient:
    app.test_client_class = FreshContextClient
    return app.test_client()


def _seed(receiver) -> tuple[str, str, str]:
    """A tenant with an admin, an API key and an endpoint: (tenant id, email, API key)."""
    tenant = accounts.create_tenant("Outage Inc")
    email = "ops@outage.test"
    accounts.create_user(tenant.id, email, PASSWORD)
    _, key = accounts.create_api_key(tenant.id, "ops")
    db.session.commit()
    make_subscription(tenant.id, receiver.url())
    return tenant.id, email, key


def _sign_in(client: FlaskClient, email: str) -> None:
    data = {"email": email, "password": PASSWORD, "csrf_token": csrf_token(client)}
    assert client.post("/login", data=data).status_code == 302


def _timed(call, *args, **kwargs):
    started = time.monotonic()
    response = call(*args, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < PROMPT, f"took {elapsed:.1f} s"
    return response


def _publish(client: FlaskClient, key: str):
    return _timed(
        client.post,
        API_PREFIX + "/events",
        json={"type": "invoice.created", "data": {"invoice_id": "inv_1"}},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "outage-1"},
    )


def assert_api_unavailable(response) -> None:
    """A 503 problem document with Retry-After and no trace of the underlying error."""
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    problem = response.get_json()
    assert problem["type"] == UNAVAILABLE
    assert problem["status"] == 503
    assert "Retry after" in problem["detail"]
    body = response.get_data(as_text=True)
    for leak in ("Traceback", "OperationalError", "psycopg", "sqlite3", "ConnectionError"):
        assert leak not in body


def assert_page_unavailable(response) -> None:
    """The portal's friendly 503 page with Retry-After."""
    assert response.status_code == 503, response.get_data(as_text=True)[:500]
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_data(as_text=True)
    assert "temporarily unavailable" in body
    for leak in ("Traceback", "OperationalError", "psycopg", "sqlite3", "ConnectionError"):
        assert leak not in body


def _readyz_says(client: FlaskClient, server: str) -> None:
    response = _timed(client.get, "/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"][server].startswith("unavailable")


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def dead_redis_app(app, tmp_path: Path) -> Iterator[Flask]:
    """The app on the test database with a Redis of its own that has been killed."""
    server = RedisServer(tmp_path)
    server.start()
    outage = create_app({**TEST_CONFIG, "REDIS_URL": server.url})
    server.kill()
    yield outage
    close_app(outage)


def test_publish_succeeds_while_redis_is_down(app, dead_redis_app, receiver) -> None:
    _tenant_id, _email, key = _seed(receiver)

    response = _publish(_client(dead_redis_app), key)

    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["deliveries"] == 1
    db.session.expire_all()
    delivery = db.session.query(Delivery).one()
    assert delivery.status == "pending"  # the sweeper enqueues it when Redis is back


def test_portal_pages_work_while_redis_is_down(app, dead_redis_app, receiver) -> None:
    _seed(receiver)
    client = _client(dead_redis_app)
    _sign_in(client, "ops@outage.test")  # the login throttle lets attempts through

    for path in ("/", "/endpoints", "/deliveries", "/event-types", "/api-keys"):
        assert _timed(client.get, path).status_code == 200, path
    _readyz_says(client, "redis")


def test_a_redis_outage_reaching_a_view_is_a_503(
    app, dead_redis_app, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tenant_id, email, key = _seed(receiver)
    client = _client(dead_redis_app)
    _sign_in(client, email)

    def needs_redis(*args, **kwargs):
        get_redis().ping()  # the killed server: a real ConnectionError

    monkeypatch.setattr(delivery_service, "list_deliveries", needs_redis)

    api = _timed(client.get, API_PREFIX + "/deliveries", headers={"Authorization": f"Bearer {key}"})
    assert_api_unavailable(api)
    assert_page_unavailable(_timed(client.get, "/deliveries"))


# --- SQLite ----------------------------------------------------------------------------------


@pytest.fixture
def unopenable_sqlite_app(app, tmp_path: Path) -> Iterator[Flask]:
    """The app pointed at a SQLite file that cannot be opened.

    The file's directory is a regular file, which even root cannot open a database under (a
    directory without permissions would not stop a test running as root).
    """
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    blocker.chmod(0)
    url = f"sqlite:///{blocker / 'hookline.db'}"
    outage = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": {}}
    )
    yield outage
    close_app(outage)


def test_api_answers_503_while_sqlite_cannot_be_opened(
    app, unopenable_sqlite_app, receiver
) -> None:
    _tenant_id, _email, key = _seed(receiver)  # in the real test database
    client = _client(unopenable_sqlite_app)
    auth = {"Authorization": f"Bearer {key}"}

    assert_api_unavailable(_publish(client, key))
    assert_api_unavailable(_timed(client.get, API_PREFIX + "/subscriptions", headers=auth))
    _readyz_says(client, "database")


def test_portal_answers_a_503_page_while_sqlite_cannot_be_opened(
    app, unopenable_sqlite_app, receiver
) -> None:
    _tenant_id, email, _key = _seed(receiver)
    working = _client(app)
    _sign_in(working, email)
    client = _client(unopenable_sqlite_app)
    client.set_cookie("session", working.get_cookie("session").value)  # same SECRET_KEY

    for path in ("/", "/endpoints", "/deliveries", "/login"):
        assert_page_unavailable(_timed(client.get, path))
    signed_out = _client(unopenable_sqlite_app)
    data = {"email": email, "password": PASSWORD, "csrf_token": csrf_token(signed_out)}
    assert_page_unavailable(_timed(signed_out.post, "/login", data=data))


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL this test may stop (skipped only where initdb is not installed)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("initdb is not installed")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


def test_postgres_stopped_mid_service_is_a_503_and_recovery_needs_no_restart(
    test_env, own_postgres: PostgresServer, receiver
) -> None:
    outage = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": own_postgres.url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(own_postgres.url),
        }
    )
    try:
        with outage.app_context():
            upgrade()
            sync_standard_types()
            db.session.commit()
            _tenant_id, email, key = _seed(receiver)
            db.session.remove()
        api, portal = _client(outage), _client(outage)
        _sign_in(portal, email)
        assert portal.get("/deliveries").status_code == 200  # the pool holds live connections

        own_postgres.stop("immediate")

        assert_api_unavailable(_publish(api, key))
        auth = {"Authorization": f"Bearer {key}"}
        assert_api_unavailable(_timed(api.get, API_PREFIX + "/subscriptions", headers=auth))
        for path in ("/", "/deliveries"):
            assert_page_unavailable(_timed(portal.get, path))
        _readyz_says(api, "database")

        own_postgres.start()

        assert _publish(api, key).status_code == 202
        assert portal.get("/deliveries").status_code == 200
        assert api.get("/readyz").status_code == 200
    finally:
        close_app(outage)
