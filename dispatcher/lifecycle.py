"""Turning endpoints off and on, with what must happen alongside."""

from __future__ import annotations

from sqlalchemy import update

from dispatcher import clock, notices
from dispatcher.models import Delivery, Subscription
from dispatcher.store import db


def disable(subscription: Subscription, reason: str) -> None:
    """Disable an endpoint: cancel what waits for it and tell the tenant's other endpoints.

    Runs in the caller's transaction. Pending deliveries become `cancelled` (recover brings
    them back after re-enabling), so nothing stays stuck in `pending`.
    """
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
    notices.disabled(subscription, reason)


def enable(subscription: Subscription) -> None:
    """Re-enable an endpoint (and tell the tenant's other endpoints); its failure clock starts
    afresh."""
    subscription.is_active = True
    subscription.disabled_reason = None
    subscription.disabled_at = None
    subscription.failing_since = None
    notices.enabled(subscription)
