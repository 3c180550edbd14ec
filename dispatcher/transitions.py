"""The delivery state machine: every change of a delivery's status is written here, and only here.

    pending ──a 2xx──────────────────────────────────────────────→ succeeded
    pending ──an automatic attempt failed, a retry is left──────→ pending (at the next retry)
    pending ──out of retries, a 410, or a manual/test attempt failed──→ failed
    pending ──its endpoint was disabled, or it or its event is gone──→ cancelled
    failed, cancelled ──recover──────────────────────────────────→ pending (one manual attempt)
    any ──retry─────────────────────────────────────────────────→ pending now (priority)

A delivery is born `pending`, due at once (dispatcher/publishing.py and `actions.send_test`
insert it so); from then on its `status`, `next_attempt_at` and `next_trigger` change only
through the functions below. They run in the caller's transaction and never commit.

What is deliberately not here:
- Leasing (dispatcher/claims.py). A claim sets `lease_expires_at` and a release clears it: they
  change who holds a pending delivery, never its state, and the claim statements are tuned to
  the partial index of pending rows. They read the status; they do not write it.
- Deferrals. A circuit breaker's pause and a receiver's Retry-After hold an endpoint back by the
  subscription's `paused_until` (dispatcher/health.py); the claims skip that endpoint, and its
  deliveries stay as they are, due and pending, so a deferral never uses up a retry. The one
  place a Retry-After touches a delivery is the retry after a failed attempt, which it may push
  later: `retry_delay`.

The attempt results of a whole batch are written by one UPDATE from a VALUES list, or from
arrays on PostgreSQL (`record_attempts`): it is the hot path, and one statement per batch is
what keeps it cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Integer, String, bindparam, select, text, update

from dispatcher.models import Delivery
from dispatcher.models.types import UTCDateTime
from dispatcher.states import DeliveryStatus, Trigger
from dispatcher.store import db

if TYPE_CHECKING:
    from dispatcher.claims import Claim
    from dispatcher.http import Response

GONE = 410  # the endpoint is gone: no retry (and outcomes.py disables the subscription)


class AttemptedState(NamedTuple):
    """A delivery's row after an attempt: the columns `record_attempts` writes, in its order."""

    id: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_response_status: int | None
    last_attempt_at: datetime | None


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


def after_attempt(
    claim: Claim, response: Response, schedule: list[int], now: datetime
) -> AttemptedState:
    """Where an attempt leaves its delivery: succeeded, pending until its next retry, or failed.

    Only automatic attempts are retried: a manual retry or a test is one attempt."""
    status, next_attempt_at = DeliveryStatus.FAILED, None
    if response.succeeded:
        status = DeliveryStatus.SUCCEEDED
    elif claim.trigger == Trigger.AUTO and response.status != GONE:
        delay = retry_delay(schedule, claim.attempt_number, response.retry_after)
        if delay is not None:
            status, next_attempt_at = DeliveryStatus.PENDING, now + timedelta(seconds=delay)
    return AttemptedState(
        id=claim.id,
        status=status,
        attempt_count=claim.attempt_number,
        next_attempt_at=next_attempt_at,
        last_response_status=response.status,
        last_attempt_at=response.started_at,
    )


# Per column of AttemptedState: its SQL type on PostgreSQL, its SQLAlchemy type for binding.
_STATE_TYPES = {
    "id": ("varchar", String()),
    "status": ("varchar", String()),
    "attempt_count": ("integer", Integer()),
    "next_attempt_at": ("timestamptz", UTCDateTime()),
    "last_response_status": ("integer", Integer()),
    "last_attempt_at": ("timestamptz", UTCDateTime()),
}
_STATE_COLUMNS = AttemptedState._fields  # the order of the VALUES rows and of their parameters


@functools.lru_cache(maxsize=32)
def _attempts_statement(dialect: str, rows: int):
    """One UPDATE for a whole batch, from a VALUES list (one text per dialect and row count).

    executemany ran one statement per row: on PostgreSQL that was most of a batch's time, and
    on SQLite each row gave up the GIL and waited to get it back behind the other threads.
    Every attempt makes the next one automatic again (`next_trigger`) and ends the lease."""
    typed = dialect == "postgresql"  # its VALUES columns take no type from the table

    def placeholder(name: str, row: int) -> str:
        return f"CAST(:{name}_{row} AS {_STATE_TYPES[name][0]})" if typed else f":{name}_{row}"

    values = ", ".join(
        "(" + ", ".join(placeholder(name, row) for name in _STATE_COLUMNS) + ")"
        for row in range(rows)
    )
    assigned = ", ".join(f"{name} = v.{name}" for name in _STATE_COLUMNS[1:])
    return text(
        f"WITH v({', '.join(_STATE_COLUMNS)}) AS (VALUES {values}) "
        f"UPDATE hookline_deliveries SET {assigned}, next_trigger = '{Trigger.AUTO}', "
        f"lease_expires_at = NULL, updated_at = :now FROM v WHERE hookline_deliveries.id = v.id"
    ).bindparams(
        bindparam("now", type_=UTCDateTime()),
        *(
            bindparam(f"{name}_{row}", type_=_STATE_TYPES[name][1])
            for row in range(rows)
            for name in _STATE_COLUMNS
        ),
    )


