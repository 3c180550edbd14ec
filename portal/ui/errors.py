"""Error pages for the portal: another tenant's id looks exactly like a missing one."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import NotFound as HTTPNotFound

from portal.extensions import db
from portal.services import NotFound


def register(bp: Blueprint) -> None:
    """Attach the portal's error pages to `bp` (and so to every blueprint nested in it)."""

    @bp.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> tuple[str, int]:
        db.session.rollback()
        return render_template("errors/400.html", reason=error.description), 400

    @bp.errorhandler(NotFound)
    @bp.errorhandler(HTTPNotFound)
    def not_found(error: Exception) -> tuple[str, int]:
        db.session.rollback()
        return render_template("errors/404.html"), 404
