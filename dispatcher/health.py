"""Endpoint health: the circuit breaker and Retry-After pauses, kept on the subscription row.

An endpoint is *healthy* while deliveries flow; after HOOKLINE_BREAKER_FAILURES failures in a
row (timeouts, connection errors, 5xx, 429) its breaker opens and it is *failing*: nothing is
sent to it until `paused_until`, then one worker at a time sends one probe. The probe's success
closes the breaker; its failure opens it again for twice as long (up to
HOOKLINE_BREAKER_MAX_PAUSE). A 429 or 503 with Retry-After makes it *throttled*: no worker sends
to it before the time is up. Deferred deliveries stay `pending` and due; a deferral is never an
attempt, so it uses up no retries.

The workers are the only writers (`record_results`, `claim_probe`), inside the transaction that
records the attempts; the portal and the API read `describe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, or_, select, update

from dispatcher import clock
from dispatcher.models import Subscription
from dispatcher.models.types import UTCDateTime
from dispatcher.store import db

HEALTHY, FAILING, THROTTLED = "healthy", "failing", "throttled"
STATES = (HEALTHY, FAILING, THROTTLED)
FIRST_PAUSE_SECONDS = 5  # the first breaker pause; each failed probe doubles it
MAX_ERROR_LENGTH = 500
SUCCESS_PRECISION = timedelta(seconds=1)  # how stale an endpoint's last_success_at may be


@dataclass(frozen=True)
class EndpointHealth:
    """What the portal and the API show about an endpoint's health."""

    state: str  # healthy, failing or throttled
    since: datetime | None  # when the breaker opened (failing), else None
    paused_until: datetime | None  # no request before this time
    consecutive_failures: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "paused_until": self.paused_until,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
        }


def describe(subscription: Subscription, now: datetime | None = None) -> EndpointHealth:
    """The endpoint's health as of `now` (the dispatcher's clock by default)."""
    now = now or clock.now()
    paused = subscription.paused_until if _later(subscription.paused_until, now) else None
    if subscription.circuit_opened_at is not None:
        state = FAILING
    elif paused is not None:
        state = THROTTLED
    else:
        state = HEALTHY
    return EndpointHealth(
        state=state,
        since=subscription.circuit_opened_at,
        paused_until=paused,
        consecutive_failures=subscription.consecutive_failures or 0,
        last_error=subscription.last_error,
    )


def unhealthy(now: datetime):
    """SQL for the rows `describe` calls failing or throttled: an open breaker, or a pause not
    over yet (kept beside `describe` so the two cannot drift apart)."""
    return or_(Subscription.circuit_opened_at.is_not(None), Subscription.paused_until > now)


