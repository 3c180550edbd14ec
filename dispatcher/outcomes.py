"""What happens after an attempt: the Attempt row, the delivery's next state, retries.

Results are written in batches (one transaction for many attempts) because a row-at-a-time
commit would cost more than the HTTP request itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, insert, update

from dispatcher import clock, health, lifecycle, metrics, notices, queues
from dispatcher.claims import Claim
from dispatcher.filters import is_operational
from dispatcher.http import Response
from dispatcher.message import format_timestamp
from portal.extensions import db
from portal.ids import new_id
from portal.models import Attempt, Delivery, Subscription


@dataclass
class Outcome:
    """One finished attempt (`response`) or a delivery that could not be attempted."""

    claim: Claim
    request_headers: dict[str, str]
    response: Response | None = None
    cancel_reason: str | None = None


def retry_delay(
    schedule: list[int], attempt_number: int, retry_after: float | None
) -> float | None:
    """Seconds until the next automatic attempt, or None when the schedule is used up.

    `attempt_number` is the attempt that just failed (1-based). A Retry-After from the
    receiver can only push the retry later, and never past the schedule's longest delay.
    """
    if attempt_number > len(schedule):
        return None
    delay = float(schedule[attempt_number - 1])
    if retry_after is not None:
        delay = min(max(delay, retry_after), float(max(schedule)))
    return delay


def _next_state(outcome: Outcome, schedule: list[int], now: datetime) -> dict:
    claim, response = outcome.claim, outcome.response
    state = {
        "id": claim.id,
        "status": "failed",
        "attempt_count": claim.attempt_number,
        "next_attempt_at": None,
        "next_trigger": "auto",
        "lease_expires_at": None,
        "last_response_status": response.status,
        "last_attempt_at": response.started_at,
        "updated_at": now,
    }
    if response.succeeded:
        state["status"] = "succeeded"
    elif claim.trigger == "auto" and response.status != 410:
        delay = retry_delay(schedule, claim.attempt_number, response.retry_after)
        if delay is not None:
            state["status"] = "pending"
            state["next_attempt_at"] = now + timedelta(seconds=delay)
    return state


# RETURNING makes SQLAlchemy send the batch as one multi-row INSERT ("insertmanyvalues"):
# with executemany, SQLite gave up the GIL and waited to get it back for every row.
_INSERT_ATTEMPTS = insert(Attempt.__table__).returning(Attempt.__table__.c.id)


def record(outcomes: list[Outcome]) -> None:
    """Write attempts and new delivery states in one transaction, then schedule retries."""
    if not outcomes:
        return
    now = clock.now()
    schedule = current_app.config["HOOKLINE_RETRY_SCHEDULE"]
    attempted = [o for o in outcomes if o.response is not None]
    cancelled = [o for o in outcomes if o.response is None]
    states: list[dict] = []
    transitions: list[tuple[str, str, str]] = []

    if attempted:
        # Core executemany: the ORM's bulk paths cost more than the SQL itself at this rate.
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
        states = [_next_state(o, schedule, now) for o in attempted]
        deliveries = Delivery.__table__
        db.session.execute(
            update(deliveries).where(deliveries.c.id == bindparam("b_id")),
            [{("b_id" if key == "id" else key): value for key, value in s.items()} for s in states],
        )
        transitions = _record_health(attempted, schedule)
        _notify(attempted, states, transitions)
    for o in cancelled:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id == o.claim.id)
            .values(status="cancelled", lease_expires_at=None, next_attempt_at=None, updated_at=now)
        )
    for o in attempted:
        if o.response.status == 410 and not o.claim.is_test:
            subscription = db.session.get(Subscription, o.claim.subscription_id)
            if subscription is not None and subscription.is_active:
                lifecycle.disable(subscription, "The endpoint answered 410 Gone.")
    db.session.commit()
    metrics.observe(outcomes, states)

    for when in sorted({s["next_attempt_at"] for s in states if s["next_attempt_at"]}):
        queues.schedule_drain(when)
    if any(new == health.HEALTHY for _, _, new in transitions):
        queues.kick()  # a breaker closed: its backlog may go now


def _notify(
    attempted: list[Outcome], states: list[dict], transitions: list[tuple[str, str, str]]
) -> None:
    """Publish, in this transaction, the operational events these attempts call for: deliveries
    that failed for good, endpoints whose breaker opened or closed. Attempts that carried an
    operational event (or a test) cause none, so a failing receiver of `endpoint.*` events
    cannot feed a loop of events about itself and its peers."""
    counted = [o for o in attempted if not o.claim.is_test]
    real = [o for o in counted if not is_operational(o.claim.event_type)]
    by_id = {s["id"]: s for s in states}
    for o in real:
        if o.claim.trigger == "auto" and by_id[o.claim.id]["status"] == "failed":
            subscription = db.session.get(Subscription, o.claim.subscription_id)
            if subscription is not None:
                notices.delivery_failed(subscription, _failure(o))
    caused_by_real = {o.claim.subscription_id for o in real}
    for subscription_id, old, new in transitions:
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


def _record_health(attempted: list[Outcome], schedule: list[int]) -> list[tuple[str, str, str]]:
    """Hand the attempts to the endpoint-health rules (test events do not count)."""
    config = current_app.config
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
        threshold=config["HOOKLINE_BREAKER_FAILURES"],
        max_pause=config["HOOKLINE_BREAKER_MAX_PAUSE"],
        pause_limit=health.pause_cap(schedule),
    )
