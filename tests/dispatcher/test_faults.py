"""At-least-once under faults, with real worker processes: SIGKILL, Redis flush, Redis restart.

Each test runs its own Redis server on a free port (never the shared one) and `flask worker`
processes that inherit the test environment.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from dispatcher import publish
from portal.extensions import db
from portal.models import Delivery
from tests.factories import make_subscription, make_tenant
from tests.receiver import Reply
from tests.support import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTIONS = 5
EVENTS = 100  # 5 x 100 = 500 deliveries


def _publish_many(receiver, events: int = EVENTS) -> str:
    tenant = make_tenant()
    for n in range(SUBSCRIPTIONS):
        receiver.script(f"/s{n}", default=Reply(delay=0.1))
        make_subscription(tenant.id, receiver.url(f"/s{n}"))
    return _publish_more(tenant.id, events)


def _publish_more(tenant_id: str, events: int) -> str:
    for i in range(events):
        publish("invoice.paid", {"invoice_id": f"inv_{i}"}, tenant_id=tenant_id)
    db.session.commit()
    return tenant_id


def _unique_arrivals(receiver) -> int:
    return len({(r.path, r.headers["webhook-id"]) for r in receiver.received()})


def _wait_for_every_delivery(receiver, total: int = SUBSCRIPTIONS * EVENTS) -> None:
    wait_until(
        lambda: _unique_arrivals(receiver) >= total,
        180,
        what=lambda: f"every delivery to arrive ({_report(receiver)})",
    )


def _all_succeeded(total: int = SUBSCRIPTIONS * EVENTS) -> bool:
    statuses = db.session.execute(
        select(Delivery.status, func.count()).group_by(Delivery.status)
    ).all()
    return dict(statuses) == {"succeeded": total}


def _report(receiver) -> str:
    total = len(receiver.received())
    return f"{total} requests for {_unique_arrivals(receiver)} deliveries"


def test_sigkill_of_a_worker_mid_run_loses_nothing(fault_app, receiver, workers):
    victim = workers.start()
    workers.start()
    _publish_many(receiver)
    wait_until(lambda: _unique_arrivals(receiver) >= 100, 60, what="the first 100 deliveries")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert _unique_arrivals(receiver) < SUBSCRIPTIONS * EVENTS, "killed too late to prove anything"
    workers.start()

    _wait_for_every_delivery(receiver)
    wait_until(_all_succeeded, 30, what="every delivery to be recorded as succeeded")


def test_redis_flushed_mid_run_loses_nothing(fault_app, receiver, workers, own_redis):
    workers.start()
    _publish_many(receiver)
    wait_until(lambda: _unique_arrivals(receiver) >= 50, 60, what="the first 50 deliveries")
    redis.Redis(port=own_redis.port).flushall()
    assert _unique_arrivals(receiver) < SUBSCRIPTIONS * EVENTS, "flushed too late to prove anything"

    _wait_for_every_delivery(receiver)
    wait_until(_all_succeeded, 30, what="every delivery to be recorded as succeeded")


def test_redis_restarted_mid_run_the_same_workers_carry_on(fault_app, receiver, workers, own_redis):
    """Work claimed before the restart finishes, and work published after it flows through the
    new Redis to the very same worker processes."""
    running = [workers.start(), workers.start()]
    tenant_id = _publish_many(receiver)
    wait_until(lambda: _unique_arrivals(receiver) >= 50, 60, what="the first 50 deliveries")
    own_redis.kill()
    assert _unique_arrivals(receiver) < SUBSCRIPTIONS * EVENTS, "stopped too late to prove anything"
    time.sleep(1.5)
    own_redis.start()
    _publish_more(tenant_id, 20)  # these can only be kicked through the restarted Redis

    total = SUBSCRIPTIONS * (EVENTS + 20)
    _wait_for_every_delivery(receiver, total)
    wait_until(lambda: _all_succeeded(total), 30, what="every delivery to be recorded as succeeded")
    assert all(process.poll() is None for process in running), "a worker process died"
