"""Turning endpoints off and on, with what must happen alongside."""

from __future__ import annotations

from dispatcher import clock, notices, transitions
from dispatcher.models import Subscription
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
    transitions.cancel_waiting(subscription.id, now=now)
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
