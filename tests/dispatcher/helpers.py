"""Small helpers for dispatcher tests."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from dispatcher import maintenance
from portal.extensions import db
from portal.models import Attempt, Delivery
from tests.support import wait_until


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


def work_until(
    run_worker: Callable[[], None],
    done: Callable[[], bool],
    timeout: float,
    what: str | Callable[[], str] = "the dispatcher",
) -> None:
    """Run burst workers (which pick up RQ's scheduled jobs as they fall due) until `done`;
    `what` is as for `wait_until`."""

    def worked_until_done() -> bool:
        if done():
            return True
        run_worker()
        return False

    wait_until(worked_until_done, timeout, interval=0.1, what=what)
