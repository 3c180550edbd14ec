"""Error pages for the portal: another tenant's id looks exactly like a missing one, and an
outage of the database or Redis is a page saying so (503), not a 500."""

from __future__ import annotations

import contextlib
import logging

from flask import Blueprint, current_app, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.wrappers import Response

from dispatcher.store import db
from portal import outages
from portal.services import NotFound

log = logging.getLogger(__name__)


def register(bp: Blueprint) -> None:
    """Attach the portal's error pages to `bp` (and so to every blueprint nested in it)."""

    @bp.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> tuple[str, int]:
        db.session.rollback()
        return render_template("hookline/errors/400.html", reason=error.description), 400

    @bp.errorhandler(NotFound)
    @bp.errorhandler(HTTPNotFound)
    def not_found(error: Exception) -> tuple[str, int]:
        db.session.rollback()
        return render_template("hookline/errors/404.html"), 404

    for outage in outages.OUTAGE_ERRORS:
        bp.register_error_handler(outage, unavailable)


def unavailable(error: Exception) -> Response:
    """The database or Redis cannot be reached: a page that says so, with Retry-After.

    The page asks nobody who is signed in (no layout, no context processors), since finding
    that out needs the database that just failed. Anything else is re-raised, to be the 500
    it is.
    """
    server = outages.unreachable(error)
    if server is None:
        raise error
    with contextlib.suppress(SQLAlchemyError):  # the connection to roll back may be gone
        db.session.rollback()
    log.warning("%s unavailable in %s %s: %s", server, request.method, request.path, error)
    seconds = outages.RETRY_AFTER_SECONDS
    # Rendered without the context processors: Flask-Login's would load the signed-in user.
    template = current_app.jinja_env.get_template("hookline/errors/503.html")
    page = template.render(retry_after=seconds)
    response = make_response(page, 503)
    response.headers["Retry-After"] = str(seconds)
    return response
