"""Helpers every portal view shares: the tenant in scope, full page or HTMX partial, login."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from portal.extensions import login_manager
from portal.hookline import mount, request_tenant_id


def tenant_id() -> str:
    """The tenant of this request, the only one any portal page may show or change: the
    host's `current_tenant()` when Hookline is embedded, else the signed-in admin's."""
    return request_tenant_id()  # `protect` has made sure there is one


def _login_page(here: str) -> str:
    """Where a visitor without a session signs in: the host's login page, or Hookline's."""
    if mount().embedded:
        return f"{mount().login_url}?{urlencode({'next': here})}"
    return url_for("ui.auth.login", next=safe_next(here, url_for("ui.dashboard.index")))


def wants_partial() -> bool:
    """True for an HTMX request that swaps part of a page (not a boosted or history load)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(template: str, partial: str | None = None, /, **context: Any) -> str:
    """The partial for an HTMX request, the whole page otherwise (same route, same data)."""
    if partial is not None and wants_partial():
        return render_template(partial, **context)
    return render_template(template, **context)


def protect(bp: Blueprint) -> Blueprint:
    """Require a signed-in admin for every view of `bp` (so no view can forget it).

    An HTMX request from a page whose session has ended gets `HX-Redirect` to the login page,
    so the whole page goes there instead of a login form being swapped into a table cell.
    """

    @bp.before_request
    def _signed_in() -> Response | None:
        if request_tenant_id() is not None:
            return None
        if request.htmx:
            page = urlsplit(request.htmx.current_url or "")
            here = page.path + (f"?{page.query}" if page.query else "")
            response = make_response("", 401)
            response.headers["HX-Redirect"] = _login_page(here)
            return response
        if mount().embedded:
            return redirect(_login_page(request.full_path.rstrip("?")))
        return login_manager.unauthorized()

    return bp


def safe_next(target: str | None, default: str) -> str:
    """A post-login redirect that stays on this site (no scheme, no host, not `//evil`)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or not target.isprintable():
        return default  # a NUL or a line break has no place in a Location header
    return target
