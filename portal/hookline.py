"""`Hookline`: the portal, the JSON API and the commands, mounted into a Flask app.

A platform embeds Hookline in its own app, with its own database session, tenants and login:

    from portal import Hookline
    from dispatcher import publish

    hookline = Hookline()
    hookline.init_app(app, db=db, url_prefix="/webhooks",
                      current_tenant=lambda: session.get("org_id"), login_url="/login")
    hookline.ensure_tenant("org_42", "Acme")
    publish("invoice.created", {...}, tenant_id="org_42")  # the host's commit publishes

The standalone app (`create_app()`) is the first such host: it passes its own database and no
`current_tenant`, so the portal signs in Hookline's own users instead of the host's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from flask import Flask, abort, current_app, g
from flask_login import current_user
from flask_sqlalchemy import SQLAlchemy

import dispatcher
from dispatcher.store import db
from portal.extensions import csrf, login_manager
from portal.models import Tenant

EXTENSION = "hookline"
DEFAULT_URL_PREFIX = "/webhooks"
DEFAULT_API_PREFIX = "/api/v1/webhooks"


class Hookline:
    """Hookline inside a Flask app (one object may serve several apps, as Flask extensions do)."""

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        if app is not None:
            self.init_app(app, **options)

    def init_app(
        self,
        app: Flask,
        *,
        db: SQLAlchemy,
        url_prefix: str = DEFAULT_URL_PREFIX,
        current_tenant: Callable[[], str | None] | None = None,
        login_url: str | None = None,
        api_prefix: str = DEFAULT_API_PREFIX,
    ) -> None:
        """Mount Hookline on `app`.

        `db` is the app's Flask-SQLAlchemy object: Hookline's tables live in its database and
        are written through its session. `current_tenant()` names the tenant of the request
        (None: not signed in, sent to `login_url`); without it, the portal has its own users
        and sign-in page (the standalone app). Settings come from `app.config` (`REDIS_URL`,
        `HOOKLINE_*`), then the environment, with the standalone app's defaults and guards
        (dispatcher/settings.py); production also needs the app's SECRET_KEY and database."""
        from portal import api, cli, ui

        if current_tenant is not None and not login_url:
            raise ValueError("Hookline.init_app: current_tenant needs a login_url to send to")
        dispatcher.init_app(app, db=db, also_required=_host_requirements(app))
        app.extensions[EXTENSION] = _Mount(current_tenant, login_url, url_prefix)
        if current_tenant is None:
            # Hookline's own users sign in (the standalone app): its login, app-wide CSRF.
            csrf.init_app(app)
            login_manager.init_app(app)
        api.init_app(app, url_prefix=api_prefix)
        ui.init_app(app, url_prefix=url_prefix)
        cli.init_app(app)
        if current_tenant is not None:
            _exempt_api_from_host_csrf(app)

    def ensure_tenant(self, tenant_id: str, name: str):
        """The tenant with the host's own id `tenant_id`, made if it does not exist yet (and
        renamed to `name` if it does). Idempotent; in the host's session, which the host
        commits (so a sign-up that rolls back leaves no tenant behind)."""
        from portal.services import accounts

        return accounts.ensure_tenant(tenant_id, name)


def _host_requirements(app: Flask) -> dict[str, bool]:
    """Whether the app has what production needs beside Hookline's own settings: a SECRET_KEY
    and a database (its own config, else the environment the standalone app reads)."""
    environ = os.environ
    secret = str(app.config.get("SECRET_KEY") or environ.get("SECRET_KEY") or "").strip()
    database = app.config.get("SQLALCHEMY_DATABASE_URI") or environ.get("DATABASE_URL")
    return {"SECRET_KEY": bool(secret), "DATABASE_URL": bool(str(database or "").strip())}


def _exempt_api_from_host_csrf(app: Flask) -> None:
    """A host's own app-wide CSRFProtect would refuse every API call made with an API key (no
    form token); the API checks the CSRF token itself where a cookie is what authenticates.
    Exempted now if the host's CSRFProtect exists, else at the first request (its check runs
    after ours when it was set up after Hookline)."""

    def exempt() -> None:
        host_csrf = app.extensions.get("csrf")
        if host_csrf is not None and host_csrf is not csrf and not done:
            for blueprint in app.extensions["hookline-api-blueprints"]:
                host_csrf.exempt(blueprint)
            done.append(True)

    done: list[bool] = []

    exempt()
    app.before_request(exempt)


class _Mount:
    """How Hookline is mounted on one app."""

    def __init__(
        self,
        current_tenant: Callable[[], str | None] | None,
        login_url: str | None,
        url_prefix: str,
    ) -> None:
        self.current_tenant = current_tenant
        self.login_url = login_url
        self.url_prefix = url_prefix

    @property
    def embedded(self) -> bool:
        """True when the host's login names the tenant; False for Hookline's own users."""
        return self.current_tenant is not None


def mount(app: Flask | None = None) -> _Mount:
    """How Hookline is mounted on `app` (the current app by default)."""
    return (app or current_app).extensions[EXTENSION]


def request_tenant_id() -> str | None:
    """The request's tenant, or None when nobody (or nobody Hookline knows) is signed in."""
    if not mount().embedded:
        return current_user.tenant_id if current_user.is_authenticated else None
    named = mount().current_tenant()
    if not named:
        return None
    if g.get("hookline_tenant_checked") != named:
        if db.session.get(Tenant, str(named)) is None:
            abort(404)  # the host never called ensure_tenant for it: nothing of it to show
        g.hookline_tenant_checked = named
    return str(named)
