"""The JSON API (at /api/v1/webhooks unless mounted elsewhere): everything a tenant admin can
do, for programs.

flask-smorest builds the OpenAPI document from the marshmallow schemas that validate requests.
Its app-wide JSON error handler is replaced by problem handlers on the API's own blueprints,
so the portal's pages keep their HTML errors.
"""

from __future__ import annotations

import http

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from portal import __version__
from portal.api import converters, deliveries, event_types, events, meta, subscriptions
from portal.api.base import API_PREFIX
from portal.api.errors import PROBLEM_MIMETYPE
from portal.api.schemas import ProblemSchema
from portal.extensions import csrf

__all__ = ["API_PREFIX", "init_app"]

RESOURCES = (event_types.blp, subscriptions.blp, events.blp, deliveries.blp)


class HooklineApi(Api):
    """flask-smorest's Api, documenting errors as problems and leaving error handling to us."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Handlers live on the API blueprints (see portal.api.errors.attach)."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "A problem (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


def init_app(app: Flask, url_prefix: str = API_PREFIX) -> None:
    """Register the API blueprints, their converters and the OpenAPI document on `app`, every
    route under `url_prefix` (the OpenAPI document shows those real paths)."""
    url_prefix = url_prefix.rstrip("/")
    if not url_prefix.startswith("/"):
        # at the root, the API's catch-all problem route would answer every page of the app
        raise ValueError(f"the API needs a path prefix such as {API_PREFIX!r}, not {url_prefix!r}")
    app.url_map.converters.update(converters.CONVERTERS)
    api = HooklineApi(
        spec_kwargs={
            "title": "Hookline webhooks API",
            "version": __version__,
            "openapi_version": "3.0.3",
            "info": {
                "description": "Manage webhook endpoints, publish events and inspect deliveries. "
                "Authenticate with `Authorization: Bearer <API key>`."
            },
            "security": [{"bearerAuth": []}],
        }
    )
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API key (hl_…)."}
    )
    api.register_converter(converters.IdConverter, converters.id_parameter_schema)
    api.register_converter(converters.NameConverter, converters.name_parameter_schema)
    for blp in RESOURCES:
        api.register_blueprint(blp, url_prefix=url_prefix + blp.url_prefix)
        csrf.exempt(blp)
    app.register_blueprint(meta.bp, url_prefix=url_prefix)
    csrf.exempt(meta.bp)
    # What an app-wide CSRFProtect of a host's must exempt too (portal.hookline).
    app.extensions["hookline-api-blueprints"] = [*RESOURCES, meta.bp]
    app.extensions["hookline-api"] = api
