"""What happens after an attempt: the Attempt row, the delivery's next state, what follows.

Results are written in batches (one transaction for many attempts) because a row-at-a-time
commit would cost more than the HTTP request itself: one INSERT of the batch's attempts here,
one UPDATE of their deliveries' states in dispatcher/transitions.py (which decides them), then
the endpoints' health, operational events, and the drains that carry out the retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert

from dispatcher import clock, health, lifecycle, metrics, notices, queues, transitions
from dispatcher.claims import Claim
from dispatcher.filters import is_operational
from dispatcher.http import Response
from dispatcher.ids import new_id
from dispatcher.message import format_timestamp
from dispatcher.models import Attempt, Subscription
from dispatcher.settings import get_settings
from dispatcher.states import DeliveryStatus, Trigger
from dispatcher.store import db


@dataclass
class Outcome:
    """One finished attempt (`response`) or a delivery that could not be attempted."""

    claim: Claim
    request_headers: dict[str, str]
    response: Response | None = None
    cancel_reason: str | None = None


# RETURNING makes SQLAlchemy send the batch as one multi-row INSERT ("insertmanyvalues"):
# with executemany, SQLite gave up the GIL and waited to get it back for every row.
_INSERT_ATTEMPTS = insert(Attempt.__table__).returning(Attempt.__table__.c.id)


def record(outcomes: list[Outcome]) -> None:
    """Write attempts and new delivery states in one transaction, then schedule retries."""
    if not outcomes:
        return
    now = clock.now()
    schedule = get_settings().retry_schedule
    attempted = [o for o in outcomes if o.response is not None]
    states: list[transitions.AttemptedState] = []
    health_changes: list[tuple[str, str, str]] = []
    if attempted:
        _insert_attempts(attempted)
        states = [transitions.after_attempt(o.claim, o.response, schedule, now) for o in attempted]
        transitions.record_attempts(states, now)
        health_changes = _record_health(attempted, schedule)
        _notify(attempted, states, health_changes)
    transitions.cancel([o.claim.id for o in outcomes if o.response is None], now=now)
    _disable_gone(attempted)
    db.session.commit()
    metrics.observe(outcomes, states)

    for when in sorted({s.next_attempt_at for s in states if s.next_attempt_at}):
        queues.schedule_drain(when)
    if any(new == health.HEALTHY for _, _, new in health_changes):
        queues.kick()  # a breaker closed: its backlog may go now


def _insert_attempts(attempted: list[Outcome]) -> None:
    """The Attempt rows of a batch, in one statement."""
    # Core, not the ORM: the ORM's bulk paths cost more than the SQL itself at this rate.
    db.session.execute(
        _INSERT_ATTEMPTS,
        [
            {
                "id": new_id("attempt"),
                "tenant_id": o.claim.tenant_id,
                "delivery_id": o.claim.id,
                "number": o.claim.attempt_number,
                "trigger": o.claim.trigger,
                "started_at": o.response.started_at,
                "duration_ms": o.response.duration_ms,
                "request_headers": o.request_headers,
                "response_status": o.response.status,
                "response_headers": o.response.headers,
                "response_body": o.response.body,
                "response_truncated": o.response.truncated,
                "error": o.response.error,
            }
            for o in attempted
        ],
    )


def _disable_gone(attempted: list[Outcome]) -> None:
    """410 Gone disables the endpoint at once (a test event's 410 does not)."""
    for o in attempted:
        if o.response.status == transitions.GONE and not o.claim.is_test:
            subscription = db.session.get(Subscription, o.claim.subscription_id)
            if subscription is not None and subscription.is_active:
                lifecycle.disable(subscription, "The endpoint answered 410 Gone.")


def _notify(
    attempted: list[Outcome],
    states: list[transitions.AttemptedState],
    health_changes: list[tuple[str, str, str]],
) -> None:
    """Publish, in this transaction, the operational events these attempts call for: deliveries
    that failed for good, endpoints whose breaker opened or closed. Attempts that carried an
    operational event (or a test) cause none, so a failing receiver of `endpoint.*` events
    cannot feed a loop of events about itself and its peers."""
    counted = [o for o in attempted if not o.claim.is_test]
    real = [o for o in counted if not is_operational(o.claim.event_type)]
    status_of = {s.id: s.status for s in states}
    for o in real:
        if o.claim.trigger == Trigger.AUTO and status_of[o.claim.id] == DeliveryStatus.FAILED:
            subscription = db.session.get(Subscription, o.claim.subscription_id)
            if subscription is not None:
                notices.delivery_failed(subscription, _failure(o))
    caused_by_real = {o.claim.subscription_id for o in real}
    for subscription_id, old, new in health_changes:
        if subscription_id not in caused_by_real:
            continue
        subscription = db.session.get(Subscription, subscription_id)
        if subscription is None:
            continue
        if new == health.FAILING and old != health.FAILING:
            notices.failing(subscription)
        elif old == health.FAILING and new != health.FAILING:
            notices.recovered(subscription)


def _failure(o: Outcome) -> dict:
    """The `endpoint.delivery_failed` details of one delivery's last attempt."""
    return {
        "delivery_id": o.claim.id,
        "event_id": o.claim.event_id,
        "event_type": o.claim.event_type,
        "attempts": o.claim.attempt_number,
        "last_response_status": o.response.status,
        "last_error": o.response.error,
        "failed_at": format_timestamp(o.response.started_at or clock.now()),
    }


def _record_health(
    attempted: list[Outcome], schedule: tuple[int, ...]
) -> list[tuple[str, str, str]]:
    """Hand the attempts to the endpoint-health rules (test events do not count)."""
    settings = get_settings()
    return health.record_results(
        [
            health.Result(
                subscription_id=o.claim.subscription_id,
                succeeded=o.response.succeeded,
                error=o.response.error or f"HTTP {o.response.status}",
                retry_after=o.response.retry_after,
                probe=o.claim.probe,
            )
            for o in attempted
            if not o.claim.is_test
        ],
        threshold=settings.breaker_failures,
        max_pause=settings.breaker_max_pause,
        pause_limit=health.pause_cap(schedule),
    )
