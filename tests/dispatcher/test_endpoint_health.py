"""How the engine treats endpoints that are fast, slow, hanging, failing or throttling.

Every receiver is a real HTTP server on loopback; the worker is RQ's, in this process (burst)
or as real `flask worker` processes where the rule is fleet-wide.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatcher import health, publish, throttle
from dispatcher.concurrency import INITIAL_LIMIT, EndpointLimits
from dispatcher.http import Response
from dispatcher.maintenance import disable_failing_endpoints
from portal.extensions import db
from portal.models import Attempt, Delivery, Subscription
from tests.dispatcher.helpers import sweep_and_work, work_until
from tests.factories import make_subscription, make_tenant
from tests.receiver import Reply
from tests.support import configure


def _publish(tenant_id: str, count: int, event_type: str = "invoice.paid") -> None:
    for n in range(count):
        publish(event_type, {"invoice_id": f"inv_{n}"}, tenant_id=tenant_id)
    db.session.commit()


def _subscription(subscription_id: str) -> Subscription:
    db.session.expire_all()
    return db.session.get(Subscription, subscription_id)


def _statuses() -> dict[str, int]:
    db.session.expire_all()
    return dict(
        db.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    )


def _attempts() -> int:
    return db.session.scalar(select(func.count()).select_from(Attempt))


# Adaptive concurrency


def test_a_fast_endpoint_grows_past_its_initial_limit(app, receiver, run_worker):
    receiver.script("/busy", default=Reply(delay=0.1))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/busy"))
    _publish(tenant.id, 120)
    run_worker()

    assert _statuses() == {"succeeded": 120}
    # Started at INITIAL_LIMIT (4): the receiver saw four times that many at once. (A bound on
    # the wall time, 120 × 100 ms at 4 in flight = 3 s, failed on a loaded CI machine while
    # the concurrency it stood for had grown; the receiver's count is the direct proof.)
    assert receiver.most_concurrent("/busy") >= 16


def test_limit_halves_on_strain_at_most_once_per_round_trip_and_never_below_one():
    limits = EndpointLimits()
    now = time.monotonic()
    ok = Response(started_at=None, duration_ms=10, status=200)
    for _ in range(12):
        limits.observe("sub", ok, now, ceiling=32)
    assert limits.limit("sub", 32) == 16  # slow start: +1 per quick success
    timeout = Response(started_at=None, duration_ms=5000, error="timed out")
    limits.observe("sub", timeout, now + 1, ceiling=32)
    assert limits.limit("sub", 32) == 8
    limits.observe("sub", timeout, now, ceiling=32)  # sent before the cut: no second cut
    assert limits.limit("sub", 32) == 8
    for _ in range(10):
        limits.observe("sub", timeout, time.monotonic() + 1, ceiling=32)
    assert limits.limit("sub", 32) == 1
    for expected in (2, 2, 2, 3):  # after a cut: about +1 per round trip (limit successes)
        limits.observe("sub", ok, now, ceiling=32)
        assert limits.limit("sub", 32) == expected
    not_found = Response(started_at=None, duration_ms=10, status=404)
    limits.observe("other", not_found, now, ceiling=32)  # refused, not strained: no cut
    assert limits.limit("other", 32) == INITIAL_LIMIT


def test_a_slow_success_does_not_grow_the_limit():
    limits = EndpointLimits()
    slow = Response(started_at=None, duration_ms=2500, status=200)
    for _ in range(20):
        limits.observe("sub", slow, time.monotonic(), ceiling=32)
    assert limits.limit("sub", 32) == INITIAL_LIMIT


# Hanging receivers


def test_a_hanging_endpoint_costs_only_its_own_deliveries(app, receiver, run_worker):
    """Four sending slots; the hanging endpoint's sends leave them after a second."""
    configure(app, HOOKLINE_WORKER_CONCURRENCY=4, HOOKLINE_DELIVERY_TIMEOUT=5)
    receiver.script("/hang", default=Reply(delay=6))
    receiver.script("/fast", default=Reply(delay=0.05))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/hang"), events=["invoice.paid"])
    make_subscription(tenant.id, receiver.url("/fast"), events=["invoice.created"])
    _publish(tenant.id, 8, "invoice.paid")
    _publish(tenant.id, 60, "invoice.created")
    started = time.monotonic()
    run_worker()

    fast = receiver.received("/fast")
    assert len(fast) == 60
    # 60 × 50 ms over the slots the hanging sends give back after 1 s: well before the
    # 5 s timeout would free them
    assert max(r.at for r in fast) - started < 4
    hung = db.session.scalars(select(Attempt).where(Attempt.error.is_not(None))).all()
    assert hung and all("timed out" in a.error for a in hung)


