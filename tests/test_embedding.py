"""`Hookline.init_app` in a host app: the host's database session, tenants and login.

The host here is the smallest that is still honest: its own Flask-SQLAlchemy instance and model,
its own session-based login, and Hookline mounted at /webhooks. (examples/platform is the
complete one; tests/test_wheel.py drives it from an installed wheel.)
"""

from __future__ import annotations

import os
import uuid

import pytest
from flask import Flask, session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import generate_csrf
from sqlalchemy import String, create_engine, func, make_url, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dispatcher import publish
from dispatcher.models import Delivery, Event, Subscription
from dispatcher.store import db
from portal import Hookline, schema
from portal.services import event_types
from portal.services import subscriptions as subscription_service


class HostBase(DeclarativeBase):
    pass


host_db = SQLAlchemy(model_class=HostBase)


class Invoice(host_db.Model):
    """The host's own model, in the host's own metadata."""

    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(32))


def _host_database(tmp_path) -> str:
    """The host's database: a file of its own, or on PostgreSQL a scratch database beside the
    suite's (the host's tables and Hookline's must not mix with the suite's own)."""
    url = os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgres"):
        return f"sqlite:///{tmp_path / 'host.db'}"
    target = make_url(url).set(drivername="postgresql+psycopg")
    target = target.set(database=f"{target.database}_embedding")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    admin.dispose()
    return target.render_as_string(hide_password=False)


def _host(tmp_path, redis_url: str | None) -> tuple[Flask, SQLAlchemy, Hookline]:
    app = Flask("host", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="host-secret",
        SQLALCHEMY_DATABASE_URI=_host_database(tmp_path),
        REDIS_URL=redis_url,
        HOOKLINE_RETRY_SCHEDULE="60,120",  # text, as a host reading its environment passes it
        TESTING=True,
    )
    host_db.init_app(app)
    hookline = Hookline()
    hookline.init_app(
        app,
        db=host_db,
        url_prefix="/webhooks",
        current_tenant=lambda: session.get("org_id"),
        login_url="/login",
    )

    @app.post("/host/login/<org_id>")
    def login(org_id: str):
        session["org_id"] = org_id
        return {"csrf": generate_csrf()}

    @app.post("/host/invoices/<invoice_id>")
    def create_invoice(invoice_id: str):
        host_db.session.add(Invoice(id=invoice_id, org_id=session["org_id"]))
        publish("invoice.created", {"invoice_id": invoice_id}, tenant_id=session["org_id"])
        if invoice_id.endswith("_bad"):
            host_db.session.rollback()
            return {"error": "refused"}, 422
        host_db.session.commit()
        return {"ok": True}, 201

    with app.app_context():
        schema.upgrade()
        host_db.create_all()
        event_types.sync_standard_types()
        hookline.ensure_tenant("org_a", "Acme")
        hookline.ensure_tenant("org_b", "Bolt")
        host_db.session.commit()
    return app, host_db, hookline


@pytest.fixture
def host(tmp_path, test_env):
    app, host_db, _ = _host(tmp_path, test_env["REDIS_URL"])
    with app.app_context():
        yield app
        host_db.session.remove()
        host_db.engine.dispose()


def _signed_in(app, org_id: str):
    client = app.test_client()
    csrf = client.post(f"/host/login/{org_id}").get_json()["csrf"]
    return client, csrf


def test_the_host_commit_publishes_and_its_rollback_leaves_nothing(host):
    client, _ = _signed_in(host, "org_a")
    make_endpoint("org_a", "http://127.0.0.1:9/a")
    assert client.post("/host/invoices/inv_1").status_code == 201
    assert client.post("/host/invoices/inv_2_bad").status_code == 422

    events = db.session.scalars(select(Event)).all()
    assert [e.data for e in events] == [{"invoice_id": "inv_1"}]
    assert events[0].tenant_id == "org_a"  # the host's own tenant id
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 1
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def make_endpoint(tenant_id: str, url: str) -> Subscription:
    subscription, _ = subscription_service.create(tenant_id, url=url, events=["invoice.created"])
    db.session.commit()
    return subscription


