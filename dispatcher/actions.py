"""What an admin asks of deliveries: a test event, a retry, a recovery.

Each runs in the caller's transaction and asks for a drain once it commits; test events and
manual retries go to the priority queue so the portal can show their result within seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatcher import clock, transitions
from dispatcher.errors import UnknownEventType
from dispatcher.models import Delivery, Event, Subscription
from dispatcher.publishing import find_event_type, fingerprint, request_drain
from dispatcher.states import Trigger
from dispatcher.store import db

TEST_EVENT_TYPE = "webhook.test"


def send_test(subscription: Subscription, event_type: str | None = None) -> Delivery:
    """Queue a test event (the type's example payload) for one subscription only.

    A test is attempted once, is never retried, and does not count toward auto-disable.
    """
    name = event_type or TEST_EVENT_TYPE
    found = find_event_type(db.session, subscription.tenant_id, name)
    if found is None or found.archived:
        raise UnknownEventType(f"unknown event type {name!r}")
    data: Any = dict(found.example or {})
    now = clock.now()
    event = Event(
        tenant_id=subscription.tenant_id,
        type=name,
        data=data,
        fingerprint=fingerprint(name, data),
        created_at=now,
    )
    db.session.add(event)
    db.session.flush()
    delivery = Delivery(
        tenant_id=subscription.tenant_id,
        event_id=event.id,
        subscription_id=subscription.id,
        event_type=name,
        priority=True,
        is_test=True,
        next_trigger=Trigger.TEST,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    db.session.add(delivery)
    db.session.flush()
    request_drain(db.session(), priority=True)
    return delivery


def retry(delivery: Delivery) -> Delivery:
    """Send a delivery again now. A finished one gets one manual attempt; a pending one simply
    stops waiting for its scheduled retry."""
    transitions.retry_now(delivery, now=clock.now())
    db.session.flush()
    request_drain(db.session(), priority=True)
    return delivery


def recover(subscription: Subscription, since: datetime, until: datetime | None = None) -> int:
    """Queue one manual attempt for every failed or cancelled delivery of `subscription` created
    since `since`. Returns how many were queued."""
    queued = transitions.recover(subscription.id, since, until, now=clock.now())
    if queued:
        request_drain(db.session())
    return queued
