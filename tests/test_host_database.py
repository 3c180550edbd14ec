"""Hookline in a host's database, through the host's own Flask-SQLAlchemy instance (issue 12):
`dispatcher.store.db` is whatever instance the current app registered with
`dispatcher.init_app(app, db=...)`, so the host's commit publishes and its rollback leaves
nothing, and Hookline's migrations make its tables beside the host's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, func, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import dispatcher
from dispatcher import store
from dispatcher.connection import get_redis
from dispatcher.models import Delivery, Event, EventType, Tenant
from dispatcher.store import db
from portal import schema
from portal.config import engine_options, load_config
from portal.extensions import db as hooklines_own_db
from portal.migrations.carry_over import VERSION_TABLE
from portal.services.event_types import sync_standard_types
from tests.factories import make_subscription
from tests.test_migrations import (
    _postgres_url,
    keep_logging,  # noqa: F401  (autouse: env.py's fileConfig)
    scratch_schema,
)

ROOT = Path(__file__).resolve().parent.parent


class HostBase(DeclarativeBase):
    """The host's declarative base: a metadata of its own, not Hookline's."""


host_db = SQLAlchemy(model_class=HostBase)


class Invoice(host_db.Model):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32))


class HostUser(host_db.Model):
    """The host's own `users` table: the name Hookline's users table had before its prefix."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200))


@pytest.fixture(params=["sqlite", "postgresql"])
def host(request, test_env, tmp_path: Path) -> Iterator[Flask]:
    """A host app with its own db and models, its tables made first (as a platform's would
    be, long before it adopts Hookline), then Hookline's migrations applied to its database."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'host.db'}"
        else:
            server = _postgres_url()
            if server is None:
                pytest.skip("no PostgreSQL on 127.0.0.1:5432 and DATABASE_URL is not PostgreSQL")
            url = stack.enter_context(scratch_schema(server)).render_as_string(hide_password=False)
        app = Flask("host", instance_path=str(tmp_path / "instance"))
        app.config.from_mapping(load_config(os.environ, tmp_path / "instance"))
        app.config.update(
            TESTING=True, SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS=engine_options(url)
        )
        host_db.init_app(app)
        dispatcher.init_app(app, db=host_db)
        with app.app_context():
            host_db.create_all()
            schema.upgrade()
            sync_standard_types()
            host_db.session.commit()
            yield app
            host_db.session.remove()
            host_db.engine.dispose()
            get_redis().close()


def test_hooklines_tables_live_beside_the_hosts_in_one_database(host) -> None:
    tables = set(inspect(host_db.engine).get_table_names())

    assert {"invoices", "users"} <= tables
    assert {"hookline_tenants", "hookline_users", "hookline_events", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # the host's own history, if any, is its own


def test_the_proxy_is_the_hosts_instance_and_never_hooklines_own(host) -> None:
    assert store.registered() is host_db
    assert db.session is host_db.session
    assert db.engine is host_db.engine
    assert host.extensions["sqlalchemy"] is host_db
    with pytest.raises(RuntimeError):  # Hookline's own instance was never set up on the host
        hooklines_own_db.engine  # noqa: B018


def test_the_hosts_session_reads_and_writes_hooklines_models(host) -> None:
    """Hookline's models belong to another declarative base than the host's; Flask-SQLAlchemy's
    session puts them on its default engine all the same."""
    host_db.session.add(Tenant(id="org_42", name="Acme"))
    host_db.session.add(Invoice(id="inv_1", tenant_id="org_42"))
    host_db.session.commit()

    assert host_db.session.get(Tenant, "org_42").name == "Acme"
    assert host_db.session.scalar(select(func.count()).select_from(EventType)) >= 50
    assert db.session.get(Invoice, "inv_1").tenant_id == "org_42"


def test_a_host_rollback_leaves_no_event_and_a_commit_leaves_one(host, receiver) -> None:
    host_db.session.add(Tenant(id="org_42", name="Acme"))
    host_db.session.commit()
    make_subscription("org_42", receiver.url())

    host_db.session.add(Invoice(id="inv_1", tenant_id="org_42"))
    dispatcher.publish("invoice.created", {"invoice_id": "inv_1"}, tenant_id="org_42")
    host_db.session.rollback()

    assert host_db.session.scalar(select(func.count()).select_from(Event)) == 0
    assert host_db.session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert host_db.session.get(Invoice, "inv_1") is None

    host_db.session.add(Invoice(id="inv_2", tenant_id="org_42"))
    event = dispatcher.publish("invoice.created", {"invoice_id": "inv_2"}, tenant_id="org_42")
    host_db.session.commit()

    stored = host_db.session.scalars(select(Event)).all()
    assert [(e.id, e.tenant_id, e.data) for e in stored] == [
        (event.id, "org_42", {"invoice_id": "inv_2"})
    ]
    assert host_db.session.scalar(select(Delivery.status)) == "pending"
    assert host_db.session.get(Invoice, "inv_2") is not None


def test_each_app_resolves_its_own_database(test_env, tmp_path: Path) -> None:
    first, second = SQLAlchemy(), SQLAlchemy()
    apps = []
    for name, instance in (("first", first), ("second", second)):
        app = Flask(name)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / name}.db"
        instance.init_app(app)
        store.init_app(app, instance)
        apps.append(app)

    for app, instance in zip(apps, (first, second), strict=True):
        with app.app_context():
            assert db.session is instance.session
            assert db.engine.url.database.endswith(f"{app.name}.db")
            instance.engine.dispose()


def test_an_app_without_a_registered_database_says_what_to_do() -> None:
    unregistered = Flask("bare")
    with unregistered.app_context(), pytest.raises(RuntimeError, match=r"dispatcher\.init_app"):
        db.session  # noqa: B018

    with pytest.raises(RuntimeError, match=r"db\.init_app"):
        store.init_app(unregistered, SQLAlchemy())  # not initialised on that app


def test_a_host_that_never_imports_the_portal_uses_the_models_through_its_session(
    tmp_path: Path,
) -> None:
    """Without the portal, Hookline's metadata carries no Flask-SQLAlchemy bind key at all: its
    tables go to the host's default engine."""
    script = f"""
import sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from dispatcher import store
from dispatcher.models import Base, Tenant
from dispatcher.store import db

host_db = SQLAlchemy()
app = Flask("host")
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///{tmp_path / "bare.db"}"
host_db.init_app(app)
store.init_app(app, host_db)
with app.app_context():
    assert "bind_key" not in Base.metadata.info
    Base.metadata.create_all(host_db.engine)
    db.session.add(Tenant(id="org_1", name="Acme"))
    db.session.commit()
    host_db.session.remove()
    print(host_db.session.scalars(select(Tenant.name)).all(), "portal" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['Acme'] False"
