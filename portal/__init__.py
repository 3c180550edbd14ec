"""Hookline's Flask application: the portal, the JSON API and the CLI around the dispatcher."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import dispatcher
from portal import database  # noqa: F401  (registers the SQLite engine hooks)
from portal.config import engine_options, load_config
from portal.extensions import csrf, db, login_manager, migrate

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, then `config` overrides (tests use it)."""
    from portal import api, cli, health, metrics, security, ui  # here: `import dispatcher` skips

    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(load_config(os.environ, Path(app.instance_path)))
    if config:
        app.config.update(config)
        if "SQLALCHEMY_DATABASE_URI" in config and "SQLALCHEMY_ENGINE_OPTIONS" not in config:
            # the pool settings must suit the database actually used, not DATABASE_URL's
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
                config["SQLALCHEMY_DATABASE_URI"]
            )

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    dispatcher.init_app(app)

    if app.config["HOOKLINE_TRUSTED_PROXIES"]:
        # Behind N proxies, take the client address and scheme from their X-Forwarded-* headers,
        # so login throttling counts real clients rather than the proxy.
        hops = app.config["HOOKLINE_TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    security.init_app(app)
    app.register_blueprint(health.bp)
    metrics.init_app(app)
    api.init_app(app)
    ui.init_app(app)
    cli.init_app(app)
    return app
