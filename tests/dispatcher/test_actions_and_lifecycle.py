"""Test events, manual retry, recover, auto-disable, re-enable, sweeping and pruning."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from standardwebhooks import Webhook

from dispatcher import maintenance, publish, queues
from dispatcher.connection import get_redis
from portal.extensions import db
from portal.models import Attempt, Delivery, Event, Subscription
from portal.services import subscriptions as service
from tests.dispatcher.helpers import attempts_of, only_delivery, sweep_and_work
from tests.factories import make_subscription, make_tenant
from tests.receiver import Reply
from tests.support import configure


def _publish(tenant_id: str, event_type: str = "invoice.paid") -> None:
    publish(event_type, {"invoice_id": "inv_1"}, tenant_id=tenant_id)
    db.session.commit()


def test_test_event_goes_to_one_subscription_on_the_priority_queue(app, receiver, run_worker):
    tenant = make_tenant()
    sub, secret = make_subscription(tenant.id, receiver.url("/one"))
    make_subscription(tenant.id, receiver.url("/other"))
    delivery = service.send_test(tenant.id, sub.id)
    delivery_id = delivery.id
    db.session.commit()
    assert queues.get_queue(priority=True).count == 1

    run_worker()
    (got,) = receiver.wait_for(1)
    assert got.path == "/one"
    Webhook(secret).verify(got.body, got.headers)
    assert got.json["type"] == "webhook.test"
    (attempt,) = attempts_of(delivery_id)
    assert attempt.trigger == "test"
    assert db.session.get(Delivery, delivery_id).status == "succeeded"


def test_test_event_of_a_catalog_type_sends_its_example(app, receiver, run_worker):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    service.send_test(tenant.id, sub.id, "invoice.paid")
    db.session.commit()
    run_worker()
    (got,) = receiver.wait_for(1)
    assert got.json["type"] == "invoice.paid"
    assert got.json["data"]["invoice_id"].startswith("inv_")


def test_failed_test_event_is_not_retried_and_does_not_count_toward_disable(
    app, receiver, run_worker
):
    receiver.script("/hook", default=Reply(status=500))
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    service.send_test(tenant.id, sub.id)
    db.session.commit()
    run_worker()
    delivery = only_delivery()
    assert delivery.status == "failed"
    assert delivery.next_attempt_at is None
    assert db.session.get(Subscription, sub.id).failing_since is None


def test_manual_retry_of_a_failed_delivery_makes_one_more_attempt(app, receiver, run_worker, clock):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/hook", Reply(status=500))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    _publish(tenant.id)
    run_worker()
    assert only_delivery().status == "failed"

    from dispatcher import actions

    actions.retry(only_delivery())
    db.session.commit()
    run_worker()
    delivery = only_delivery()
    assert delivery.status == "succeeded"
    assert [(a.number, a.trigger) for a in attempts_of(delivery.id)] == [(1, "auto"), (2, "manual")]


def test_recover_resends_failed_deliveries_since_a_time(app, receiver, run_worker, clock):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/hook", Reply(status=500), Reply(status=500), Reply(status=500))
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    _publish(tenant.id)
    run_worker()
    clock.advance(hours=1)
    cutoff = clock.now()
    _publish(tenant.id)
    _publish(tenant.id)
    run_worker()
    assert db.session.scalar(select(func.count()).where(Delivery.status == "failed")) == 3

    assert service.recover(tenant.id, sub.id, since=cutoff) == 2
    db.session.commit()
    run_worker()
    statuses = sorted(d.status for d in db.session.scalars(select(Delivery)))
    assert statuses == ["failed", "succeeded", "succeeded"]
    assert len(receiver.received()) == 5


def test_endpoint_failing_for_the_disable_window_is_disabled_and_others_are_told(
    app, receiver, run_worker, clock
):
    configure(app, HOOKLINE_DISABLE_AFTER_SECONDS=5 * 86400)
    receiver.script("/dead", default=Reply(status=500))
    tenant = make_tenant()
    dead, _ = make_subscription(tenant.id, receiver.url("/dead"), events=["invoice.*"])
    _watcher, _ = make_subscription(tenant.id, receiver.url("/ops"), events=["endpoint.*"])
    _publish(tenant.id)
    run_worker()
    assert db.session.get(Subscription, dead.id).failing_since is not None

    clock.advance(days=4)
    maintenance.disable_failing_endpoints()
    assert db.session.get(Subscription, dead.id).is_active is True

    clock.advance(days=1, seconds=1)
    assert maintenance.disable_failing_endpoints() == 1
    disabled = db.session.get(Subscription, dead.id)
    assert disabled.is_active is False
    assert "no successful delivery" in disabled.disabled_reason
    # pending retries of the dead endpoint are cancelled, not left stuck
    pending = db.session.scalars(
        select(Delivery).where(Delivery.subscription_id == dead.id, Delivery.status == "pending")
    ).all()
    assert pending == []
    run_worker()
    (notice,) = receiver.wait_for(1, "/ops")
    assert notice.json["type"] == "endpoint.disabled"
    assert notice.json["data"]["endpoint_id"] == dead.id


def test_success_resets_the_failure_clock(app, receiver, run_worker, clock):
    receiver.script("/hook", Reply(status=500))
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    _publish(tenant.id)
    run_worker()
    clock.advance(minutes=5)
    sweep_and_work(run_worker)
    db.session.expire_all()
    subscription = db.session.get(Subscription, sub.id)
    assert subscription.failing_since is None
    assert subscription.last_success_at is not None


def test_re_enabling_restores_delivery(app, receiver, run_worker):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    service.set_active(tenant.id, sub.id, False)
    db.session.commit()
    _publish(tenant.id)
    run_worker()
    assert receiver.received() == []
    service.set_active(tenant.id, sub.id, True)
    db.session.commit()
    _publish(tenant.id)
    run_worker()
    receiver.wait_for(1)


def test_sweeper_re_enqueues_due_deliveries_after_redis_is_flushed(app, receiver, run_worker):
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    _publish(tenant.id)
    get_redis().flushdb()  # the drain job is lost
    run_worker()
    assert receiver.received() == []
    sweep_and_work(run_worker)
    receiver.wait_for(1)


def test_sweeper_enqueues_a_drain_despite_a_kick_flag_left_by_a_killed_worker(
    app, receiver, run_worker
):
    """A worker SIGKILLed between taking the drain job and clearing the kick flag leaves the
    flag set with no job queued: publishers' kicks are then skipped, the sweeper's is not."""
    from dispatcher import queues

    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    get_redis().flushdb()
    get_redis().set(queues._kick_flag(False), "1", ex=60)  # the dead worker's flag
    _publish(tenant.id)  # its kick sees the flag and enqueues nothing
    assert queues.get_queue().count == 0
    sweep_and_work(run_worker)
    receiver.wait_for(1)


def test_expired_lease_of_a_dead_worker_is_claimed_again(app, receiver, run_worker, clock):
    from dispatcher.claims import claim_for

    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    _publish(tenant.id)
    get_redis().flushdb()
    (_claim,) = claim_for({sub.id: 10}, lease=timedelta(seconds=15))  # a worker claims, dies
    db.session.commit()
    assert claim_for({sub.id: 10}, lease=timedelta(seconds=15)) == []  # nobody else may take it
    db.session.commit()
    sweep_and_work(run_worker)
    assert receiver.received() == []
    clock.advance(seconds=41)
    sweep_and_work(run_worker)
    receiver.wait_for(1)


def test_prune_deletes_old_history_in_batches_and_keeps_pending(app, receiver, run_worker, clock):
    configure(app, HOOKLINE_RETENTION_DAYS=30)
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    for _ in range(3):
        _publish(tenant.id)
    run_worker()
    receiver.script("/hook", default=Reply(status=500))
    _publish(tenant.id)
    run_worker()  # this one stays pending, waiting for a retry
    clock.advance(days=31)

    attempts, deliveries, events = maintenance.prune()
    assert (attempts, deliveries, events) == (4, 3, 3)
    assert db.session.scalar(select(func.count()).select_from(Attempt)) == 0
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 1
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1


def test_maintenance_run_all_reports(app):
    report = maintenance.run_all()
    assert report.disabled == 0 and report.kicked is False
