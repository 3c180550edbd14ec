"""/api/v1/operator: service mode, for a platform that runs Hookline as a separate service.

An operator key (`Authorization: Bearer hlop_…`) provisions tenants, their admins and their
API keys, and mints single-use sign-in links to one tenant's portal. Tenant API keys are
refused here and operator keys by the tenant API (each side checks its own prefix and store).
The routes are in the same OpenAPI document as the tenant API, each marked with the
`operatorKey` security scheme, and answer the same problem documents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import Flask, Response, g, url_for
from flask.views import MethodView
from flask_smorest import Api, Blueprint

from dispatcher.store import db
from portal.api import base, converters, errors, meta
from portal.api.auth import bearer_token, check_body, unauthorized
from portal.api.base import BODY_ERRORS
from portal.api.operator_schemas import (
    AdminCreateArgs,
    AdminSchema,
    ApiKeyCreateArgs,
    ApiKeyCreatedSchema,
    PortalLinkArgs,
    PortalLinkSchema,
    TenantCreateArgs,
    TenantPage,
    TenantSchema,
)
from portal.api.schemas import PageArgs
from portal.extensions import csrf
from portal.hookline import EXTENSION, mount
from portal.services import accounts
from portal.services import operator as service
from portal.services.operator import Operator
from portal.services.paging import Page

log = logging.getLogger(__name__)

OPERATOR_PREFIX = "/api/v1/operator"
SECURITY = [{"operatorKey": []}]
REALM = "hookline-operator"

blp = Blueprint(
    "Operator",
    __name__,
    url_prefix="/tenants",
    description="Service mode: provision tenants, their admins and API keys, and mint "
    "single-use portal sign-in links. Needs an operator key (`hlop_…`), never a tenant's.",
)
errors.attach(blp)

# Any other path or method under the prefix is a problem too (the tenant API's fallback view).
fallback_bp = FlaskBlueprint("api-operator-meta", __name__)
errors.attach(fallback_bp)
_ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]
fallback_bp.add_url_rule("/", "fallback", meta.fallback, defaults={"path": ""}, methods=_ANY_METHOD)
fallback_bp.add_url_rule("/<anything:path>", "fallback", meta.fallback, methods=_ANY_METHOD)


def current_operator() -> Operator:
    """The operator whose key authenticated this request."""
    return g.hookline_operator


def _audit(action: str, tenant_id: str, what: str = "") -> None:
    """One log line per change an operator makes (ids only: never a key, token or password)."""
    log.info("operator %s %s tenant %s %s", current_operator().key_id, action, tenant_id, what)


@blp.before_request
def authenticate() -> Response | None:
    """Resolve `Authorization: Bearer <operator key>`, or answer 401."""
    token = bearer_token()
    if token is None:
        return unauthorized("Send an operator key as 'Authorization: Bearer <key>'.", REALM)
    operator = service.operator_for(token)
    if operator is None:
        return unauthorized("The operator key is not valid or has been revoked.", REALM)
    g.hookline_operator = operator
    if db.session.dirty:  # a stored key's last use, stamped at most once a minute
        db.session.commit()
    return None


blp.before_request(check_body)


def documents(*statuses: int) -> Callable[[Any], Any]:
    """The operator key this operation needs, and the problems it can answer (besides those of
    every operation: 401, 503)."""

    return base.documents(blp, *statuses, security=SECURITY)


@blp.route("")
class Tenants(MethodView):
    @base.lists(blp, PageArgs, TenantPage, security=SECURITY)
    def get(self, args: dict) -> Page:
        """List tenants

        By id, descending (Hookline's own `ten_…` ids sort newest first).
        """
        return service.list_tenants(args["limit"], args.get("cursor"))

    @blp.arguments(TenantCreateArgs)
    @blp.response(201, TenantSchema)
    @blp.alt_response(
        200, schema=TenantSchema, description="The tenant existed already with this id and name."
    )
    @documents(409, *BODY_ERRORS)
    def post(self, body: dict):
        """Create a tenant

        With the host's own `id`, the same request again answers 200 with the same tenant (a
        retry is safe); that `id` with another `name` is a 409. Without `id`, Hookline makes
        one.
        """
        tenant, created = service.provision_tenant(body["name"], body.get("id"))
        db.session.commit()
        if created:
            _audit("created", tenant.id)
        location = url_for(".Tenant", tenant_id=tenant.id)
        return tenant, 201 if created else 200, {"Location": location}


@blp.route("/<htenant:tenant_id>", endpoint="Tenant")
@blp.response(200, TenantSchema)
@documents(404)
def get_tenant(tenant_id: str):
    """Read a tenant"""
    return accounts.get_tenant(tenant_id)


@blp.route("/<htenant:tenant_id>/admins", methods=["POST"])
@blp.arguments(AdminCreateArgs)
@blp.response(201, AdminSchema)
@documents(404, *BODY_ERRORS)
def create_admin(body: dict, tenant_id: str):
    """Create a tenant admin

    Someone who signs in to this tenant's portal with this email and password. Emails are
    unique across tenants.
    """
    user = accounts.create_user(tenant_id, body["email"], body["password"])
    db.session.commit()
    _audit("added an admin to", tenant_id, user.id)
    return user


@blp.route("/<htenant:tenant_id>/api-keys", methods=["POST"])
@blp.arguments(ApiKeyCreateArgs)
@blp.response(201, ApiKeyCreatedSchema)
@documents(404, *BODY_ERRORS)
def create_api_key(body: dict, tenant_id: str):
    """Create a tenant API key

    A key for the tenant API (`/api/v1/webhooks`), acting for this tenant only. The key is in
    this response only; the tenant revokes it in the portal.
    """
    row, key = accounts.create_api_key(tenant_id, body["name"])
    db.session.commit()
    _audit("created an API key for", tenant_id, row.id)
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "key": key,
        "created_at": row.created_at,
    }


@blp.route("/<htenant:tenant_id>/portal-links", methods=["POST"])
@blp.arguments(PortalLinkArgs, required=False)
@blp.response(201, PortalLinkSchema)
@documents(404, *BODY_ERRORS)
def create_portal_link(body: dict, tenant_id: str):
    """Create a portal sign-in link

    A short-lived (`expires_in`, default 600 s, at most 3600), single-use link that signs
    the browser that opens it in to this tenant's portal, for up to 12 hours, without a
    password. Send the user's browser straight to it (a redirect from your app); do not
    email it. Only a hash of its token is stored.
    """
    link, token = service.mint_link(tenant_id, body.get("expires_in"))
    db.session.commit()
    _audit("minted a sign-in link to", tenant_id, link.id)
    url = url_for("ui.links.sign_in", token=token, _external=True)
    return {"url": url, "expires_at": link.expires_at}


def init_app(app: Flask, url_prefix: str = OPERATOR_PREFIX) -> None:
    """Turn on service mode: the operator API under `url_prefix`, in the OpenAPI document of
    the API already registered on `app` (portal.api.init_app), and the portal's sign-in links.

    For the standalone app only: embedded, the host's login names the tenant, and a host
    provisions tenants itself (`Hookline.ensure_tenant`)."""
    if EXTENSION in app.extensions and mount(app).embedded:
        raise ValueError("the operator API is for the standalone app, not an embedded Hookline")
    api: Api = app.extensions["hookline-api"]
    api.spec.components.security_scheme(
        "operatorKey",
        {"type": "http", "scheme": "bearer", "description": "An operator key (hlop_…)."},
    )
    api.register_converter(converters.TenantIdConverter, converters.tenant_id_parameter_schema)
    api.register_blueprint(blp, url_prefix=url_prefix + blp.url_prefix)
    app.register_blueprint(fallback_bp, url_prefix=url_prefix)
    csrf.exempt(blp)
    csrf.exempt(fallback_bp)
    app.extensions[service.SERVICE_MODE] = url_prefix
