"""Test data made through the same services the app uses."""

from __future__ import annotations

from portal.extensions import db
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
