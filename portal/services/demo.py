"""The demo data `make run` signs in with (`flask demo seed`): idempotent, so it runs on every
start."""

from __future__ import annotations

from sqlalchemy import select

from dispatcher.store import db
from portal.models import Tenant, User
from portal.services import ServiceError, accounts, event_types
from portal.services import subscriptions as subscription_service

DEMO_TENANT = "Demo Tenant"
DEMO_EMAIL = "admin@demo.hookline.test"
DEMO_PASSWORD = "hookline-demo"
DEMO_ENDPOINT_DESCRIPTION = "Demo receiver"


def seed(endpoint_url: str | None = None) -> str:
    """The standard catalog, the demo tenant and its admin, and, given a URL and while the
    tenant has none, an endpoint receiving every event. Returns the tenant's id (the caller
    commits; ServiceError for a URL Hookline may not send to)."""
    event_types.sync_standard_types()
    user = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
    if user is None:
        tenant = db.session.scalar(select(Tenant).where(Tenant.name == DEMO_TENANT))
        tenant = tenant or accounts.create_tenant(DEMO_TENANT)
        user = accounts.create_user(tenant.id, DEMO_EMAIL, DEMO_PASSWORD)
    tenant_id = user.tenant_id
    if endpoint_url and not subscription_service.list_subscriptions(tenant_id, 1).items:
        try:
            subscription_service.create(
                tenant_id, url=endpoint_url, events=["*"], description=DEMO_ENDPOINT_DESCRIPTION
            )
        except ServiceError as exc:
            raise ServiceError(f"demo endpoint: {exc.message}", field=exc.field) from None
    return tenant_id