# The circuit breaker


def _failing_endpoint(app, receiver, run_worker, events: int = 12):
    configure(app, HOOKLINE_BREAKER_FAILURES=3)
    receiver.script("/down", default=Reply(status=503))
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url("/down"))
    _publish(tenant.id, events)
    run_worker()
    return sub


def test_consecutive_failures_open_the_breaker_and_defer_the_rest(app, receiver, run_worker, clock):
    sub = _failing_endpoint(app, receiver, run_worker)

    state = health.describe(_subscription(sub.id))
    assert state.state == health.FAILING
    assert state.since == clock.now()
    assert state.paused_until == clock.now() + timedelta(seconds=health.FIRST_PAUSE_SECONDS)
    assert state.last_error == "HTTP 503"
    tried = len(receiver.received("/down"))
    # the first claim sent INITIAL_LIMIT at once, and a few went out before the breaker's
    # row was written; nothing after it
    assert 3 <= tried <= 2 * INITIAL_LIMIT
    assert _attempts() == tried
    untried = db.session.scalars(select(Delivery).where(Delivery.attempt_count == 0)).all()
    assert len(untried) == 12 - tried
    assert all(d.status == "pending" for d in untried)  # deferred, not failed, no retry used

    sweep_and_work(run_worker)  # still paused: the sweeper's drain sends nothing
    assert len(receiver.received("/down")) == tried


def test_one_probe_after_the_pause_and_its_success_drains_the_backlog(
    app, receiver, run_worker, clock
):
    sub = _failing_endpoint(app, receiver, run_worker)
    tried = len(receiver.received("/down"))
    receiver.script("/down", default=Reply(status=200, delay=0.3))
    clock.advance(seconds=health.FIRST_PAUSE_SECONDS + 1)
    sweep_and_work(run_worker)  # the probe; its success kicks a drain for the backlog
    run_worker()

    requests = receiver.received("/down")[tried:]
    probe, after = requests[0], requests[1:]
    assert after and all(r.at >= probe.at + 0.3 for r in after)  # nothing beside the probe
    assert health.describe(_subscription(sub.id)).state == health.HEALTHY
    assert _subscription(sub.id).consecutive_failures == 0
    statuses = _statuses()
    assert statuses.get("succeeded") == 12 - tried  # the backlog; the first tries wait to retry


def test_a_failed_probe_reopens_the_breaker_for_twice_as_long(app, receiver, run_worker, clock):
    sub = _failing_endpoint(app, receiver, run_worker)
    tried = len(receiver.received("/down"))
    clock.advance(seconds=health.FIRST_PAUSE_SECONDS + 1)
    sweep_and_work(run_worker)

    assert len(receiver.received("/down")) == tried + 1  # one probe only
    state = health.describe(_subscription(sub.id))
    assert state.state == health.FAILING
    assert state.paused_until == clock.now() + timedelta(seconds=2 * health.FIRST_PAUSE_SECONDS)


def test_deferral_keeps_the_auto_disable_rule(app, receiver, run_worker, clock):
    sub = _failing_endpoint(app, receiver, run_worker)
    assert _subscription(sub.id).failing_since is not None
    clock.advance(seconds=app.config["HOOKLINE_DISABLE_AFTER_SECONDS"] + 1)
    assert disable_failing_endpoints() == 1
    disabled = _subscription(sub.id)
    assert not disabled.is_active
    assert set(_statuses()) == {"cancelled"}


def test_a_410_still_disables_at_once(app, receiver, run_worker):
    receiver.script("/gone", default=Reply(status=410))
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url("/gone"))
    _publish(tenant.id, 1)
    run_worker()
    assert not _subscription(sub.id).is_active


# Retry-After and rate limits


