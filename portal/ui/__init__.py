"""The tenant admin portal: server-rendered pages, HTMX partials, one blueprint per feature.

Every feature blueprint nests under the `ui` blueprint, so endpoint names (`ui.endpoints.show`)
cannot clash with the JSON API's, and the error pages below apply to the portal only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from htmx_flask import Htmx
from werkzeug.exceptions import HTTPException

from dispatcher.store import db
from portal.extensions import csrf, login_manager
from portal.hookline import mount, request_tenant_id
from portal.models import User
from portal.ui import (
    api_keys,
    auth,
    catalog,
    dashboard,
    deliveries,
    endpoints,
    errors,
    formatting,
    links,
)

# Flask-WTF's settings with their defaults, for an embedded portal (see `init_app`).
CSRF_DEFAULTS: dict[str, Any] = {
    "WTF_CSRF_ENABLED": True,
    "WTF_CSRF_METHODS": ["POST", "PUT", "PATCH", "DELETE"],
    "WTF_CSRF_FIELD_NAME": "csrf_token",
    "WTF_CSRF_HEADERS": ["X-CSRFToken", "X-CSRF-Token"],
    "WTF_CSRF_TIME_LIMIT": 3600,
    "WTF_CSRF_SSL_STRICT": True,
}

# Templates under templates/hookline/ and files at <prefix>/static/: a host app's own
# base.html, auth/login.html or /static route never shadows or clashes with the portal's.
PACKAGE = Path(__file__).resolve().parent.parent
bp = Blueprint(
    "ui",
    __name__,
    template_folder=PACKAGE / "templates",
    static_folder=PACKAGE / "static",
    static_url_path="/static",
)
for child in (
    auth.bp,
    links.bp,
    dashboard.bp,
    endpoints.bp,
    deliveries.bp,
    catalog.bp,
    api_keys.bp,
):
    bp.register_blueprint(child)
errors.register(bp)


@bp.before_request
def _csrf_when_embedded() -> None:
    """Embedded, the host's app has no CSRFProtect of ours (it would guard the host's own views
    too), so the portal checks its own unsafe requests; standalone, the app-wide one does."""
    if mount().embedded:
        csrf.protect()


@bp.context_processor
def _account() -> dict[str, Any]:
    """Who the top bar shows: Hookline's signed-in admin (with Sign out), or, embedded, just
    that the host's user is in (signing out is the host's)."""
    try:
        tenant = request_tenant_id()
    except HTTPException:
        tenant = None
    if tenant is None:
        return {"hookline_account": None}
    email = None if mount().embedded else current_user.email
    by_link = not mount().embedded and getattr(current_user, "signed_in_by_link", False)
    return {"hookline_account": {"tenant_id": tenant, "email": email, "by_link": by_link}}


@login_manager.user_loader
def load_user(user_id: str) -> User | links.LinkPrincipal | None:
    """The signed-in admin for the session's user id, or the principal of a sign-in link's
    session (`link:<id>`); None logs the session out."""
    if user_id.startswith(links.PRINCIPAL_PREFIX):
        return links.load_principal(user_id)
    return db.session.get(User, user_id)


def init_app(app: Flask, url_prefix: str = "") -> None:
    """Register the portal on `app` under `url_prefix` ("" is the root): HTMX-aware requests,
    login, template helpers, blueprints, and the portal's static files at <prefix>/static/."""
    Htmx(app)
    login_manager.login_view = "ui.auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    formatting.register(app)
    if mount(app).embedded:
        # What CSRFProtect.init_app would add, without its app-wide check.
        for name, default in CSRF_DEFAULTS.items():
            app.config.setdefault(name, default)
        app.config["WTF_CSRF_METHODS"] = set(app.config["WTF_CSRF_METHODS"])
        app.jinja_env.globals.setdefault("csrf_token", generate_csrf)
    app.register_blueprint(bp, url_prefix=url_prefix.rstrip("/"))
