"""Security headers on every response: the portal's pages, the API, health checks and files.

The policy allows scripts and styles from this origin only, so an injected `<script>`, inline
handler or inline style does nothing even if escaping were ever missed. The templates carry no
inline script or style for that reason (static/js/app.js does the behaviour). HSTS is sent only
in production, where the app is served over HTTPS; in development it would pin a developer's
browser to HTTPS on localhost.
"""

from __future__ import annotations

from flask import Flask, Response, request

from dispatcher.settings import get_settings

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"

# The portal's files (served by its blueprint) and an app's own: public, so cacheable.
STATIC_ENDPOINTS = frozenset({"ui.static", "static"})

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """Set the headers a view did not set itself; keep pages with secrets out of caches."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if get_settings().production:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    # Pages and API answers can hold signing secrets and tenant data: no shared or disk cache.
    if request.endpoint not in STATIC_ENDPOINTS and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response the app sends, errors included."""
    app.after_request(add_security_headers)
