"""Delivery statistics for an endpoint's stats and the tenant's dashboard, and endpoint health
counts for /metrics.

Counting happens in SQL (portable CASE buckets, so SQLite and PostgreSQL agree); latency
percentiles are computed in Python over a bounded sample of the newest attempts, which keeps the
query cheap and the result exact for any tenant below the sample size. Endpoint health states
come from dispatcher.health.describe, row by row: SQL only narrows which rows are asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import load_only

from dispatcher.health import FAILING, HEALTHY, STATES, THROTTLED, EndpointHealth, unhealthy
from dispatcher.states import STATUSES, DeliveryStatus, Trigger
from dispatcher.store import db
from portal.models import Attempt, Delivery, Subscription
from portal.services import ServiceError
from portal.services import subscriptions as subscription_service

WINDOW = timedelta(hours=24)
LATENCY_SAMPLE = 10_000
MAX_LISTED_ENDPOINTS = 50


@dataclass(frozen=True)
class Latency:
    """Attempt durations in milliseconds (None when there were no answered attempts)."""

    p50: int | None
    p95: int | None
    p99: int | None
    samples: int


@dataclass(frozen=True)
class SubscriptionStats:
    """One endpoint's deliveries created in [since, until); test deliveries are left out."""

    subscription_id: str
    since: datetime
    until: datetime
    counts: dict[str, int]
    total: int
    success_rate: float | None
    latency_ms: Latency


@dataclass(frozen=True)
class HourBucket:
    """Deliveries created in one hour [start, start + 1 h), by their current status."""

    start: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class UnhealthyEndpoint:
    """An active endpoint whose health is failing or throttled, with that health."""

    endpoint: Subscription
    health: EndpointHealth


@dataclass(frozen=True)
class TenantOverview:
    """The dashboard: 24 hourly buckets (the last is the current hour), totals and endpoints
    needing attention: `unhealthy` (active, failing or throttled; failing first) and
    `disabled`."""

    since: datetime
    until: datetime
    hours: list[HourBucket]
    counts: dict[str, int]
    success_rate: float | None
    p95_latency_ms: int | None
    unhealthy: list[UnhealthyEndpoint]
    disabled: list[Subscription]

    @property
    def failing(self) -> list[UnhealthyEndpoint]:
        """The unhealthy endpoints whose circuit breaker is open."""
        return [item for item in self.unhealthy if item.health.state == FAILING]

    @property
    def throttled(self) -> list[UnhealthyEndpoint]:
        """The unhealthy endpoints paused by their receiver's Retry-After."""
        return [item for item in self.unhealthy if item.health.state == THROTTLED]


