"""The example platform's app: `flask --app examples.platform.app run` (from the repository's
root, or from any directory that holds `examples/platform/`).

Hookline is mounted with three lines in `create_app()`; everything else is the platform's own."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask, session

from .extensions import csrf, db, hookline
from .views import bp

HERE = Path(__file__).resolve().parent


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the platform: its settings, its database, its pages, and Hookline under /webhooks.

    Hookline reads its own settings (`REDIS_URL`, `HOOKLINE_*`) from `app.config`, then from
    the environment; in development every one of them has a default."""
    instance = Path(os.environ.get("PLATFORM_INSTANCE_PATH") or HERE / "instance")
    app = Flask(__name__, instance_path=str(instance))
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY") or _development_secret(instance),
        SQLALCHEMY_DATABASE_URI=_database_url(instance),
    )
    app.config.update(config or {})

    db.init_app(app)
    csrf.init_app(app)  # the platform's own forms; Hookline's portal checks its own
    hookline.init_app(
        app,
        db=db,
        url_prefix="/webhooks",
        current_tenant=lambda: session.get("org_id"),
        login_url="/login",
    )
    app.register_blueprint(bp)
    app.cli.add_command(create_tables)
    return app


@click.command("create-tables")
def create_tables() -> None:
    """Create the platform's own tables (a real platform runs its own migrations here;
    Hookline's tables are `flask hookline upgrade`'s business)."""
    db.create_all()
    click.echo("the platform's tables exist")


def _database_url(instance: Path) -> str:
    """DATABASE_URL (PostgreSQL through psycopg 3), else an SQLite file in the instance folder."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'platform.db'}"
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _development_secret(instance: Path) -> str:
    """A session key kept in the instance folder, so sign-ins survive a restart."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
