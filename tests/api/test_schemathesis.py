"""Property-based run of every API operation with schemathesis: no 5xx, and every response
(successes and problems alike) matches the OpenAPI document. Bounded so it stays well under two
minutes; path ids point at real rows so the operations get past their 404s."""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode, checks

from dispatcher.store import db
from portal import api as api_package
from portal.api import operator as operator_api
from portal.api.operator import OPERATOR_PREFIX
from portal.services import operator as operator_service
from tests.factories import make_subscription

MAX_EXAMPLES = 20

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def _document() -> dict:
    """The OpenAPI document, built by a bare app (no settings, database or Redis needed)."""
    bare = Flask(__name__)
    api_package.init_app(bare)
    operator_api.init_app(bare)
    return bare.extensions["hookline-api"].spec.to_dict()


schema = schemathesis.openapi.from_dict(_document())
# Valid requests and deliberately invalid ones (negative data): neither may ever get a 5xx.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture
def live_rows(app, api) -> dict:
    """Tenant A's rows; every path id in the run points at one of them."""
    subscription, _ = make_subscription(api.tenant_id, "http://127.0.0.1:9/a")
    event = api.post("/events", json={"type": "invoice.sent", "data": {"n": 1}}).get_json()
    (delivery,) = api.get("/deliveries").get_json()["data"]
    api.post("/event-types", json={"name": "order.shipped"})
    return {
        "subscription_id": subscription.id,
        "event_id": event["id"],
        "delivery_id": delivery["id"],
        "name": "order.shipped",
        "tenant_id": api.tenant_id,
    }


@pytest.fixture
def operator_key(app) -> str:
    """An operator key, for the operator API's operations (tenant keys are refused there)."""
    _, key = operator_service.create_operator_key("schemathesis")
    db.session.commit()
    return key


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_and_never_fails(case, app, api, live_rows, operator_key):
    # Random ids would only ever meet a 404 (tested elsewhere); real ones reach the services.
    for name in list(case.path_parameters or {}):
        case.path_parameters[name] = live_rows[name]
    key = operator_key if case.operation.path.startswith(OPERATOR_PREFIX) else api.key
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
