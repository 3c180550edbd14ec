"""Tenant isolation, generated from the OpenAPI document: every operation with an id in its path,
called with tenant B's key on tenant A's ids, answers 404 and changes nothing."""

from __future__ import annotations

import re

import pytest

from portal.api import API_PREFIX
from tests.api.conftest import assert_problem, snapshot
from tests.factories import make_subscription

# A valid body for each operation that takes one, so a refusal cannot come from validation.
VALID_BODIES = {
    ("patch", "/subscriptions/{subscription_id}"): {
        "description": "taken",
        "is_active": False,
        "rate_limit": 7,
    },
    ("post", "/subscriptions/{subscription_id}/rotate-secret"): {"grace_period_seconds": 0},
    ("post", "/subscriptions/{subscription_id}/test"): {"event_type": "webhook.test"},
    ("post", "/subscriptions/{subscription_id}/recover"): {"since": "2000-01-01T00:00:00Z"},
}


def id_operations(spec: dict) -> list[tuple[str, str, list[str]]]:
    """(method, path without prefix, path parameter names) of every operation with an id."""
    found = []
    for path, item in spec["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method, path.removeprefix(API_PREFIX), names))
    return sorted(found)


@pytest.fixture
def tenant_a_ids(api) -> dict[str, str]:
    """Tenant A's subscription, event, delivery and custom event type."""
    subscription, _ = make_subscription(api.tenant_id, "http://127.0.0.1:9/a")
    event = api.post("/events", json={"type": "invoice.sent", "data": {"n": 1}}).get_json()
    (delivery,) = api.get("/deliveries").get_json()["data"]
    assert api.post("/event-types", json={"name": "order.shipped"}).status_code == 201
    return {
        "subscription_id": subscription.id,
        "event_id": event["id"],
        "delivery_id": delivery["id"],
        "name": "order.shipped",
    }


def test_every_id_route_refuses_another_tenant_and_changes_nothing(
    api, other_api, client, tenant_a_ids
):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    operations = id_operations(spec)
    # The DESIGN table has 12 operations with an id; a new one is covered automatically.
    assert len(operations) >= 12
    for method, path, names in operations:
        operation = spec["paths"][API_PREFIX + path][method]
        body = VALID_BODIES.get((method, path))
        if operation.get("requestBody", {}).get("required") and body is None:
            pytest.fail(f"add a valid body for {method.upper()} {path} to VALID_BODIES")
        url = path
        for name in names:
            assert name in tenant_a_ids, f"no tenant A value for path parameter {name!r}"
            url = url.replace("{" + name + "}", tenant_a_ids[name])
        before = snapshot()
        kwargs = {"json": body} if body is not None else {}
        response = other_api.request(method.upper(), url, **kwargs)
        assert_problem(response, 404, "not-found")
        assert snapshot() == before, f"{method.upper()} {path} changed the database"

    # The ids were real: tenant A reads every one of them.
    for method, path, names in operations:
        if method == "get":
            url = path
            for name in names:
                url = url.replace("{" + name + "}", tenant_a_ids[name])
            assert api.get(url).status_code == 200, url


def test_lists_never_show_another_tenants_rows(api, other_api, tenant_a_ids):
    for path in ("/subscriptions", "/events", "/deliveries"):
        assert other_api.get(path).get_json()["data"] == []
    assert (
        other_api.get(f"/deliveries?subscription_id={tenant_a_ids['subscription_id']}").get_json()[
            "data"
        ]
        == []
    )
    names, cursor = set(), ""
    while True:
        page = other_api.get(f"/event-types?limit=100&cursor={cursor}").get_json()
        names |= {row["name"] for row in page["data"]}
        if not (cursor := page["next_cursor"]):
            break
    assert "invoice.paid" in names and "order.shipped" not in names