def _later(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment > now


@dataclass
class Result:
    """One attempt's bearing on its endpoint's health, in the order the attempts finished."""

    subscription_id: str
    succeeded: bool
    error: str | None  # what to show as the last error when it failed
    retry_after: float | None  # seconds a 429/503 asked for
    probe: bool  # this attempt was the probe of an open breaker


def pause_cap(schedule: list[int]) -> float:
    """The longest a receiver's Retry-After may pause an endpoint: the retry schedule's longest
    delay (so a pause never outlasts the retries it would hold back)."""
    return float(max(schedule, default=FIRST_PAUSE_SECONDS))


_SUBSCRIPTIONS = Subscription.__table__
# What a batch of results needs to know first: most batches are successes of healthy endpoints,
# and reading this once lets them skip every write (Core statements, built once, because the
# ORM's per-statement overhead cost more than the SQL at this rate).
_HEALTH_OF = select(
    _SUBSCRIPTIONS.c.id,
    _SUBSCRIPTIONS.c.consecutive_failures,
    _SUBSCRIPTIONS.c.circuit_opened_at,
    _SUBSCRIPTIONS.c.probe_until,
    _SUBSCRIPTIONS.c.failing_since,
    _SUBSCRIPTIONS.c.last_success_at,
).where(_SUBSCRIPTIONS.c.id.in_(bindparam("ids", expanding=True)))
_IDS = _SUBSCRIPTIONS.c.id.in_(bindparam("ids", expanding=True))
_NEEDS_RESET = (
    (_SUBSCRIPTIONS.c.consecutive_failures > 0)
    | _SUBSCRIPTIONS.c.circuit_opened_at.is_not(None)
    | _SUBSCRIPTIONS.c.probe_until.is_not(None)
)
_RESET = (
    update(_SUBSCRIPTIONS)
    .where(_IDS, _NEEDS_RESET)
    .values(
        consecutive_failures=0,
        # A success ends a breaker pause, but not a receiver's own Retry-After.
        paused_until=case(
            (_SUBSCRIPTIONS.c.circuit_opened_at.is_not(None), None),
            else_=_SUBSCRIPTIONS.c.paused_until,
        ),
        circuit_opened_at=None,
        pause_seconds=0,
        probe_until=None,
    )
)
_SUCCEEDED = (
    update(_SUBSCRIPTIONS)
    .where(
        _IDS,
        or_(
            _SUBSCRIPTIONS.c.failing_since.is_not(None),
            _SUBSCRIPTIONS.c.last_success_at.is_(None),
            _SUBSCRIPTIONS.c.last_success_at < bindparam("stale_before", type_=UTCDateTime()),
        ),
    )
    .values(last_success_at=bindparam("now", type_=UTCDateTime()), failing_since=None)
)
_STARTED_FAILING = (
    update(_SUBSCRIPTIONS)
    .where(_IDS, _SUBSCRIPTIONS.c.failing_since.is_(None))
    .values(failing_since=bindparam("now", type_=UTCDateTime()))
)


def record_results(
    results: list[Result], *, threshold: int, max_pause: int, pause_limit: float
) -> list[tuple[str, str, str]]:
    """Apply finished attempts to their endpoints' health, in the caller's transaction.

    Returns the transitions made, as (subscription id, old state, new state), for logs and
    operational events. Endpoints with failures are read under a row lock and written back, so
    two workers' results for one endpoint add up; successes write only what they change."""
    if not results:
        return []
    now = clock.now()
    by_endpoint: dict[str, list[Result]] = {}
    for result in results:
        by_endpoint.setdefault(result.subscription_id, []).append(result)
    current = {row.id: row for row in db.session.execute(_HEALTH_OF, {"ids": list(by_endpoint)})}
    _track_failure_window(by_endpoint, current, now)
    closed = [sid for sid, rs in by_endpoint.items() if rs[-1].succeeded and sid in current]
    dirty = [sid for sid in closed if _needs_reset(current[sid])]
    transitions = [
        (sid, FAILING, HEALTHY) for sid in dirty if current[sid].circuit_opened_at is not None
    ]
    if dirty:
        db.session.execute(_RESET, {"ids": dirty})
    failed = [sid for sid in by_endpoint if sid not in set(closed)]
    if failed:
        rows = db.session.scalars(
            select(Subscription)
            .where(Subscription.id.in_(failed))
            .order_by(Subscription.id)
            .with_for_update()
        ).all()
        for subscription in rows:
            change = _apply_failures(
                subscription, by_endpoint[subscription.id], now, threshold, max_pause, pause_limit
            )
            if change:
                transitions.append((subscription.id, *change))
    # Endpoints that succeeded after failing in this batch keep their last error for display.
    return transitions


def _needs_reset(row) -> bool:
    """Whether a success must clear this endpoint's failure count, breaker or probe."""
    return bool(row.consecutive_failures) or (
        row.circuit_opened_at is not None or row.probe_until is not None
    )


def _track_failure_window(
    by_endpoint: dict[str, list[Result]], current: dict, now: datetime
) -> None:
    """Keep `last_success_at` and `failing_since`, which the 5-day auto-disable reads."""
    succeeded = [sid for sid, rs in by_endpoint.items() if any(r.succeeded for r in rs)]
    stale_before = now - SUCCESS_PRECISION
    # Rewrite last_success_at at most once a second per endpoint: every batch rewrote every
    # row, and on SQLite those writes lengthen the lock that publishers wait for.
    stale = [
        sid
        for sid in succeeded
        if sid in current
        and (
            current[sid].failing_since is not None
            or current[sid].last_success_at is None
            or current[sid].last_success_at < stale_before
        )
    ]
    if stale:
        db.session.execute(_SUCCEEDED, {"ids": stale, "now": now, "stale_before": stale_before})
    started = [
        sid
        for sid in by_endpoint
        if sid not in set(succeeded) and sid in current and current[sid].failing_since is None
    ]
    if started:
        db.session.execute(_STARTED_FAILING, {"ids": started, "now": now})


def _apply_failures(
    subscription: Subscription,
    results: list[Result],
    now: datetime,
    threshold: int,
    max_pause: int,
    pause_limit: float,
) -> tuple[str, str] | None:
    """Count the failures after the batch's last success; open or re-open the breaker."""
    before = describe(subscription, now).state
    trailing: list[Result] = []
    for result in results:
        trailing = [] if result.succeeded else [*trailing, result]
    subscription.consecutive_failures = (subscription.consecutive_failures or 0) + len(trailing)
    subscription.last_error = (trailing[-1].error or "failed")[:MAX_ERROR_LENGTH]
    retry_after = max((r.retry_after or 0.0) for r in trailing)
    if retry_after:
        until = now + timedelta(seconds=min(retry_after, pause_limit))
        if subscription.paused_until is None or subscription.paused_until < until:
            subscription.paused_until = until
    probed = any(r.probe for r in trailing)
    if subscription.circuit_opened_at is None:
        if subscription.consecutive_failures >= threshold:
            subscription.circuit_opened_at = now
            _pause(subscription, now, FIRST_PAUSE_SECONDS)
    elif probed:
        _pause(
            subscription,
            now,
            min(max_pause, max(FIRST_PAUSE_SECONDS, 2 * subscription.pause_seconds)),
        )
    if probed:
        subscription.probe_until = None
    after = describe(subscription, now).state
    return (before, after) if before != after else None


def _pause(subscription: Subscription, now: datetime, seconds: int) -> None:
    subscription.pause_seconds = seconds
    until = now + timedelta(seconds=seconds)
    if subscription.paused_until is None or subscription.paused_until < until:
        subscription.paused_until = until


def claim_probe(subscription_id: str, lease: timedelta) -> bool:
    """Take the right to send the one probe of an open breaker whose pause is over (commits
    with the caller's claim). False if another worker holds it, or the pause is not over (a
    probe that just failed may have paused it again since the caller looked)."""
    now = clock.now()
    taken = db.session.execute(
        update(Subscription)
        .where(
            Subscription.id == subscription_id,
            Subscription.circuit_opened_at.is_not(None),
            (Subscription.paused_until.is_(None)) | (Subscription.paused_until <= now),
            (Subscription.probe_until.is_(None)) | (Subscription.probe_until < now),
        )
        .values(probe_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


def release_probe(subscription_id: str) -> None:
    """Give the probe right back when no delivery was there to probe with."""
    db.session.execute(
        update(Subscription)
        .where(Subscription.id == subscription_id)
        .values(probe_until=None)
        .execution_options(synchronize_session=False)
    )
