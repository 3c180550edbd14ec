"""Small helpers for dispatcher tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from dispatcher import maintenance
from portal.extensions import db
from portal.models import Attempt, Delivery


def only_delivery() -> Delivery:
    db.session.expire_all()
    (delivery,) = db.session.scalars(select(Delivery)).all()
    return delivery


def attempts_of(delivery_id: str) -> list[Attempt]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.number)
        )
    )


def sweep_and_work(run_worker: Callable[[], None]) -> None:
    """What a worker's periodic sweep does, then work the queue (for tests on a fake clock)."""
    maintenance.sweep()
    run_worker()


def work_until(run_worker: Callable[[], None], done: Callable[[], bool], timeout: float) -> None:
    """Run burst workers (which pick up RQ's scheduled jobs as they fall due) until `done`."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the dispatcher")
        run_worker()
        time.sleep(0.1)
