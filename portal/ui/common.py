"""Helpers every portal view shares: the tenant in scope, full page or HTMX partial, login."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, make_response, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.extensions import login_manager


def tenant_id() -> str:
    """The signed-in admin's tenant: the only tenant any portal page may show or change."""
    return current_user.tenant_id


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
        if current_user.is_authenticated:
            return None
        if request.htmx:
            page = urlsplit(request.htmx.current_url or "")
            here = page.path + (f"?{page.query}" if page.query else "")
            response = make_response("", 401)
            response.headers["HX-Redirect"] = url_for(
                "ui.auth.login", next=safe_next(here, url_for("ui.dashboard.index"))
            )
            return response
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
