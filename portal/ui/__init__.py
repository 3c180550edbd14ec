"""The tenant admin portal: server-rendered pages, HTMX partials, one blueprint per feature.

Every feature blueprint nests under the `ui` blueprint, so endpoint names (`ui.endpoints.show`)
cannot clash with the JSON API's, and the error pages below apply to the portal only.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask
from htmx_flask import Htmx

from dispatcher.store import db
from portal.extensions import login_manager
from portal.models import User
from portal.ui import api_keys, auth, catalog, dashboard, deliveries, endpoints, errors, filters

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
for child in (auth.bp, dashboard.bp, endpoints.bp, deliveries.bp, catalog.bp, api_keys.bp):
    bp.register_blueprint(child)
errors.register(bp)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in admin for the session's user id (None logs the session out)."""
    return db.session.get(User, user_id)


def init_app(app: Flask, url_prefix: str = "") -> None:
    """Register the portal on `app` under `url_prefix` ("" is the root): HTMX-aware requests,
    login, template helpers, blueprints, and the portal's static files at <prefix>/static/."""
    Htmx(app)
    login_manager.login_view = "ui.auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    filters.register(app)
    app.register_blueprint(bp, url_prefix=url_prefix.rstrip("/"))