@functools.cache
def _attempts_statement_postgresql():
    """PostgreSQL's form: one short text whatever the batch size, a column per array parameter
    (unnest). The VALUES form's text grows with the batch, and psycopg parsed its thousands of
    placeholders again on every execute: a sixth of a busy worker's time."""
    arrays = ", ".join(f"CAST(:{name} AS {_STATE_TYPES[name][0]}[])" for name in _STATE_COLUMNS)
    assigned = ", ".join(f"{name} = v.{name}" for name in _STATE_COLUMNS[1:])
    return text(
        f"UPDATE hookline_deliveries SET {assigned}, next_trigger = '{Trigger.AUTO}', "
        f"lease_expires_at = NULL, updated_at = :now "
        f"FROM unnest({arrays}) AS v({', '.join(_STATE_COLUMNS)}) "
        f"WHERE hookline_deliveries.id = v.id"
    ).bindparams(bindparam("now", type_=UTCDateTime()))


def record_attempts(states: Sequence[AttemptedState], now: datetime, chunk: int = 512) -> None:
    """Write the deliveries' states after their attempts, in one statement per `chunk` rows.

    On PostgreSQL the columns go as arrays. Elsewhere a batch is padded to the next power of two
    by repeating its last row (an UPDATE from a list with a repeated row writes that row once),
    so at most ten statement texts exist instead of one per batch size: each text is large and
    stays cached."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        for start in range(0, len(states), chunk):
            part = states[start : start + chunk]
            params: dict = {name: [getattr(s, name) for s in part] for name in _STATE_COLUMNS}
            params["status"] = [str(status) for status in params["status"]]  # values, not names
            params["now"] = now
            db.session.execute(_attempts_statement_postgresql(), params)
        return
    for start in range(0, len(states), chunk):
        part = list(states[start : start + chunk])
        size = 1 << (len(part) - 1).bit_length()
        part += [part[-1]] * (size - len(part))
        params: dict = {"now": now}
        for names, state in zip(_parameter_names(size), part, strict=True):
            params.update(zip(names, state, strict=True))
        db.session.execute(_attempts_statement(dialect, size), params)


@functools.lru_cache(maxsize=16)
def _parameter_names(rows: int) -> tuple[tuple[str, ...], ...]:
    """Per row of `_attempts_statement(…, rows)`, the names of its parameters."""
    return tuple(tuple(f"{name}_{row}" for name in _STATE_COLUMNS) for row in range(rows))


_CANCELLED = {
    "status": DeliveryStatus.CANCELLED,
    "next_attempt_at": None,
    "lease_expires_at": None,
}


def cancel(delivery_ids: Sequence[str], *, now: datetime) -> None:
    """Cancel claimed deliveries that cannot be sent: their endpoint was disabled or deleted,
    or their event is gone."""
    if not delivery_ids:
        return
    db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids))
        .values(**_CANCELLED, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def cancel_waiting(subscription_id: str, *, now: datetime) -> None:
    """Cancel every pending delivery of an endpoint that is being disabled (`recover` brings
    them back), so none stays stuck in `pending`."""
    db.session.execute(
        update(Delivery)
        .where(
            Delivery.subscription_id == subscription_id,
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(**_CANCELLED, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def retry_now(delivery: Delivery, *, now: datetime) -> None:
    """Make a delivery due now on the priority lane. A finished one gets one manual attempt; a
    pending one keeps its trigger and simply stops waiting for its scheduled retry."""
    if delivery.status != DeliveryStatus.PENDING:
        delivery.next_trigger = Trigger.MANUAL
        delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.priority = True
    delivery.updated_at = now


RECOVERABLE = (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


def recover(subscription_id: str, since: datetime, until: datetime | None, *, now: datetime) -> int:
    """Give every failed or cancelled delivery (tests aside) of an endpoint created in
    [`since`, `until`] one manual attempt, due now. Returns how many."""
    conditions = [
        Delivery.subscription_id == subscription_id,
        Delivery.status.in_(RECOVERABLE),
        Delivery.is_test.is_(False),
        Delivery.created_at >= since,
    ]
    if until is not None:
        conditions.append(Delivery.created_at <= until)
    ids = db.session.scalars(select(Delivery.id).where(*conditions)).all()
    if ids:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(
                status=DeliveryStatus.PENDING,
                next_trigger=Trigger.MANUAL,
                next_attempt_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return len(ids)