def test_the_portal_sends_a_visitor_without_a_session_to_the_host_login(host):
    response = host.test_client().get("/webhooks/endpoints")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert "%2Fwebhooks%2Fendpoints" in response.headers["Location"]


def test_the_portal_shows_the_host_tenants_endpoints_and_not_anothers(host):
    mine = make_endpoint("org_a", "http://127.0.0.1:9/mine")
    theirs = make_endpoint("org_b", "http://127.0.0.1:9/theirs")
    client, _ = _signed_in(host, "org_a")

    page = client.get("/webhooks/endpoints")
    assert page.status_code == 200
    assert b"127.0.0.1:9/mine" in page.data and b"theirs" not in page.data
    assert client.get(f"/webhooks/endpoints/{mine.id}").status_code == 200
    assert client.get(f"/webhooks/endpoints/{theirs.id}").status_code == 404


def test_a_host_tenant_hookline_was_never_told_about_gets_a_404(host):
    client, _ = _signed_in(host, "org_unknown")
    assert client.get("/webhooks/endpoints").status_code == 404


def test_the_api_serves_the_host_session_and_requires_its_csrf_token(host):
    client, csrf = _signed_in(host, "org_a")
    body = {"url": "http://127.0.0.1:9/api", "events": ["invoice.created"]}

    listed = client.get("/api/v1/webhooks/subscriptions")
    assert listed.status_code == 200 and listed.get_json()["data"] == []
    refused = client.post("/api/v1/webhooks/subscriptions", json=body)
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("/csrf")
    made = client.post("/api/v1/webhooks/subscriptions", json=body, headers={"X-CSRFToken": csrf})
    assert made.status_code == 201
    assert made.get_json()["url"] == body["url"]

    other, _ = _signed_in(host, "org_b")
    assert other.get(f"/api/v1/webhooks/subscriptions/{made.get_json()['id']}").status_code == 404
    anonymous = host.test_client().get("/api/v1/webhooks/subscriptions")
    assert anonymous.status_code == 401


def test_settings_come_from_the_host_config_with_hooklines_defaults(host):
    assert host.config["HOOKLINE_RETRY_SCHEDULE"] == [60, 120]  # parsed from the host's text
    assert host.config["HOOKLINE_DELIVERY_TIMEOUT"] == 15  # the standalone default
    assert host.config["SECRET_KEY"] == "host-secret"  # the host's own, untouched


def test_the_host_gets_hooklines_commands_under_one_group_only(host):
    commands = host.cli.list_commands(None)
    assert "hookline" in commands
    assert not {"worker", "tenants", "maintenance"} & set(commands)
    group = host.cli.get_command(None, "hookline")
    assert {"upgrade", "worker", "api-keys", "maintenance"} <= set(group.list_commands(None))


def test_the_hookline_api_keys_command_makes_a_key_for_a_host_tenant(host):
    result = host.test_cli_runner().invoke(
        args=["hookline", "api-keys", "create", "--tenant", "org_a"]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    client = host.test_client()
    response = client.get(
        "/api/v1/webhooks/subscriptions", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200


def test_ensure_tenant_refuses_an_id_it_cannot_keep(host):
    from portal.services import ServiceError

    hookline = Hookline()
    for bad in ("", "has space", "x" * 65, "../etc", "a\x00b"):
        with pytest.raises(ServiceError):
            hookline.ensure_tenant(bad, "Name")


def test_ensure_tenant_keeps_a_uuid_and_publishes_under_it(host):
    """A host whose tenant ids are UUIDs (36 characters) embeds Hookline as it is."""
    tenant_id = str(uuid.uuid4())
    hookline = Hookline()
    hookline.ensure_tenant(tenant_id, "Acme")
    make_endpoint(tenant_id, "http://127.0.0.1:9/a")
    event = publish("invoice.created", {"invoice_id": "inv_1"}, tenant_id=tenant_id)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Event, event.id).tenant_id == tenant_id
    delivery = db.session.scalars(select(Delivery).where(Delivery.event_id == event.id)).one()
    assert delivery.tenant_id == tenant_id
