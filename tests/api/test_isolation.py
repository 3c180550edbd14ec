"""Tenant isolation, generated from the OpenAPI document: every operation with an id in its path,
called with tenant B's key on tenant A's ids, answers 404 and changes nothing."""

from __future__ import annotations

import re

import pytest

from dispatcher.store import db
from portal.api import API_PREFIX
from portal.api.operator import OPERATOR_PREFIX
from portal.services import accounts
from portal.services import operator as operator_service
from tests.api.conftest import assert_problem, snapshot
from tests.factories import make_subscription
from tests.ui.conftest import FreshContextClient, csrf_token

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
    """(method, path without prefix, path parameter names) of every tenant operation with an id
    (the operator API's are the operator's, not a tenant's: see the tests at the end)."""
    found = []
    for path, item in spec["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        if not names or path.startswith(OPERATOR_PREFIX):
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
    # docs/api.md describes 12 operations with an id; a new one is covered automatically.
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


# --- service mode: operator routes and sign-in link sessions --------------------------------------


def operator_operations(spec: dict) -> list[tuple[str, str]]:
    """(method, path) of every operator API operation."""
    return sorted(
        (method, path)
        for path, item in spec["paths"].items()
        if path.startswith(OPERATOR_PREFIX)
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )


OPERATOR_BODIES = {
    "/tenants": {"name": "Taken", "id": "org_taken"},
    "/tenants/{tenant_id}/admins": {"email": "new@admin.test", "password": "long enough"},
    "/tenants/{tenant_id}/api-keys": {"name": "taken"},
    "/tenants/{tenant_id}/portal-links": {"expires_in": 60},
}


def test_every_operator_route_refuses_a_tenant_key_and_changes_nothing(
    api, other_api, client, tenant_a_ids
):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    operations = operator_operations(spec)
    assert len(operations) >= 5
    for method, path in operations:
        url = path.replace("{tenant_id}", api.tenant_id)
        body = OPERATOR_BODIES.get(path.removeprefix(OPERATOR_PREFIX)) if method == "post" else None
        for tenant_key in (api.key, other_api.key):  # its own tenant's id makes no difference
            before = snapshot()
            response = client.open(
                url,
                method=method.upper(),
                json=body,
                headers={"Authorization": f"Bearer {tenant_key}"},
            )
            assert_problem(response, 401, "unauthorized")
            assert snapshot() == before, f"{method.upper()} {path} changed the database"


# A valid form for each portal action that checks one first, so a refusal cannot come from it.
PORTAL_FORMS = {
    "/endpoints/<subscription_id>/recover": {"since": "2000-01-01T00:00"},
    "/endpoints/<subscription_id>/rotate": {"grace": "0"},
    "/endpoints/<subscription_id>/test": {"event_type": "webhook.test"},
}


def _portal_rules(app) -> list[tuple[str, str, set[str]]]:
    """(method, rule, argument names) of every portal route that takes an id."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("ui.") or not rule.arguments:
            continue
        if rule.endpoint in {"ui.static", "ui.links.sign_in"}:
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            found.append((method, rule.rule, set(rule.arguments)))
    return found


def test_a_link_session_never_reaches_another_tenants_rows(app, api, other_api, tenant_a_ids):
    """Tenant B signs in with a link; every portal page and action on tenant A's ids is a 404
    that changes nothing, and B's pages show none of A's rows."""
    assert api.post("/event-types", json={"name": "zebra.crossed"}).status_code == 201
    a_key, _ = accounts.create_api_key(api.tenant_id, "tenant-a-key")
    _, token = operator_service.mint_link(other_api.tenant_id)
    db.session.commit()
    ids = {**tenant_a_ids, "key_id": a_key.id}
    app.test_client_class = FreshContextClient
    browser = app.test_client()
    assert browser.get(f"/sign-in/{token}").status_code == 302
    rules = _portal_rules(app)
    assert len(rules) >= 14
    for method, rule, names in rules:
        url = rule
        for name in names:
            assert name in ids, f"no tenant A value for portal argument {name!r}"
            url = re.sub(rf"<(?:\w+:)?{name}>", ids[name], url)
        before = snapshot()
        if method == "GET":
            response = browser.get(url)
        else:
            form = {**PORTAL_FORMS.get(rule, {}), "csrf_token": csrf_token(browser, "/")}
            response = browser.post(url, data=form)
        assert response.status_code == 404, (method, url, response.status_code)
        assert snapshot() == before, f"{method} {rule} changed the database"

    pages = pages_seen_by_a_link(app, other_api.tenant_id)
    for value in (tenant_a_ids["subscription_id"], tenant_a_ids["delivery_id"], "127.0.0.1:9/a"):
        assert value not in pages
    assert "zebra.crossed" not in pages and "tenant-a-key" not in pages
    own = pages_seen_by_a_link(app, api.tenant_id)  # so the checks above are not vacuous
    assert all(value in own for value in ("zebra.crossed", "tenant-a-key", "127.0.0.1:9/a"))


def pages_seen_by_a_link(app, tenant_id: str) -> str:
    """The list pages a link session of `tenant_id` sees."""
    _, token = operator_service.mint_link(tenant_id)
    db.session.commit()
    browser = app.test_client()
    assert browser.get(f"/sign-in/{token}").status_code == 302
    return "".join(
        browser.get(path).get_data(as_text=True)
        for path in ("/", "/endpoints", "/deliveries", "/event-types", "/api-keys")
    )
