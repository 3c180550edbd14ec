"""API test helpers: a client that speaks for one tenant through its API key."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal.api import API_PREFIX
from portal.extensions import db
from portal.models import ApiKey, Attempt, Delivery, Event, EventType, Subscription, Tenant
from tests.factories import make_api_key, make_tenant


class ApiClient:
    """The Flask test client with the API prefix and one tenant's bearer key."""

    def __init__(self, client, tenant: Tenant, key: str) -> None:
        self.client = client
        self.tenant = tenant
        self.tenant_id = tenant.id
        self.key = key

    def request(self, method: str, path: str, **kwargs: Any):
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return self.client.open(API_PREFIX + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.request("DELETE", path, **kwargs)


def _api_for(client, name: str) -> ApiClient:
    tenant = make_tenant(name)
    return ApiClient(client, tenant, make_api_key(tenant.id))


@pytest.fixture
def api(app, client) -> ApiClient:
    """Tenant A's API client."""
    return _api_for(client, "Tenant A")


@pytest.fixture
def other_api(app, client) -> ApiClient:
    """Tenant B's API client, for isolation checks."""
    return _api_for(client, "Tenant B")


def assert_problem(response, status: int, slug: str) -> dict:
    """The response is an RFC 9457 problem of that status and type; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"] == f"https://hookline.dev/problems/{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def snapshot() -> dict[str, list[tuple]]:
    """Every row that an API call could change (API keys' last_used_at aside)."""
    db.session.expire_all()
    tables = {
        "tenants": select(Tenant.id, Tenant.name),
        "api_keys": select(ApiKey.id, ApiKey.revoked_at),
        "event_types": select(
            EventType.id, EventType.tenant_id, EventType.name, EventType.archived
        ),
        "subscriptions": select(
            Subscription.id,
            Subscription.url,
            Subscription.events,
            Subscription.description,
            Subscription.headers,
            Subscription.rate_limit,
            Subscription.is_active,
            Subscription.secrets_encrypted,
            Subscription.updated_at,
        ),
        "events": select(Event.id, Event.type, Event.data),
        "deliveries": select(
            Delivery.id,
            Delivery.status,
            Delivery.attempt_count,
            Delivery.next_attempt_at,
            Delivery.next_trigger,
            Delivery.priority,
            Delivery.updated_at,
        ),
        "attempts": select(Attempt.id),
    }
    result = {}
    for name, query in tables.items():
        rows = db.session.execute(query).all()
        result[name] = sorted(tuple(repr(value) for value in row) for row in rows)
    db.session.rollback()
    return result
