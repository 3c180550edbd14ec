"""Every API error as an RFC 9457 problem document (`application/problem+json`).

One `problem()` builds them all. Handlers are attached to each API blueprint for every HTTP
status code, so they win over any app-wide handler the portal registers, and portal pages keep
their own error pages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, json, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, default_exceptions

from dispatcher.store import db
from portal import outages
from portal.services import NotFound, ServiceError

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://hookline.dev/problems/"
PROBLEM_MIMETYPE = "application/problem+json"

# Status code → (type slug, title) for errors raised as HTTP exceptions.
HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid request"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("service-unavailable", "Service unavailable"),
}

# ServiceError code → (HTTP status, title); codes not listed are 422 validation problems.
SERVICE_PROBLEMS: dict[str, tuple[int, str]] = {
    "idempotency_conflict": (409, "Idempotency key reused"),
    "conflict": (409, "Conflict"),
    "endpoint_disabled": (409, "Endpoint disabled"),
    "standard_type": (409, "Standard event type"),
    "payload_too_large": (413, "Payload too large"),
    "unknown_event_type": (422, "Unknown event type"),
    "archived_event_type": (422, "Archived event type"),
    "invalid_payload": (422, "Invalid event data"),
    "url_refused": (422, "URL refused"),
}


def problem_type(slug: str) -> str:
    """The stable URI of a problem type."""
    return PROBLEM_BASE + slug


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The one way the API reports an error."""
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "code": code or slug.replace("-", "_"),
    }
    if errors:
        body["errors"] = dict(errors)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as `{"field.sub": ["message", ...]}`."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = str(key) if key != "_schema" else ""
            path = ".".join(part for part in (prefix, name) if part) or "body"
            flat.update(flatten_messages(value, path))
        return flat
    if isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        return {prefix or "body": [str(m) for m in messages]}
    if isinstance(messages, list | tuple):
        flat = {}
        for item in messages:
            flat.update(flatten_messages(item, prefix))
        return flat
    return {prefix or "body": [str(messages)]}


def _validation_messages(error: HTTPException) -> dict[str, list[str]]:
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors") or {}
    # webargs groups messages by location ("json", "query", "headers"); the field names suffice.
    if isinstance(messages, Mapping):
        grouped = [v for k, v in messages.items() if k in {"json", "query", "headers", "view_args"}]
        if grouped and len(grouped) == len(messages):
            merged: dict[str, list[str]] = {}
            for group in grouped:
                merged.update(flatten_messages(group))
            return merged
    return flatten_messages(messages) if messages else {}


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug and webargs errors (404, 405, 413, 415, 400, 422 …) as problems."""
    status = error.code or 500
    if status == 503:
        return unavailable("A service Hookline depends on is unavailable.")
    if status >= 500:
        return handle_unexpected(error)
    db.session.rollback()
    slug, title = HTTP_PROBLEMS.get(status, ("http-error", error.name))
    errors = _validation_messages(error) if status in (400, 422) else {}
    if errors.get("json") == ["Invalid JSON body."]:
        return malformed_json()
    detail = error.description or title
    if status == 422:
        detail = "The request has invalid fields; see errors."
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    return problem(status, slug, title, detail, errors=errors, headers=headers)


def malformed_json() -> Response:
    """The body claims to be JSON but does not parse."""
    return problem(
        400,
        "malformed-json",
        "Malformed JSON",
        "The request body is not valid JSON, or holds what cannot be stored: text that is "
        "not valid Unicode, or a number out of range (NaN, Infinity, 1e400).",
        code="malformed_json",
    )


def handle_service_error(error: ServiceError) -> Response:
    """A rule a service refused, with the service's own message (nothing it began is kept)."""
    db.session.rollback()
    status, title = SERVICE_PROBLEMS.get(error.code, (422, "Invalid request"))
    slug = "validation-error" if error.code == "invalid_request" else error.code.replace("_", "-")
    errors = {error.field: [error.message]} if error.field else None
    return problem(status, slug, title, error.message, errors=errors, code=error.code)


def handle_not_found(error: NotFound) -> Response:
    """Missing and another tenant's objects look the same."""
    db.session.rollback()
    return problem(404, "not-found", "Not found", str(error) or "No such object.")


def unavailable(detail: str) -> Response:
    """503 with Retry-After: the client should try the same request again shortly."""
    seconds = outages.RETRY_AFTER_SECONDS
    return problem(
        503,
        "service-unavailable",
        "Service unavailable",
        f"{detail} Retry after {seconds} seconds.",
        headers={"Retry-After": str(seconds)},
    )


def handle_outage(error: Exception) -> Response:
    """The database or Redis cannot be reached: an outage to retry on, not a bug to report.

    Nothing the request began is kept; a POST /events repeated with the same Idempotency-Key
    cannot publish twice even if its commit went through before the connection broke.
    """
    server = outages.unreachable(error)
    if server is None:
        return handle_unexpected(error)
    with contextlib.suppress(SQLAlchemyError):  # the connection to roll back may be gone
        db.session.rollback()
    log.warning("%s unavailable in %s %s: %s", server, request.method, request.path, error)
    return unavailable(f"The {server} is unreachable, so the request was not completed.")


def handle_unexpected(error: Exception) -> Response:
    """A bug: roll back, log it with the traceback, and tell the client nothing about it."""
    original = getattr(error, "original_exception", None) or error
    if outages.unreachable(original):
        return handle_outage(original)
    db.session.rollback()
    log.error("unhandled error in %s %s", request.method, request.path, exc_info=original)
    return problem(
        500,
        "internal-error",
        "Internal server error",
        "Something went wrong on our side; the request was not applied. Try again later.",
    )


def attach(bp: Blueprint) -> None:
    """Make every error raised under `bp` a problem document."""
    for code in default_exceptions:
        bp.register_error_handler(code, handle_http_exception)
    bp.register_error_handler(HTTPException, handle_http_exception)
    bp.register_error_handler(ServiceError, handle_service_error)
    bp.register_error_handler(NotFound, handle_not_found)
    for outage in outages.OUTAGE_ERRORS:
        bp.register_error_handler(outage, handle_outage)
    bp.register_error_handler(Exception, handle_unexpected)
