"""Retries: RQ-scheduled, on the configured schedule, honouring Retry-After; 410 disables."""

from __future__ import annotations

import itertools
from datetime import timedelta

from dispatcher import publish
from dispatcher.transitions import retry_delay
from portal.extensions import db
from portal.models import Subscription
from tests.dispatcher.helpers import attempts_of, only_delivery, sweep_and_work, work_until
from tests.factories import make_subscription, make_tenant
from tests.receiver import Reply
from tests.support import configure


def _publish_one(tenant_id: str) -> None:
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant_id)
    db.session.commit()


def test_receiver_failing_twice_gets_exactly_three_attempts_at_the_schedule(
    app, receiver, run_worker
):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[1, 1, 1])
    receiver.script("/hook", Reply(status=500), Reply(status=502))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    _publish_one(tenant.id)

    work_until(run_worker, lambda: only_delivery().status != "pending", timeout=20)

    delivery = only_delivery()
    assert delivery.status == "succeeded"
    attempts = attempts_of(delivery.id)
    assert [a.response_status for a in attempts] == [500, 502, 200]
    assert [a.number for a in attempts] == [1, 2, 3]
    got = receiver.received()
    assert len(got) == 3
    assert [r.headers["X-Webhook-Attempt"] for r in got] == ["1", "2", "3"]
    assert len({r.headers["webhook-id"] for r in got}) == 1  # the same id on every retry
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(got)]
    assert all(gap >= 0.9 for gap in gaps), gaps


def test_default_schedule_is_five_minutes_one_hour_six_hours_then_failed(
    app, receiver, run_worker, clock
):
    receiver.script("/hook", default=Reply(status=500))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    start = clock.now()
    _publish_one(tenant.id)

    run_worker()
    assert only_delivery().next_attempt_at == start + timedelta(minutes=5)
    clock.advance(minutes=5)
    sweep_and_work(run_worker)
    assert only_delivery().next_attempt_at == start + timedelta(minutes=5, hours=1)
    clock.advance(hours=1)
    sweep_and_work(run_worker)
    assert only_delivery().next_attempt_at == start + timedelta(minutes=5, hours=7)
    clock.advance(hours=6)
    sweep_and_work(run_worker)

    delivery = only_delivery()
    assert delivery.status == "failed"
    assert delivery.attempt_count == 4
    assert delivery.next_attempt_at is None
    assert len(receiver.received()) == 4


def test_retry_is_not_sent_before_it_is_due(app, receiver, run_worker, clock):
    receiver.script("/hook", Reply(status=500))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    _publish_one(tenant.id)
    run_worker()
    clock.advance(minutes=4)
    sweep_and_work(run_worker)
    assert len(receiver.received()) == 1
    assert only_delivery().status == "pending"


def test_retry_after_pushes_the_next_attempt_later_within_the_schedule_maximum(
    app, receiver, run_worker, clock
):
    receiver.script("/hook", Reply(status=429, headers={"Retry-After": "1800"}))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    start = clock.now()
    _publish_one(tenant.id)
    run_worker()
    assert only_delivery().next_attempt_at == start + timedelta(seconds=1800)


def test_retry_after_is_capped_by_the_longest_delay():
    assert retry_delay([300, 3600, 21600], 1, retry_after=10**9) == 21600
    assert retry_delay([300, 3600, 21600], 1, retry_after=10) == 300
    assert retry_delay([300, 3600, 21600], 4, retry_after=None) is None


def test_gone_disables_the_subscription_at_once(app, receiver, run_worker):
    receiver.script("/hook", Reply(status=410))
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    sub_id = sub.id
    _publish_one(tenant.id)
    run_worker()

    delivery = only_delivery()
    assert delivery.status == "failed"
    assert delivery.attempt_count == 1
    subscription = db.session.get(Subscription, sub_id)
    assert subscription.is_active is False
    assert "410" in subscription.disabled_reason
