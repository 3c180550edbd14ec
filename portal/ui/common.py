"""Helpers every portal view shares: the tenant in scope, full page or HTMX partial, login."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required


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
    """Require a signed-in admin for every view of `bp` (so no view can forget it)."""

    @bp.before_request
    @login_required
    def _signed_in() -> None:
        return None

    return bp


def safe_next(target: str | None, default: str) -> str:
    """A post-login redirect that stays on this site (no scheme, no host, not `//evil`)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target