def test_retry_after_pauses_the_whole_endpoint(app, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[3, 3, 3])  # they also cap a Retry-After pause
    receiver.script("/busy", Reply(status=429, headers={"Retry-After": "2"}), default=Reply())
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url("/busy"))
    _publish(tenant.id, 1)
    run_worker()  # the first delivery gets the 429
    throttled_at = receiver.received("/busy")[0].at
    assert health.describe(_subscription(sub.id)).state == health.THROTTLED
    _publish(tenant.id, 10)
    work_until(
        lambda: sweep_and_work(run_worker),
        lambda: _statuses() == {"succeeded": 11},
        15,
        what=lambda: f"all 11 deliveries to succeed (statuses: {_statuses()})",
    )

    later = receiver.received("/busy")[1:]
    assert len(later) == 11
    assert min(r.at for r in later) >= throttled_at + 1.9


def test_retry_after_and_rate_limit_hold_across_worker_processes(fault_app, receiver, workers):
    """Two workers share one bucket (5/s) and see one endpoint's Retry-After pause."""
    receiver.script("/limited", default=Reply(delay=0.01))
    receiver.script("/paused", Reply(status=429, headers={"Retry-After": "3"}), default=Reply())
    workers.env["HOOKLINE_RETRY_SCHEDULE"] = "5,5,5"  # they also cap a Retry-After pause
    tenant = make_tenant()
    limited, _ = make_subscription(tenant.id, receiver.url("/limited"), events=["invoice.paid"])
    limited.rate_limit = 5
    db.session.commit()
    make_subscription(tenant.id, receiver.url("/paused"), events=["invoice.created"])
    workers.start()
    workers.start()
    _publish(tenant.id, 1, "invoice.created")
    receiver.wait_for(1, "/paused", timeout=30)
    throttled_at = time.monotonic()
    _publish(tenant.id, 5, "invoice.created")
    _publish(tenant.id, 20, "invoice.paid")
    receiver.wait_for(20, "/limited", timeout=30)
    receiver.wait_for(7, "/paused", timeout=30)

    limited = sorted(r.at for r in receiver.received("/limited"))
    assert limited[-1] - limited[0] >= (20 - 3) / 5  # a bucket of 2 tokens, refilled 5/s
    for first in limited:  # no second window holds more than the rate and the bucket
        assert sum(1 for t in limited if first <= t < first + 1) <= 7
    resumed = [r.at for r in receiver.received("/paused")[1:]]
    assert min(resumed) >= throttled_at + 2.5


def test_waiting_on_a_rate_limited_endpoint_burns_no_cpu(app, receiver, run_worker):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url("/slowly"))
    sub.rate_limit = 4
    db.session.commit()
    _publish(tenant.id, 12)
    wall, cpu = time.monotonic(), time.process_time()
    run_worker()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu

    assert len(receiver.received("/slowly")) == 12
    assert wall >= 2.5  # 12 at 4/s
    assert cpu < 0.25 * wall  # waiting is sleeping (this process also runs the receiver)


def test_a_claim_cut_short_by_the_bucket_waits_for_a_batch_not_one_token(app):
    """At 20/s a drain waits a quarter second for five tokens, rather than waking every
    50 ms for one: fewer, larger rounds, whatever the rate."""
    assert throttle.capacity(20) == 5
    granted, wait = throttle.take({"sub_a": (20, 8)})["sub_a"]
    assert (granted, wait) == (5, pytest.approx(0.15, abs=0.01))  # the 3 left: 150 ms
    granted, wait = throttle.take({"sub_a": (20, 8)})["sub_a"]
    assert granted == 0 and 0.2 <= wait <= 0.26  # a bucketful, less the sliver refilled since
    time.sleep(wait)
    assert throttle.take({"sub_a": (20, 8)})["sub_a"][0] == 5
    granted, wait = throttle.take({"sub_b": (20, 6)})["sub_b"]
    assert (granted, wait) == (5, pytest.approx(0.05, abs=0.01))  # only one more was wanted


# Fairness


def test_a_fresh_event_is_not_queued_behind_another_endpoints_backlog(app, receiver, run_worker):
    """The backlog is older, yet the other tenant's event goes out in the first round."""
    receiver.script("/backlog", default=Reply(delay=0.02))
    tenant = make_tenant()
    other = make_tenant("Other")
    make_subscription(tenant.id, receiver.url("/backlog"))
    make_subscription(other.id, receiver.url("/fresh"))
    _publish(tenant.id, 600)
    _publish(other.id, 1)
    run_worker()

    (fresh,) = receiver.received("/fresh")
    backlog = receiver.received("/backlog")
    assert len(backlog) == 600
    assert sum(1 for r in backlog if r.at < fresh.at) <= INITIAL_LIMIT
