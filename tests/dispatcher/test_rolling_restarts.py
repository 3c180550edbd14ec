"""Deploys: SIGTERM to a worker gives its in-flight deliveries back at once and it exits; a
rolling restart of every worker under load delays deliveries by seconds and loses none.

Real `flask worker` processes on a Redis of their own, a real loopback receiver.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from redis import Redis
from rq import Worker
from sqlalchemy import func, select

from dispatcher import publish
from dispatcher.models import Attempt, Delivery
from dispatcher.store import db
from tests.factories import make_subscription, make_tenant
from tests.receiver import Reply
from tests.support import wait_until

pytestmark = pytest.mark.slow


def _statuses() -> dict[str, int]:
    db.session.commit()  # a fresh snapshot: the workers write from other processes
    rows = db.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return dict(rows.all())


def _leased() -> int:
    db.session.commit()
    return db.session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.lease_expires_at.is_not(None))
    )


def test_sigterm_hands_slow_in_flight_deliveries_back_and_exits_promptly(
    fault_app, receiver, workers
):
    # Four requests that take 8 s, well past the hand-back grace; then the receiver is fast.
    receiver.script("/slow", *[Reply(delay=8)] * 4, default=Reply())
    workers.env["HOOKLINE_DELIVERY_TIMEOUT"] = "15"  # the lease would last 40 s
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/slow"))
    for i in range(4):
        publish("invoice.paid", {"invoice_id": f"inv_{i}"}, tenant_id=tenant.id)
    db.session.commit()
    first = workers.start()
    wait_until(lambda: len(receiver.received("/slow")) == 4, 30, what="four requests in flight")

    stopped_at = time.monotonic()
    os.killpg(first.pid, signal.SIGTERM)
    first.wait(timeout=15)
    took = time.monotonic() - stopped_at
    assert took < 6, f"the worker took {took:.1f} s to exit"
    assert _leased() == 0  # handed back: nothing waits for a lease to run out
    assert _statuses() == {"pending": 4}
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Attempt)) == 0  # not attempts

    workers.start()
    wait_until(lambda: _statuses() == {"succeeded": 4}, 30, what="the next worker to deliver them")
    assert time.monotonic() - stopped_at < 20  # not after the 40 s lease


def test_a_rolling_restart_under_load_delays_little_and_loses_nothing(fault_app, receiver, workers):
    receiver.script("/fast", default=Reply(delay=0.02))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/fast"))
    fleet = [workers.start() for _ in range(3)]
    redis = Redis.from_url(workers.env["REDIS_URL"])

    def ready(count: int) -> bool:
        return Worker.count(connection=redis) == count

    # A deploy replaces an instance once the new one is up: what is measured is the restart,
    # not how long a loaded machine takes to import the app.
    wait_until(lambda: ready(3), 60, what="three workers to start")
    published: dict[str, float] = {}
    done = threading.Event()

    def publisher() -> None:
        with fault_app.app_context():
            i = 0
            while not done.is_set():
                event = publish("invoice.paid", {"invoice_id": f"inv_{i}"}, tenant_id=tenant.id)
                db.session.commit()
                published[event.id] = time.monotonic()
                i += 1
                time.sleep(0.02)
            db.session.remove()

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        time.sleep(2)
        for old in fleet:  # one at a time, as a deploy replaces them
            os.killpg(old.pid, signal.SIGTERM)
            old.wait(timeout=15)
            workers.start()
            wait_until(lambda: ready(3), 60, what="the new worker to start")
            time.sleep(1)
    finally:
        done.set()
        thread.join()

    total = len(published)
    wait_until(lambda: _statuses() == {"succeeded": total}, 60, what="every delivery")
    arrivals: dict[str, float] = {}
    for request in receiver.received("/fast"):
        arrivals.setdefault(request.headers["webhook-id"], request.at)
    assert set(arrivals) == set(published)  # nothing lost
    delays = sorted(arrivals[e] - published[e] for e in published)
    assert delays[-1] < 5, f"the longest delay was {delays[-1]:.1f} s"
