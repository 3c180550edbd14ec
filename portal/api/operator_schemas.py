"""Request and response schemas of the operator API (service mode): tenants, their admins,
their API keys and portal sign-in links. Like portal.api.schemas, they validate input, dump
output and are the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Length, Range

from portal.api.fields import Text, Timestamp
from portal.api.schemas import page_of
from portal.services.accounts import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    TENANT_ID_MAX_LENGTH,
)
from portal.services.operator import DEFAULT_LINK_SECONDS, MAX_LINK_SECONDS, MIN_LINK_SECONDS

_TENANT_ID = {
    "description": "The host's own id for the tenant: a letter or digit, then letters, digits "
    f"and `_ . : -`, at most {TENANT_ID_MAX_LENGTH} characters. Omitted, Hookline makes one "
    "(`ten_…`).",
    "example": "org_42",
}


def _required_line(max_length: int, **metadata: str) -> Text:
    """A required one-line text of 1 to `max_length` characters (the services' limits)."""
    return Text(line=True, required=True, validate=Length(1, max_length), metadata=metadata)


class TenantCreateArgs(Schema):
    """A tenant to create. With `id`, repeating the same request is safe: it answers 200 with
    the tenant made the first time; the same `id` with another `name` is a 409."""

    name = _required_line(MAX_NAME_LENGTH, description="Shown in the portal.", example="Acme Inc.")
    # The characters are checked by accounts.ensure_tenant, the rule embedding shares.
    id = Text(line=True, validate=Length(1, TENANT_ID_MAX_LENGTH), metadata=_TENANT_ID)


class TenantSchema(Schema):
    """A tenant: the isolation boundary every endpoint, event and delivery belongs to."""

    id = fields.String(required=True, metadata={"example": "org_42"})
    name = fields.String(required=True, metadata={"example": "Acme Inc."})
    created_at = Timestamp(required=True)


TenantPage = page_of(TenantSchema, "TenantPage")


class AdminCreateArgs(Schema):
    """A tenant admin who signs in to the portal with an email and a password."""

    email = _required_line(MAX_EMAIL_LENGTH, example="ops@acme.test")
    password = Text(
        required=True,
        validate=Length(1, MAX_PASSWORD_LENGTH),
        metadata={"description": "At least 8 characters.", "example": "correct horse battery"},
    )


class AdminSchema(Schema):
    """A tenant admin (the password is never shown)."""

    id = fields.String(required=True, metadata={"example": "usr_01J9Z3K9M2QW8R7T5V4N6P1B0C"})
    tenant_id = fields.String(required=True, metadata={"example": "org_42"})
    email = fields.String(required=True, metadata={"example": "ops@acme.test"})
    created_at = Timestamp(required=True)


class ApiKeyCreateArgs(Schema):
    """A tenant API key, named so the tenant can tell its keys apart."""

    name = _required_line(MAX_NAME_LENGTH, example="billing-service")


class ApiKeyCreatedSchema(Schema):
    """The new tenant API key; `key` is shown in this response only (only a hash is stored)."""

    id = fields.String(required=True, metadata={"example": "key_01J9Z3K9M2QW8R7T5V4N6P1B0C"})
    name = fields.String(required=True, metadata={"example": "billing-service"})
    prefix = fields.String(
        required=True,
        metadata={"description": "The key's start, to recognise it.", "example": "hl_Xk2mQ9aZ"},
    )
    key = fields.String(
        required=True,
        metadata={
            "description": "`Authorization: Bearer <key>` on the tenant API "
            "(/api/v1/webhooks). Store it now: it is not shown again.",
            "example": "hl_Xk2mQ9aZ3b7VJfQn1yR8sLw0pT4uE6oC5dH2gK9iM1x",
        },
    )
    created_at = Timestamp(required=True)


class PortalLinkArgs(Schema):
    """How long the link stays valid, in seconds."""

    expires_in = fields.Integer(
        strict=True,
        validate=Range(MIN_LINK_SECONDS, MAX_LINK_SECONDS),
        metadata={
            "description": f"Default {DEFAULT_LINK_SECONDS} (10 minutes), at most "
            f"{MAX_LINK_SECONDS}.",
            "example": 300,
        },
    )


class PortalLinkSchema(Schema):
    """A single-use sign-in link to the tenant's portal: send the user's browser to `url`
    before `expires_at`. The first visit signs that browser in to this tenant's portal (and
    only this tenant's); every later visit is refused."""

    url = fields.String(
        required=True,
        metadata={"example": "https://hooks.example.com/sign-in/Vb1qk0n3oR2mZ8yT5xW7cA9dE4fG6hJ"},
    )
    expires_at = Timestamp(required=True)
