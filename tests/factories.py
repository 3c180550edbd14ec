"""Test data made through the same services the app uses."""

from __future__ import annotations

from dispatcher.store import db
from portal.models import Subscription, Tenant
from portal.services import accounts
from portal.services import subscriptions as subscription_service


def make_tenant(name: str = "Acme") -> Tenant:
    tenant = accounts.create_tenant(name)
    db.session.commit()
    return tenant


def make_subscription(
    tenant_id: str, url: str, events: list[str] | None = None, **fields
) -> tuple[Subscription, str]:
    subscription, secret = subscription_service.create(
        tenant_id, url=url, events=events or ["*"], **fields
    )
    db.session.commit()
    return subscription, secret


def make_api_key(tenant_id: str, name: str = "test") -> str:
    _, key = accounts.create_api_key(tenant_id, name)
    db.session.commit()
    return key


HEALTH_COLUMNS = frozenset(
    {
        "consecutive_failures",
        "circuit_opened_at",
        "paused_until",
        "pause_seconds",
        "probe_until",
        "last_error",
    }
)


def set_health(subscription_id: str, **columns) -> Subscription:
    """Write endpoint-health columns straight onto the row, as the workers would: tests stand in
    for the engine that writes them, and read the state back through dispatcher.health."""
    unknown = set(columns) - HEALTH_COLUMNS
    assert not unknown, f"not a health column: {sorted(unknown)}"
    subscription = db.session.get(Subscription, subscription_id)
    for name, value in columns.items():
        setattr(subscription, name, value)
    db.session.commit()
    return subscription
