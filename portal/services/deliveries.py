"""The delivery log: filtered listing, detail with attempts, and manual retry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from dispatcher import actions
from dispatcher.states import STATUSES
from dispatcher.store import db
from portal.models import Attempt, Delivery, Subscription
from portal.services import ServiceError, find_owned
from portal.services.event_types import MAX_NAME_LENGTH
from portal.services.inputs import check_line, check_moment
from portal.services.paging import MAX_CURSOR_LENGTH, Page, fetch_page


def list_deliveries(
    tenant_id: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    status: str | None = None,
    subscription_id: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[Delivery]:
    """The tenant's deliveries, newest first, optionally filtered.

    `status` is a DeliveryStatus value; `since`/`until` bound the creation time (inclusive,
    aware datetimes). An unknown or foreign `subscription_id` simply matches nothing. Raises
    ServiceError (with `field`) for a bad filter, limit or cursor.
    """
    if status is not None and status not in STATUSES:
        raise ServiceError(f"status must be one of {', '.join(STATUSES)}", field="status")
    subscription_id = check_line(
        subscription_id, "subscription_id", "subscription_id", MAX_CURSOR_LENGTH
    )
    event_type = check_line(event_type, "event_type", "event_type", MAX_NAME_LENGTH)
    since = check_moment(since, "since")
    until = check_moment(until, "until")
    if since and until and since > until:
        raise ServiceError("since must not be after until", field="since")
    query = select(Delivery).where(Delivery.tenant_id == tenant_id)
    if status:
        query = query.where(Delivery.status == status)
    if subscription_id:
        query = query.where(Delivery.subscription_id == subscription_id)
    if event_type:
        query = query.where(Delivery.event_type == event_type)
    if since:
        query = query.where(Delivery.created_at >= since)
    if until:
        query = query.where(Delivery.created_at <= until)
    return fetch_page(query, Delivery.id, limit, cursor)


def get_delivery(tenant_id: str, delivery_id: str) -> Delivery:
    """The tenant's delivery, or NotFound (also for another tenant's id)."""
    return find_owned(Delivery, tenant_id, delivery_id, "delivery")


def attempts_for(delivery: Delivery) -> list[Attempt]:
    """Every attempt of one delivery, first to last."""
    return list(
        db.session.scalars(
            select(Attempt)
            .where(Attempt.delivery_id == delivery.id, Attempt.tenant_id == delivery.tenant_id)
            .order_by(Attempt.number, Attempt.started_at)
        )
    )


def retry_delivery(tenant_id: str, delivery_id: str) -> Delivery:
    """Send a delivery again now, on the priority queue (the caller commits).

    A finished delivery gets one manual attempt; a pending one stops waiting for its next
    scheduled retry. Refused (code "endpoint_disabled") while its endpoint is disabled, since
    the worker would only cancel it again.
    """
    delivery = get_delivery(tenant_id, delivery_id)
    subscription = db.session.get(Subscription, delivery.subscription_id)
    if subscription is None or not subscription.is_active:
        raise ServiceError(
            "the endpoint is disabled; enable it before retrying its deliveries",
            code="endpoint_disabled",
        )
    return actions.retry(delivery)
