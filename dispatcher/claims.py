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

Leasing stays here rather than in dispatcher/transitions.py, the writer of delivery states: a
claim and a release write only `lease_expires_at`, which says who holds a pending delivery, not
what state it is in. The statements name the pending status as a literal in their SQL (not a
bound parameter), so that the planner may use the partial index of pending rows.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Boolean,
    Integer,
    String,
    bindparam,
    column,
    literal_column,
    or_,
    select,
    text,
    update,
)

from dispatcher import clock
from dispatcher.models import Delivery
from dispatcher.models.types import UTCDateTime
from dispatcher.states import DeliveryStatus
from dispatcher.store import db

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


_PENDING_SQL = f"'{DeliveryStatus.PENDING}'"  # the status as an SQL literal (see above)


def due_filter(now: datetime):
    """Deliveries that should be sent now and that no live worker holds."""
    return (
        Delivery.status == literal_column(_PENDING_SQL),
        Delivery.next_attempt_at <= now,
        or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
    )


def lease_until(now: datetime, lease: timedelta) -> datetime:
    """Twice the longest attempt plus a margin: a live worker always records its attempt
    before anyone else may claim the delivery."""
    return now + 2 * lease + LEASE_MARGIN


_DUE_ENDPOINTS = text(
    f"""
    WITH RECURSIVE endpoints(id) AS (
        SELECT (SELECT min(subscription_id) FROM hookline_deliveries
                WHERE status = {_PENDING_SQL} AND priority = :priority)
        UNION ALL
        SELECT (SELECT min(d.subscription_id) FROM hookline_deliveries AS d
                WHERE d.status = {_PENDING_SQL} AND d.priority = :priority
                  AND d.subscription_id > endpoints.id)
        FROM endpoints WHERE endpoints.id IS NOT NULL
    )
    SELECT s.id, s.paused_until, s.circuit_opened_at, s.rate_limit,
           (SELECT min(d.next_attempt_at) FROM hookline_deliveries AS d
            WHERE d.status = {_PENDING_SQL} AND d.priority = :priority AND d.subscription_id = s.id
              AND (d.lease_expires_at IS NULL OR d.lease_expires_at < :now)) AS due_at
    FROM endpoints JOIN hookline_subscriptions AS s ON s.id = endpoints.id
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


_RETURNING = (
    "id, tenant_id, event_id, subscription_id, event_type, attempt_count, next_trigger, "
    "is_test, next_attempt_at"
)
_STILL_DUE = (
    f"status = {_PENDING_SQL} AND next_attempt_at <= :now "
    "AND (lease_expires_at IS NULL OR lease_expires_at < :now)"
)
_RETURNED_TYPES = (
    column("id", String),
    column("tenant_id", String),
    column("event_id", String),
    column("subscription_id", String),
    column("event_type", String),
    column("attempt_count", Integer),
    column("next_trigger", String),
    column("is_test", Boolean),
    column("next_attempt_at", UTCDateTime()),
)
_TIMES = (bindparam("now", type_=UTCDateTime()), bindparam("expires", type_=UTCDateTime()))

# PostgreSQL: each endpoint's rows by a LATERAL subquery over arrays of (endpoint, room), so the
# statement is the same text for any number of endpoints; SKIP LOCKED keeps two workers from
# waiting on each other, and a MATERIALIZED CTE picks the rows exactly once.
_CLAIM_LATERAL = (
    text(
        f"""
        WITH chosen AS MATERIALIZED (
            SELECT picked.id
            FROM unnest(CAST(:sids AS varchar[]), CAST(:rooms AS integer[])) AS wanted(sid, room)
            CROSS JOIN LATERAL (
                SELECT d.id FROM hookline_deliveries AS d
                WHERE d.subscription_id = wanted.sid AND d.priority = false
                  AND d.status = {_PENDING_SQL} AND d.next_attempt_at <= :now
                  AND (d.lease_expires_at IS NULL OR d.lease_expires_at < :now)
                ORDER BY d.next_attempt_at LIMIT wanted.room
                FOR UPDATE SKIP LOCKED
            ) AS picked
        )
        UPDATE hookline_deliveries SET lease_expires_at = :expires FROM chosen
        WHERE hookline_deliveries.id = chosen.id AND {_STILL_DUE}
        RETURNING hookline_deliveries.{_RETURNING}
        """
    )
    .bindparams(*_TIMES)
    .columns(*_RETURNED_TYPES)
)


@functools.lru_cache(maxsize=64)
def _claim_union(branches: int):
    """SQLite: one limited SELECT per endpoint, joined by UNION ALL (SQLite has one writer, so
    the UPDATE is atomic without row locks). One text per number of endpoints, made once."""
    picks = " UNION ALL ".join(
        f"SELECT id FROM (SELECT id FROM hookline_deliveries WHERE subscription_id = :s{i} "
        f"AND priority = 0 AND {_STILL_DUE} ORDER BY next_attempt_at LIMIT :n{i})"
        for i in range(branches)
    )
    return (
        text(
            f"UPDATE hookline_deliveries SET lease_expires_at = :expires WHERE id IN ({picks}) "
            f"AND {_STILL_DUE} RETURNING {_RETURNING}"
        )
        .bindparams(*_TIMES)
        .columns(*_RETURNED_TYPES)
    )


def claim_for(
    grants: Mapping[str, int], *, lease: timedelta, probes: frozenset[str] = frozenset()
) -> list[Claim]:
    """Lease up to `grants[subscription id]` of each endpoint's oldest due normal deliveries.

    Does not commit: the caller commits the lease together with its probe rights."""
    items = [(sid, n) for sid, n in grants.items() if n > 0]
    if not items:
        return []
    now = clock.now()
    expires = lease_until(now, lease)
    times = {"now": now, "expires": expires}
    if db.engine.dialect.name == "postgresql":
        rows = db.session.execute(
            _CLAIM_LATERAL,
            {**times, "sids": [sid for sid, _ in items], "rooms": [n for _, n in items]},
        ).all()
    else:
        rows = []
        for i in range(0, len(items), SQLITE_BRANCHES):
            chunk = items[i : i + SQLITE_BRANCHES]
            params = dict(times)
            for j, (sid, n) in enumerate(chunk):
                params[f"s{j}"], params[f"n{j}"] = sid, n
            rows += db.session.execute(_claim_union(len(chunk)), params).all()
    rows.sort(key=lambda row: row.next_attempt_at)
    return [_claim(row, expires, probe=row.subscription_id in probes) for row in rows]


def _lease(which, now: datetime, expires: datetime):
    return (
        update(Delivery)
        .where(which, *due_filter(now))
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


def release(held: list[Claim]) -> None:
    """Give leases back (a worker shutting down): those deliveries are due again at once, for
    any worker, instead of when the lease runs out. A lease that is no longer this worker's
    (it ran out and someone else claimed the delivery) is left alone. Commits."""
    by_lease: dict[datetime, list[str]] = {}
    for claim in held:
        by_lease.setdefault(claim.lease_expires_at, []).append(claim.id)
    for expires, ids in by_lease.items():
        db.session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.lease_expires_at == expires,
                Delivery.status == DeliveryStatus.PENDING,
            )
            .values(lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
