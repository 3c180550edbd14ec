"""Bearer-key authentication and the body checks every API request passes before its view."""

from __future__ import annotations

import json
import math

from flask import Blueprint, Response, g, request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from dispatcher.store import db
from portal.api.errors import malformed_json, problem
from portal.hookline import mount, request_tenant_id
from portal.services import accounts

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def current_tenant_id() -> str:
    """The tenant whose API key authenticated this request."""
    return g.hookline_tenant_id


def unauthorized(detail: str, realm: str = "hookline") -> Response:
    """The 401 problem, with the bearer challenge for `realm`."""
    return problem(
        401,
        "unauthorized",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
    )


def bearer_token() -> str | None:
    """The token of `Authorization: Bearer <token>`, or None when there is none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _host_session() -> Response | None:
    """Embedded, a request without an API key may come from the host's own frontend: its
    session names the tenant (the host's `current_tenant()`), and a change must carry the
    portal's CSRF token in `X-CSRFToken`, as a cookie alone proves nothing about who sent it."""
    tenant_id = request_tenant_id()
    if tenant_id is None:
        return unauthorized(
            "Send an API key as 'Authorization: Bearer <key>', or sign in to the host app."
        )
    if request.method in _BODY_METHODS or request.method == "DELETE":
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError as exc:
            return problem(403, "csrf", "CSRF token missing or invalid", str(exc))
    g.hookline_tenant_id = tenant_id
    return None


def authenticate() -> Response | None:
    """Resolve `Authorization: Bearer <key>` to a tenant (or, embedded, the host's session),
    or answer 401."""
    if "Authorization" not in request.headers and mount().embedded:
        return _host_session()
    token = bearer_token()
    if token is None:
        return unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    key = accounts.api_key_for(token)
    if key is None:
        return unauthorized("The API key is not valid or has been revoked.")
    g.hookline_tenant_id = key.tenant_id
    if db.session.is_modified(key):  # its last use, stamped at most once a minute
        db.session.commit()
    return None


def check_body() -> Response | None:
    """A body must be JSON and parse (415 / 400); reading it enforces the size limit (413)."""
    if request.method not in _BODY_METHODS:
        return None
    raw = request.get_data(cache=True)
    if not raw:
        return None
    if not request.is_json:
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    try:
        parsed = json.loads(raw, parse_float=_finite_float, parse_constant=_refuse_constant)
        # Re-encoding finds lone surrogates ("\ud800"): valid JSON escapes, but no database
        # column can store them, so they are refused here rather than failing at the write.
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        return malformed_json()
    return None


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def protect(bp: Blueprint) -> None:
    """Require an API key and a well-formed body on every route of `bp`."""
    bp.before_request(authenticate)
    bp.before_request(check_body)
