"""Turning endpoints off and on, with what must happen alongside."""

from __future__ import annotations

from sqlalchemy import update

from dispatcher import clock
from portal.extensions import db
from portal.models import Delivery, Subscription


def disable(subscription: Subscription, reason: str) -> None:
    """Disable an endpoint: cancel what waits for it and tell the tenant's other endpoints.

    Runs in the caller's transaction. Pending deliveries become `cancelled` (recover brings
    them back after re-enabling), so nothing stays stuck in `pending`.
    """
    from dispatcher.publishing import publish  # publish imports this module's siblings

    now = clock.now()
    subscription.is_active = False
    subscription.disabled_reason = reason
    subscription.disabled_at = now
    db.session.execute(
        update(Delivery)
        .where(Delivery.subscription_id == subscription.id, Delivery.status == "pending")
        .values(status="cancelled", next_attempt_at=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    publish(
        "endpoint.disabled",
        {
            "endpoint_id": subscription.id,
            "url": subscription.url,
            "reason": reason,
            "disabled_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        tenant_id=subscription.tenant_id,
    )


def enable(subscription: Subscription) -> None:
    """Re-enable an endpoint; its failure clock starts afresh."""
    subscription.is_active = True
    subscription.disabled_reason = None
    subscription.disabled_at = None
    subscription.failing_since = None
