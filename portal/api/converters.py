"""URL converters for API path parameters: a malformed id never reaches a query, and the OpenAPI
document tells clients the shape."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, PathConverter

ID_PATTERN = r"[A-Za-z0-9_]{1,64}"
NAME_PATTERN = r"[A-Za-z0-9_.\-]{1,200}"
# accounts.ensure_tenant's rule: a letter or digit, then letters, digits and _ . : -, 32 at most.
TENANT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,31}"


class IdConverter(BaseConverter):
    """A prefixed id such as `sub_01J…` (anything else is a 404 like an unknown id)."""

    regex = ID_PATTERN


class NameConverter(BaseConverter):
    """An event type name such as `order.shipped`."""

    regex = NAME_PATTERN


class TenantIdConverter(BaseConverter):
    """A tenant id: Hookline's own (`ten_01J…`) or a host's (accounts.ensure_tenant's rule)."""

    regex = TENANT_ID_PATTERN


class AnythingConverter(PathConverter):
    """Like `path`, but across line breaks too, so a %0A in a URL cannot escape the API's
    fallback route (and its problem answers)."""

    regex = r"[\s\S]+"
    part_isolating = False  # spans slashes (werkzeug infers True from a regex without "/")


CONVERTERS = {
    "hid": IdConverter,
    "hname": NameConverter,
    "htenant": TenantIdConverter,
    "anything": AnythingConverter,
}


def id_parameter_schema(converter: BaseConverter) -> dict:
    """How an id path parameter is documented."""
    return {"type": "string", "pattern": f"^{ID_PATTERN}$"}


def name_parameter_schema(converter: BaseConverter) -> dict:
    """How an event type name path parameter is documented."""
    return {"type": "string", "pattern": f"^{NAME_PATTERN}$"}


def tenant_id_parameter_schema(converter: BaseConverter) -> dict:
    """How a tenant id path parameter is documented."""
    return {"type": "string", "pattern": f"^{TENANT_ID_PATTERN}$"}
