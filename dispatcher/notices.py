"""Operational events: what Hookline tells a tenant's endpoints about one of them.

One function per `endpoint.*` type builds its payload (documented in portal/catalog.py), and all
of them publish through `publishing.publish_about`, in the caller's transaction, to the tenant's
*other* endpoints that subscribe to the type (by name or `endpoint.*`; `*` leaves them out).
Two rules keep them from feeding on themselves: an event is never delivered to the endpoint it
is about, and the delivery of an operational event never causes another one (dispatcher/
outcomes.py checks `filters.is_operational`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from dispatcher import clock
from dispatcher.errors import ArchivedEventType, UnknownEventType
from dispatcher.message import format_timestamp
from dispatcher.models import Subscription

log = logging.getLogger(__name__)

CREATED = "endpoint.created"
UPDATED = "endpoint.updated"
DELETED = "endpoint.deleted"
ENABLED = "endpoint.enabled"
DISABLED = "endpoint.disabled"
SECRET_ROTATED = "endpoint.secret_rotated"
DELIVERY_FAILED = "endpoint.delivery_failed"
FAILING = "endpoint.failing"
RECOVERED = "endpoint.recovered"


def _stamp(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def _publish(event_type: str, subscription: Subscription, data: dict[str, Any]) -> None:
    from dispatcher.publishing import publish_about  # publishing imports this module's siblings

    payload = {"endpoint_id": subscription.id, "url": subscription.url, **data}
    try:
        publish_about(event_type, payload, tenant_id=subscription.tenant_id, about=subscription.id)
    except (UnknownEventType, ArchivedEventType):
        # The catalog was not synced (`flask db upgrade` does it): the change itself must not
        # fail for want of its notice.
        log.error("cannot publish %s: the type is not in the catalog", event_type)


def created(subscription: Subscription) -> None:
    """A new endpoint was added."""
    _publish(
        CREATED,
        subscription,
        {
            "event_types": list(subscription.events or []),
            "signature_scheme": subscription.signature_scheme,
            "created_at": _stamp(subscription.created_at or clock.now()),
        },
    )


def updated(subscription: Subscription, changed_fields: list[str]) -> None:
    """An endpoint's settings changed (`changed_fields` names them)."""
    _publish(
        UPDATED,
        subscription,
        {"changed_fields": changed_fields, "updated_at": _stamp(clock.now())},
    )


def deleted(subscription: Subscription) -> None:
    """An endpoint is being deleted (call before the row goes)."""
    _publish(DELETED, subscription, {"deleted_at": _stamp(clock.now())})


def enabled(subscription: Subscription) -> None:
    """A disabled endpoint was turned back on."""
    _publish(ENABLED, subscription, {"enabled_at": _stamp(clock.now())})


def disabled(subscription: Subscription, reason: str) -> None:
    """An endpoint was turned off, by an admin or by Hookline."""
    _publish(
        DISABLED,
        subscription,
        {"reason": reason, "disabled_at": _stamp(subscription.disabled_at or clock.now())},
    )


def secret_rotated(subscription: Subscription, previous_expires_at: datetime | None) -> None:
    """The endpoint has a new signing key; the previous one signs until `previous_expires_at`."""
    _publish(
        SECRET_ROTATED,
        subscription,
        {
            "signature_scheme": subscription.signature_scheme,
            "rotated_at": _stamp(clock.now()),
            "previous_secret_expires_at": _stamp(previous_expires_at),
        },
    )


def delivery_failed(subscription: Subscription, delivery: dict[str, Any]) -> None:
    """A delivery used up its automatic attempts (or was refused for good with 410)."""
    _publish(DELIVERY_FAILED, subscription, delivery)


def failing(subscription: Subscription) -> None:
    """The endpoint's circuit breaker opened: deliveries to it wait."""
    _publish(
        FAILING,
        subscription,
        {
            "consecutive_failures": subscription.consecutive_failures or 0,
            "last_error": subscription.last_error,
            "failing_since": _stamp(subscription.circuit_opened_at or clock.now()),
            "paused_until": _stamp(subscription.paused_until),
        },
    )


def recovered(subscription: Subscription) -> None:
    """The endpoint's circuit breaker closed: deliveries to it flow again."""
    _publish(RECOVERED, subscription, {"recovered_at": _stamp(clock.now())})
