"""Claiming due deliveries from the database with a lease, one endpoint at a time.

The lease is what keeps two workers from sending the same attempt at once: a claim sets
`lease_expires_at`, and only rows whose lease is empty or expired can be claimed. A worker that
dies mid-delivery leaves its lease to expire, and the delivery is claimed again.

Normal deliveries are claimed per endpoint: `due_endpoints` lists the endpoints that have
pending work (an index skip-scan, so its cost follows the number of endpoints, not the size of
anyone's backlog), the drain decides how many each may have, and `claim_for` leases that many
of each endpoint's oldest due rows in one statement. One endpoint's backlog of 100,000 is thus
never in front of another endpoint's fresh event. Priority deliveries (tests, manual retries)
are few and are claimed oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    column,
    or_,
    select,
    text,
    true,
    union_all,
    update,
    values,
)

from dispatcher import clock
from portal.extensions import db
from portal.models import Delivery
from portal.models.types import UTCDateTime

LEASE_MARGIN = timedelta(seconds=10)
SQLITE_BRANCHES = 400  # SQLite allows 500 terms in a compound SELECT


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
    probe: bool = False  # the one request that tests an open circuit breaker


@dataclass(frozen=True)
class DueEndpoint:
    """An endpoint with pending normal deliveries, and what may hold them back."""

    subscription_id: str
    due_at: datetime | None  # its oldest unleased pending delivery's next attempt
    paused_until: datetime | None
    circuit_open: bool
    rate_limit: int | None


def due_filter(now: datetime):
    """Deliveries that should be sent now and that no live worker holds."""
    return (
        Delivery.status == "pending",
        Delivery.next_attempt_at <= now,
        or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
    )


def lease_until(now: datetime, lease: timedelta) -> datetime:
    """Twice the longest attempt plus a margin: a live worker always records its attempt
    before anyone else may claim the delivery."""
    return now + 2 * lease + LEASE_MARGIN


_DUE_ENDPOINTS = text(
    """
    WITH RECURSIVE endpoints(id) AS (
        SELECT (SELECT min(subscription_id) FROM deliveries
                WHERE status = 'pending' AND priority = :priority)
        UNION ALL
        SELECT (SELECT min(d.subscription_id) FROM deliveries AS d
                WHERE d.status = 'pending' AND d.priority = :priority
                  AND d.subscription_id > endpoints.id)
        FROM endpoints WHERE endpoints.id IS NOT NULL
    )
    SELECT s.id, s.paused_until, s.circuit_opened_at, s.rate_limit,
           (SELECT min(d.next_attempt_at) FROM deliveries AS d
            WHERE d.status = 'pending' AND d.priority = :priority AND d.subscription_id = s.id
              AND (d.lease_expires_at IS NULL OR d.lease_expires_at < :now)) AS due_at
    FROM endpoints JOIN subscriptions AS s ON s.id = endpoints.id
    """
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("priority", value=False))
_DUE_ENDPOINTS = _DUE_ENDPOINTS.columns(
    column("id", String),
    column("paused_until", UTCDateTime()),
    column("circuit_opened_at", UTCDateTime()),
    column("rate_limit", Integer),
    column("due_at", UTCDateTime()),
)


def due_endpoints() -> list[DueEndpoint]:
    """Every endpoint with pending normal deliveries (due or not), with its health."""
    rows = db.session.execute(_DUE_ENDPOINTS, {"now": clock.now(), "priority": False})
    return [
        DueEndpoint(row.id, row.due_at, row.paused_until, row.circuit_opened_at is not None,
                    row.rate_limit)
        for row in rows
    ]  # fmt: skip


_RETURNED = (
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


def claim_for(
    grants: Mapping[str, int], *, lease: timedelta, probes: frozenset[str] = frozenset()
) -> list[Claim]:
    """Lease up to `grants[subscription id]` of each endpoint's oldest due normal deliveries.

    Does not commit: the caller commits the lease together with its probe rights."""
    grants = {sid: n for sid, n in grants.items() if n > 0}
    if not grants:
        return []
    now = clock.now()
    expires = lease_until(now, lease)
    if db.engine.dialect.name == "postgresql":
        statements = [_claim_lateral(grants, now, expires)]
    else:
        items = list(grants.items())
        statements = [
            _claim_union(dict(items[i : i + SQLITE_BRANCHES]), now, expires)
            for i in range(0, len(items), SQLITE_BRANCHES)
        ]
    rows = [row for statement in statements for row in db.session.execute(statement)]
    rows.sort(key=lambda row: row.next_attempt_at)
    return [_claim(row, expires, probe=row.subscription_id in probes) for row in rows]


def _oldest_due(subscription_id, now: datetime):
    return select(Delivery.id).where(
        Delivery.subscription_id == subscription_id,
        Delivery.priority == False,  # noqa: E712 (SQL, not Python)
        *due_filter(now),
    )


def _claim_lateral(grants: Mapping[str, int], now: datetime, expires: datetime):
    """PostgreSQL: each endpoint's rows by a LATERAL subquery; SKIP LOCKED keeps two workers
    from waiting on each other, and a MATERIALIZED CTE picks the rows exactly once."""
    wanted = values(column("sid", String), column("room", Integer), name="wanted").data(
        list(grants.items())
    )
    picked = (
        _oldest_due(wanted.c.sid, now)
        .order_by(Delivery.next_attempt_at)
        .limit(wanted.c.room)
        .with_for_update(skip_locked=True)
        .lateral("picked")
    )
    chosen = (
        select(picked.c.id)
        .select_from(wanted.join(picked, true()))
        .cte("chosen")
        .prefix_with("MATERIALIZED")
    )
    return _lease(Delivery.id == chosen.c.id, now, expires)


def _claim_union(grants: Mapping[str, int], now: datetime, expires: datetime):
    """SQLite: one limited SELECT per endpoint, joined by UNION ALL (SQLite has one writer, so
    the UPDATE is atomic without row locks)."""
    branches = [
        select(pick.c.id)
        for pick in (
            _oldest_due(sid, now).order_by(Delivery.next_attempt_at).limit(room).subquery()
            for sid, room in grants.items()
        )
    ]
    chosen = branches[0] if len(branches) == 1 else union_all(*branches)
    return _lease(Delivery.id.in_(chosen), now, expires)


def _lease(which, now: datetime, expires: datetime):
    return (
        update(Delivery)
        .where(which, *due_filter(now))
        .values(lease_expires_at=expires)
        .returning(*_RETURNED)
        .execution_options(synchronize_session=False)
    )


def claim_priority(limit: int, *, lease: timedelta) -> list[Claim]:
    """Lease up to `limit` due priority deliveries (tests, manual retries), oldest first, and
    commit. They go out whatever the endpoint's health: a person asked for them now."""
    if limit <= 0:
        return []
    now = clock.now()
    expires = lease_until(now, lease)
    chosen = (
        select(Delivery.id)
        .where(*due_filter(now), Delivery.priority == True)  # noqa: E712
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("chosen")
        .prefix_with("MATERIALIZED")
    )
    rows = db.session.execute(_lease(Delivery.id == chosen.c.id, now, expires)).all()
    db.session.commit()
    rows.sort(key=lambda row: row.next_attempt_at)
    return [_claim(row, expires) for row in rows]


def _claim(row, expires: datetime, probe: bool = False) -> Claim:
    return Claim(
        id=row.id,
        tenant_id=row.tenant_id,
        event_id=row.event_id,
        subscription_id=row.subscription_id,
        event_type=row.event_type,
        attempt_number=row.attempt_count + 1,
        trigger=row.next_trigger,
        is_test=row.is_test,
        lease_expires_at=expires,
        probe=probe,
    )
