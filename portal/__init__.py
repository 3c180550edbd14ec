"""Hookline's Flask application: the portal, the JSON API and the CLI around the dispatcher."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dispatcher.settings import get_settings
from dispatcher.version import VERSION as __version__
from portal import database  # noqa: F401  (registers the SQLite engine hooks)
from portal.config import engine_options, load_config
from portal.extensions import db
from portal.hookline import Hookline

__all__ = ["Hookline", "__version__", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, then `config` overrides (tests use it)."""
    from portal import health, metrics, security  # here: `import dispatcher` skips
    from portal.api import operator as operator_api

    # No app-level templates or /static: the ui blueprint serves both, as it does in a host app.
    app = Flask(
        __name__,
        static_folder=None,
        template_folder=None,
        instance_path=configured_instance_path(config or {}, os.environ),
    )
    app.config.from_mapping(load_config(os.environ, Path(app.instance_path)))
    if config:
        app.config.update(config)
        if "SQLALCHEMY_DATABASE_URI" in config and "SQLALCHEMY_ENGINE_OPTIONS" not in config:
            # the pool settings must suit the database actually used, not DATABASE_URL's
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
                config["SQLALCHEMY_DATABASE_URI"]
            )
    app.config["HOOKLINE_INSTANCE_PATH"] = app.instance_path

    db.init_app(app)

    security.init_app(app)
    app.register_blueprint(health.bp)
    metrics.init_app(app)
    # The standalone app is Hookline's first host: its own database, users and sign-in page.
    # Mounting it reads the settings (dispatcher/settings.py).
    Hookline().init_app(app, db=db, url_prefix="")

    hops = get_settings(app).trusted_proxies
    if hops:
        # Behind N proxies, take the client address and scheme from their X-Forwarded-* headers,
        # so login throttling counts real clients rather than the proxy.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # Service mode, for a platform that runs Hookline beside it: the operator API.
    operator_api.init_app(app)
    return app


def configured_instance_path(config: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """`HOOKLINE_INSTANCE_PATH` from `config`, else the environment, made absolute against the
    working directory; None when unset, which leaves Flask's own rule: `instance/` beside the
    package in a source checkout, `<sys.prefix>/var/portal-instance` once installed, so the
    folder never lands inside site-packages and does not move with the working directory."""
    configured = config.get("HOOKLINE_INSTANCE_PATH") or environ.get("HOOKLINE_INSTANCE_PATH")
    return str(Path(configured).expanduser().resolve()) if configured else None
