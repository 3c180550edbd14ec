"""What happens after an attempt: the Attempt row, the delivery's next state, retries.

Results are written in batches (one transaction for many attempts) because a row-at-a-time
commit would cost more than the HTTP request itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Integer, String, bindparam, insert, text, update

from dispatcher import clock, health, lifecycle, metrics, notices, queues
from dispatcher.claims import Claim
from dispatcher.filters import is_operational
from dispatcher.http import Response
from dispatcher.ids import new_id
from dispatcher.message import format_timestamp
from dispatcher.models import Attempt, Delivery, Subscription
from dispatcher.models.types import UTCDateTime
from dispatcher.store import db


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
    """The delivery's row after this attempt (the columns `_write_states` sets per row)."""
    claim, response = outcome.claim, outcome.response
    state = {
        "id": claim.id,
        "status": "failed",
        "attempt_count": claim.attempt_number,
        "next_attempt_at": None,
        "last_response_status": response.status,
        "last_attempt_at": response.started_at,
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


# Per row: (column, its SQL type on PostgreSQL, its SQLAlchemy type for binding).
_STATE_COLUMNS = (
    ("id", "varchar", String()),
    ("status", "varchar", String()),
    ("attempt_count", "integer", Integer()),
    ("next_attempt_at", "timestamptz", UTCDateTime()),
    ("last_response_status", "integer", Integer()),
    ("last_attempt_at", "timestamptz", UTCDateTime()),
)


@functools.lru_cache(maxsize=32)
def _states_statement(dialect: str, rows: int):
    """One UPDATE for a whole batch, from a VALUES list (one text per dialect and row count).

    executemany ran one statement per row: on PostgreSQL that was most of a batch's time, and
    on SQLite each row gave up the GIL and waited to get it back behind the sending threads."""
    cast = (
        (lambda p, t: f"CAST(:{p} AS {t})") if dialect == "postgresql" else (lambda p, t: f":{p}")
    )
    values = ", ".join(
        "(" + ", ".join(cast(f"{name}_{i}", sql) for name, sql, _ in _STATE_COLUMNS) + ")"
        for i in range(rows)
    )
    names = ", ".join(name for name, _, _ in _STATE_COLUMNS)
    assigned = ", ".join(f"{name} = v.{name}" for name, _, _ in _STATE_COLUMNS[1:])
    return text(
        f"WITH v({names}) AS (VALUES {values}) "
        f"UPDATE hookline_deliveries SET {assigned}, next_trigger = 'auto', "
        f"lease_expires_at = NULL, updated_at = :now FROM v WHERE hookline_deliveries.id = v.id"
    ).bindparams(
        bindparam("now", type_=UTCDateTime()),
        *(
            bindparam(f"{name}_{i}", type_=type_)
            for i in range(rows)
            for name, _, type_ in _STATE_COLUMNS
        ),
    )


def _write_states(states: list[dict], now: datetime, chunk: int = 512) -> None:
    """Write the deliveries' new states, in one statement per `chunk` rows.

    A batch is padded to the next power of two by repeating its last row (an UPDATE from a
    list with a repeated row writes that row once), so at most ten statement texts exist per
    dialect instead of one per batch size: each text is large and stays cached."""
    dialect = db.engine.dialect.name
    for start in range(0, len(states), chunk):
        part = states[start : start + chunk]
        size = 1 << (len(part) - 1).bit_length()
        part = part + [part[-1]] * (size - len(part))
        params: dict = {"now": now}
        for i, state in enumerate(part):
            for name, _, _ in _STATE_COLUMNS:
                params[f"{name}_{i}"] = state[name]
        db.session.execute(_states_statement(dialect, size), params)


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
        _write_states(states, now)
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
