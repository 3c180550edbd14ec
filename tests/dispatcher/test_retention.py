"""Retention: `maintenance.prune()` removes exactly the expired history, in keyset batches,
for as long as batches come back full and its time budget lasts (issue 15, item 6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatcher import maintenance
from portal.extensions import db
from portal.models import Attempt, Delivery, Event
from tests.factories import make_subscription, make_tenant
from tests.support import configure

RETENTION_DAYS = 30


@pytest.fixture
def history(app, clock):
    """Makes an event with one delivery and its attempts, `age` days old by the fake clock
    (the last attempt `last_attempt_age` days old when given), straight into the tables."""
    configure(app, HOOKLINE_RETENTION_DAYS=RETENTION_DAYS)
    tenant = make_tenant()
    subscription, _ = make_subscription(tenant.id, "http://127.0.0.1:9/hook")

    def make(
        age: float,
        status: str = "succeeded",
        attempts: int = 1,
        last_attempt_age: float | None = None,
        event: Event | None = None,
    ) -> Delivery:
        at = clock.now() - timedelta(days=age)
        if event is None:
            event = Event(
                tenant_id=tenant.id, type="invoice.created", data={}, fingerprint="0" * 64,
                created_at=at,
            )  # fmt: skip
            db.session.add(event)
            db.session.flush()
        last = at if last_attempt_age is None else clock.now() - timedelta(days=last_attempt_age)
        delivery = Delivery(
            tenant_id=tenant.id, event_id=event.id, subscription_id=subscription.id,
            event_type=event.type, status=status, attempt_count=attempts,
            last_attempt_at=last if attempts else None, created_at=at, updated_at=at,
        )  # fmt: skip
        db.session.add(delivery)
        db.session.flush()
        for number in range(1, attempts + 1):
            started = at if number < attempts else last
            attempt = Attempt(
                tenant_id=tenant.id, delivery_id=delivery.id, number=number, started_at=started,
                response_status=200,
            )  # fmt: skip
            db.session.add(attempt)
        db.session.commit()
        return delivery

    return make


def _ids(model) -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(model.id)))


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("batch", [1, 2, 5000])
def test_prune_removes_exactly_the_expired_history(history, monkeypatch, batch) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", batch)
    gone = [history(31, attempts=2), history(40, "failed", attempts=4), history(35, "cancelled", 0)]
    pending = history(45, "pending", attempts=1)  # an old retry still to come
    retried = history(33, "failed", attempts=2, last_attempt_age=1)  # manual retry yesterday
    recent = history(29, attempts=3)
    shared = history(50)  # an event whose other delivery is still pending
    shared_event = db.session.get(Event, shared.event_id)
    shared_pending = history(50, "pending", attempts=0, event=shared_event)
    kept = {pending.id, retried.id, recent.id, shared_pending.id}
    kept_events = {db.session.get(Delivery, d).event_id for d in kept}
    assert _count(Attempt) == 2 + 4 + 1 + 2 + 3 + 1

    pruned = maintenance.prune(budget=60)

    # attempts: gone's 2 + 4, pending's old one, retried's first, shared's
    assert pruned == (2 + 4 + 1 + 1 + 1, len(gone) + 1, len(gone))
    assert _ids(Delivery) == kept
    assert _ids(Event) == kept_events
    assert _count(Attempt) == 1 + 3  # retried's from yesterday, recent's


def test_prune_keeps_going_past_the_old_bound_of_fifty_batches(history, monkeypatch) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 2)
    batches = []
    real_batch = maintenance._prune_batch
    monkeypatch.setattr(
        maintenance, "_prune_batch", lambda *args: batches.append(args) or real_batch(*args)
    )
    for i in range(60):
        history(31 + i / 100, attempts=2)  # 120 attempts: 60 batches of 2, past the old 50

    assert maintenance.prune(budget=60) == (120, 60, 60)

    assert _count(Attempt) == _count(Delivery) == _count(Event) == 0
    # each table: its full batches, then one that comes back short
    assert len(batches) == (60 + 1) + (30 + 1) + (30 + 1)


def test_rows_sharing_one_timestamp_go_in_one_batch_past_its_size(history, monkeypatch) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 3)
    history(31, attempts=7)  # seven attempts at the same instant, batches of three

    assert maintenance.prune(budget=60) == (7, 1, 1)


def test_prune_stops_at_its_time_budget_and_the_next_sweep_goes_on(history, monkeypatch) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 2)
    for i in range(10):
        history(31 + i / 100, attempts=2)
    now = [0.0]
    real_batch = maintenance._prune_batch

    def one_second_each(*args):
        now[0] += 1.0
        return real_batch(*args)

    monkeypatch.setattr(maintenance, "_prune_batch", one_second_each)
    monkeypatch.setattr(maintenance, "monotonic", lambda: now[0])
    monkeypatch.setattr(maintenance, "sleep", lambda seconds: None)

    # 4 s of attempts (batches end at 1, 2, 3, 4 s; the fourth passes 3.5), then each of the
    # other tables still gets its one batch
    assert maintenance.prune(budget=3.5) == (8, 2, 2)
    assert _count(Attempt) == 12

    assert maintenance.prune(budget=3.5) == (8, 2, 2)
    assert maintenance.prune(budget=60) == (4, 6, 6)
    assert _count(Attempt) == _count(Delivery) == _count(Event) == 0


def test_prune_pauses_after_each_full_batch_as_long_as_it_took(history, monkeypatch) -> None:
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 2)
    for i in range(3):
        history(31 + i / 100, attempts=2)
    pauses: list[float] = []
    monkeypatch.setattr(maintenance, "sleep", pauses.append)

    maintenance.prune(budget=60)

    # attempts: 3 full batches then a short one; deliveries and events: 1 full, 1 short each
    assert len(pauses) == 3 + 1 + 1
    assert all(pause >= 0 for pause in pauses)


def test_the_budget_is_at_most_half_the_sweep_interval(app) -> None:
    configure(app, HOOKLINE_SWEEP_INTERVAL=15)
    assert maintenance.prune_budget() == maintenance.PRUNE_SECONDS == 5.0
    configure(app, HOOKLINE_SWEEP_INTERVAL=4)
    assert maintenance.prune_budget() == 2.0


def test_nothing_expired_prunes_nothing(history) -> None:
    history(29, attempts=2)
    history(1, "pending")

    assert maintenance.prune() == (0, 0, 0)
    assert _count(Attempt) == 3
