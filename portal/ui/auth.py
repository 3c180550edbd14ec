"""Sign in and out. One generic failure message, and failures throttled per email and IP."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from portal.services import accounts
from portal.ui import ratelimit
from portal.ui.common import safe_next
from portal.ui.forms import LoginForm

bp = Blueprint("auth", __name__)

FAILED = "That email and password do not match an account."
THROTTLED = "Too many failed sign-in attempts. Wait a few minutes and try again."


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """The sign-in form; on success, a fresh session and a redirect to where the admin was going."""
    if current_user.is_authenticated:
        return redirect(url_for("ui.dashboard.index"))
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("hookline/auth/login.html", form=form), status
    email, ip = form.email.data, request.remote_addr or "unknown"
    if ratelimit.is_blocked(email, ip):
        return render_template("hookline/auth/login.html", form=form, error=THROTTLED), 429
    user = accounts.authenticate(email, form.password.data)
    if user is None:
        ratelimit.record_failure(email, ip)
        return render_template("hookline/auth/login.html", form=form, error=FAILED), 401
    ratelimit.clear(email, ip)
    target = safe_next(request.args.get("next"), url_for("ui.dashboard.index"))
    session.clear()  # no session fixation: the signed-in session starts empty
    g.pop("csrf_token", None)  # and gets a new CSRF token, not the one cached for this request
    login_user(user)
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    """Sign out (a POST with a CSRF token, so no other site can sign the admin out)."""
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("ui.auth.login"))
