"""Claiming due deliveries from the database with a lease.

The lease is what keeps two workers from sending the same attempt at once: a claim sets
`lease_expires_at`, and only rows whose lease is empty or expired can be claimed. A worker that
dies mid-delivery leaves its lease to expire, and the delivery is claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from dispatcher import clock
from portal.extensions import db
from portal.models import Delivery

LEASE_MARGIN = timedelta(seconds=10)


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds until `lease_expires_at`."""

    id: str
    tenant_id: str
    event_id: str
    subscription_id: str
    event_type: str
    attempt_number: int
    trigger: str
    is_test: bool
    lease_expires_at: datetime


def due_filter(now: datetime):
    """Deliveries that should be sent now and that no live worker holds."""
    return (
        Delivery.status == "pending",
        Delivery.next_attempt_at <= now,
        or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
    )


def claim_due(
    limit: int,
    *,
    lease: timedelta,
    priority_only: bool = False,
    include_priority: bool = True,
    exclude_subscriptions: frozenset[str] = frozenset(),
) -> list[Claim]:
    """Lease up to `limit` due deliveries, priority ones (tests, manual retries) first, and
    commit the lease.

    `lease` is the longest an attempt can take; the lease lasts twice that plus a margin, so a
    live worker always records its attempt before anyone else may claim the delivery.
    `include_priority=False` skips the priority statement (a busy drain looks only now and then).
    """
    claims = _claim(limit, lease, True, exclude_subscriptions) if include_priority else []
    if not priority_only and len(claims) < limit:
        claims += _claim(limit - len(claims), lease, False, exclude_subscriptions)
    return claims


def _claim(
    limit: int, lease: timedelta, priority: bool, exclude_subscriptions: frozenset[str]
) -> list[Claim]:
    """One claim statement; each reads the (status, priority, next_attempt_at) index in order."""
    if limit <= 0:
        return []
    now = clock.now()
    expires = now + 2 * lease + LEASE_MARGIN
    candidates = select(Delivery.id).where(*due_filter(now), Delivery.priority == priority)
    if exclude_subscriptions:
        candidates = candidates.where(Delivery.subscription_id.not_in(exclude_subscriptions))
    # A MATERIALIZED CTE picks the rows exactly once: PostgreSQL may re-run an IN (subquery
    # … LIMIT … SKIP LOCKED) and so claim many more rows than asked for.
    chosen = (
        candidates.order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("chosen")
        .prefix_with("MATERIALIZED")
    )
    statement = (
        update(Delivery)
        .where(Delivery.id == chosen.c.id, *due_filter(now))
        .values(lease_expires_at=expires)
        .returning(
            Delivery.id,
            Delivery.tenant_id,
            Delivery.event_id,
            Delivery.subscription_id,
            Delivery.event_type,
            Delivery.attempt_count,
            Delivery.next_trigger,
            Delivery.is_test,
        )
        .execution_options(synchronize_session=False)
    )
    rows = db.session.execute(statement).all()
    db.session.commit()
    return [
        Claim(
            id=row.id,
            tenant_id=row.tenant_id,
            event_id=row.event_id,
            subscription_id=row.subscription_id,
            event_type=row.event_type,
            attempt_number=row.attempt_count + 1,
            trigger=row.next_trigger,
            is_test=row.is_test,
            lease_expires_at=expires,
        )
        for row in rows
    ]