def percentile(sorted_values: list[int], q: float) -> int | None:
    """The nearest-rank percentile `q` (0–100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def success_rate(counts: dict[str, int]) -> float | None:
    """Succeeded over finished (succeeded + failed), or None before anything finished."""
    succeeded = counts.get(DeliveryStatus.SUCCEEDED, 0)
    finished = succeeded + counts.get(DeliveryStatus.FAILED, 0)
    return round(succeeded / finished, 4) if finished else None


def _check_now(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ServiceError("now must be an aware datetime", field="now")
    return now


def _status_counts(*conditions) -> dict[str, int]:
    rows = db.session.execute(
        select(Delivery.status, func.count()).where(*conditions).group_by(Delivery.status)
    ).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: count for status, count in rows})
    return counts


def _latency(*conditions, join_deliveries: bool = False) -> Latency:
    query = select(Attempt.duration_ms).where(
        *conditions, Attempt.trigger != Trigger.TEST, Attempt.response_status.is_not(None)
    )
    if join_deliveries:
        query = query.join(Delivery, Delivery.id == Attempt.delivery_id)
    durations = sorted(
        db.session.scalars(query.order_by(Attempt.started_at.desc()).limit(LATENCY_SAMPLE))
    )
    return Latency(
        p50=percentile(durations, 50),
        p95=percentile(durations, 95),
        p99=percentile(durations, 99),
        samples=len(durations),
    )


def subscription_stats(tenant_id: str, subscription_id: str, now: datetime) -> SubscriptionStats:
    """Counts by status, success rate and latency percentiles over the 24 h before `now`.

    Raises NotFound for an unknown or another tenant's endpoint.
    """
    now = _check_now(now)
    subscription = subscription_service.get(tenant_id, subscription_id)
    since = now - WINDOW
    counts = _status_counts(
        Delivery.subscription_id == subscription.id,
        Delivery.tenant_id == tenant_id,
        Delivery.is_test.is_(False),
        Delivery.created_at >= since,
        Delivery.created_at < now,
    )
    latency = _latency(
        Attempt.tenant_id == tenant_id,
        Attempt.started_at >= since,
        Attempt.started_at < now,
        Delivery.subscription_id == subscription.id,
        join_deliveries=True,
    )
    return SubscriptionStats(
        subscription_id=subscription.id,
        since=since,
        until=now,
        counts=counts,
        total=sum(counts.values()),
        success_rate=success_rate(counts),
        latency_ms=latency,
    )


def _hourly(tenant_id: str, starts: list[datetime], until: datetime) -> list[HourBucket]:
    # Newest boundary first, so each row falls in the first bucket whose start it passes.
    newest_first = reversed(list(enumerate(starts)))
    bucket = case(
        *[(Delivery.created_at >= start, index) for index, start in newest_first], else_=-1
    ).label("bucket")
    rows = db.session.execute(
        select(bucket, Delivery.status, func.count())
        .where(
            Delivery.tenant_id == tenant_id,
            Delivery.is_test.is_(False),
            Delivery.created_at >= starts[0],
            Delivery.created_at < until,
        )
        .group_by(bucket, Delivery.status)
    ).all()
    buckets = [HourBucket(start=start, counts=dict.fromkeys(STATUSES, 0)) for start in starts]
    for index, status, count in rows:
        if 0 <= index < len(buckets) and status in buckets[index].counts:
            buckets[index].counts[status] += count
    return buckets


def tenant_overview(tenant_id: str, now: datetime) -> TenantOverview:
    """The dashboard over the current hour and the 23 before it."""
    now = _check_now(now)
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    starts = [current_hour - timedelta(hours=23 - i) for i in range(24)]
    until = current_hour + timedelta(hours=1)
    hours = _hourly(tenant_id, starts, until)
    counts = dict.fromkeys(STATUSES, 0)
    for hour in hours:
        for status, count in hour.counts.items():
            counts[status] += count
    latency = _latency(
        Attempt.tenant_id == tenant_id, Attempt.started_at >= starts[0], Attempt.started_at < until
    )
    endpoints = select(Subscription).where(Subscription.tenant_id == tenant_id)
    disabled = db.session.scalars(
        endpoints.where(Subscription.is_active.is_(False))
        .order_by(Subscription.disabled_at.desc())
        .limit(MAX_LISTED_ENDPOINTS)
    ).all()
    return TenantOverview(
        since=starts[0],
        until=until,
        hours=hours,
        counts=counts,
        success_rate=success_rate(counts),
        p95_latency_ms=latency.p95,
        unhealthy=unhealthy_endpoints(tenant_id, now),
        disabled=list(disabled),
    )


# --- endpoint health ----------------------------------------------------------------------------


def unhealthy_endpoints(tenant_id: str, now: datetime) -> list[UnhealthyEndpoint]:
    """The tenant's active endpoints that are failing or throttled: failing first (longest
    first), then throttled (soonest resumed first); at most MAX_LISTED_ENDPOINTS."""
    now = _check_now(now)
    rows = db.session.scalars(
        select(Subscription)
        .where(
            Subscription.tenant_id == tenant_id,
            Subscription.is_active.is_(True),
            unhealthy(now),
        )
        # Open breakers first, longest open first, so the cut keeps the ones listed first.
        .order_by(
            Subscription.circuit_opened_at.is_(None),
            Subscription.circuit_opened_at,
            Subscription.paused_until,
            Subscription.id,
        )
        .limit(MAX_LISTED_ENDPOINTS)
    ).all()
    found = [UnhealthyEndpoint(row, subscription_service.health(row, now)) for row in rows]
    found = [item for item in found if item.health.state != HEALTHY]
    return sorted(found, key=_attention_order)


def _attention_order(item: UnhealthyEndpoint) -> tuple[int, float, str]:
    health = item.health
    moment = health.since if health.state == FAILING else health.paused_until
    return (STATES.index(health.state), moment.timestamp() if moment else 0.0, item.endpoint.id)


def endpoint_states(now: datetime) -> dict[str, int]:
    """Active endpoints of every tenant by health state, every state present (for /metrics)."""
    now = _check_now(now)
    active = Subscription.is_active.is_(True)
    total = db.session.scalar(select(func.count()).select_from(Subscription).where(active)) or 0
    candidates = db.session.scalars(
        select(Subscription)
        .options(
            load_only(
                Subscription.circuit_opened_at,
                Subscription.paused_until,
                Subscription.consecutive_failures,
                Subscription.last_error,
            )
        )
        .where(active, unhealthy(now))
    )
    counts = dict.fromkeys(STATES, 0)
    for row in candidates:
        counts[subscription_service.health(row, now).state] += 1
    counts[HEALTHY] = total - sum(n for state, n in counts.items() if state != HEALTHY)
    return counts
