"""What every resource blueprint shares: its prefix, auth, problem errors and error docs."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE, Schema

from portal.api import auth, errors

# Where the API is mounted unless the app says otherwise (api.init_app(app, url_prefix=...)).
API_PREFIX = "/api/v1/webhooks"

# Errors any authenticated operation can answer (503: the database or Redis is unreachable,
# with Retry-After); the rest are listed per operation.
COMMON_ERRORS = (401, 503)
BODY_ERRORS = (400, 413, 415)


def resource_blueprint(name: str, path: str, description: str) -> Blueprint:
    """A blueprint at `path` whose routes need an API key and answer problems.

    `path` is relative to the API prefix, which is added when the API is registered on an
    app (see portal.api.init_app), so one blueprint serves any prefix a host chooses.
    """
    blp = Blueprint(name, __name__, url_prefix=path, description=description)
    errors.attach(blp)
    auth.protect(blp)
    return blp


def documents(
    blp: Blueprint, *statuses: int, security: list[dict[str, list]] | None = None
) -> Callable[[Any], Any]:
    """Document the problem responses an operation can give (besides 401 and the default), and
    the `security` scheme it needs when it is not the blueprint's API key."""

    def decorator(view: Any) -> Any:
        for status in sorted({*COMMON_ERRORS, *statuses}, reverse=True):
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return blp.doc(security=security)(view) if security is not None else view

    return decorator


def lists(
    blp: Blueprint,
    args: type[Schema],
    page: type[Schema],
    *,
    security: list[dict[str, list]] | None = None,
) -> Callable[[Any], Any]:
    """A list operation of every list alike: its query `args` (an unknown parameter is refused,
    not ignored), a 200 answered with `page` (portal.services.paging's envelope), and the
    problems every operation can give."""

    def decorator(view: Any) -> Any:
        view = documents(blp, security=security)(view)
        view = blp.response(200, page)(view)
        return blp.arguments(args, location="query", unknown=RAISE)(view)

    return decorator
