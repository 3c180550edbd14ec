"""Service rules that every surface (API, portal, CLI) relies on for bad input."""

from __future__ import annotations

import pytest

from dispatcher import InvalidPayload, publish
from portal.extensions import db
from portal.services import ServiceError, event_types
from portal.services import subscriptions as service
from tests.factories import make_subscription, make_tenant


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "http://example.com/schema.json"},
        {"type": "object", "properties": {"a": {"$ref": "#/definitions/nope"}}},
        {"$ref": "#/$defs/missing"},
    ],
)
def test_custom_type_with_an_unresolvable_ref_is_refused(app, schema):
    tenant = make_tenant()
    with pytest.raises(ServiceError) as refused:
        event_types.create_custom_type(tenant.id, "order.shipped", example={"a": 1}, schema=schema)
    assert refused.value.field == "schema"


def test_publishing_a_type_whose_stored_schema_is_broken_is_a_clear_error(app):
    tenant = make_tenant()
    row = event_types.create_custom_type(tenant.id, "order.shipped")
    row.schema = {"$ref": "#/definitions/nope"}  # stored before the rule existed
    db.session.commit()
    with pytest.raises(InvalidPayload, match="broken"):
        publish("order.shipped", {"a": 1}, tenant_id=tenant.id)


def test_nul_characters_are_refused_in_descriptions(app, receiver):
    tenant = make_tenant()
    with pytest.raises(ServiceError):
        service.create(tenant.id, url=receiver.url(), events=["*"], description="a\x00b")
    with pytest.raises(ServiceError):
        event_types.create_custom_type(tenant.id, "order.shipped", description="a\x00b")


def test_a_test_event_to_a_disabled_endpoint_is_refused(app, receiver):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    service.set_active(tenant.id, sub.id, False)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        service.send_test(tenant.id, sub.id)
    assert refused.value.code == "endpoint_disabled"


def test_trusted_proxies_make_the_forwarded_client_address_the_remote_address(test_env):
    from flask import request

    from portal import create_app

    for hops, expected in ((0, "127.0.0.1"), (1, "203.0.113.7")):
        app = create_app({"TESTING": True, "HOOKLINE_TRUSTED_PROXIES": hops})
        seen = {}

        @app.get("/_whoami")
        def whoami(seen=seen):
            seen["addr"] = request.remote_addr
            return "ok"

        app.test_client().get("/_whoami", headers={"X-Forwarded-For": "203.0.113.7"})
        assert seen["addr"] == expected
