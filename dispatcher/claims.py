"""Claiming due deliveries from the database with a lease.

The lease is what keeps two workers from sending the same attempt at once: a claim sets
`lease_expires_at`, and only rows whose lease is empty or expired can be claimed. A worker that
dies mid-delivery leaves its lease to expire, and the delivery is claimed again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
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
    per_endpoint: int | None = None,
    busy: Mapping[str, int] | None = None,
) -> tuple[list[Claim], bool]:
    """Lease up to `limit` due deliveries, priority ones (tests, manual retries) first, and
    commit the lease. Returns the claims and whether more were due than it looked at.

    `lease` is the longest an attempt can take; the lease lasts twice that plus a margin, so a
    live worker always records its attempt before anyone else may claim the delivery.
    `include_priority=False` skips the priority statement (a busy drain looks only now and then).
    With `per_endpoint`, no subscription ends up with more than that many in flight, counting
    the `busy` ones this worker already sends: a slow endpoint's backlog cannot take the
    sending threads from everyone else.
    """
    taken = Counter(busy or {})
    claims: list[Claim] = []
    more = False
    kinds = ([True] if include_priority else []) + ([] if priority_only else [False])
    for priority in kinds:
        found, more_here = _claim(limit - len(claims), lease, priority, per_endpoint, taken)
        claims += found
        more = more or more_here
    return claims, more


def _claim(
    limit: int, lease: timedelta, priority: bool, per_endpoint: int | None, taken: Counter[str]
) -> tuple[list[Claim], bool]:
    """Lease the oldest due rows (reading the (status, priority, next_attempt_at) index in
    order), then hand back, in the same transaction, those whose endpoint has no room left.
    Adds what it keeps to `taken`.

    One atomic statement does the leasing, so two workers never pick the same rows and then
    race for them; handing back is a second statement only when an endpoint had too many."""
    if limit <= 0:
        return [], False
    now = clock.now()
    expires = now + 2 * lease + LEASE_MARGIN
    candidates = select(Delivery.id).where(*due_filter(now), Delivery.priority == priority)
    if per_endpoint is not None:
        full = [sub for sub, count in taken.items() if count >= per_endpoint]
        if full:
            candidates = candidates.where(Delivery.subscription_id.not_in(full))
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
            Delivery.next_attempt_at,
        )
        .execution_options(synchronize_session=False)
    )
    rows = sorted(db.session.execute(statement).all(), key=lambda row: row.next_attempt_at)
    kept, handed_back = [], []
    for row in rows:
        if per_endpoint is None or taken[row.subscription_id] < per_endpoint:
            taken[row.subscription_id] += 1
            kept.append(row)
        else:
            handed_back.append(row.id)
    if handed_back:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(handed_back))
            .values(lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
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
        for row in kept
    ], len(rows) == limit
