"""publish(): validation, the transactional outbox, idempotency, Redis down."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dispatcher import (
    ArchivedEventType,
    IdempotencyConflict,
    InvalidPayload,
    PayloadTooLarge,
    UnknownEventType,
    publish,
    queues,
)
from dispatcher.connection import get_redis
from portal.extensions import db
from portal.models import Delivery, Event
from portal.services import event_types
from tests.factories import make_subscription, make_tenant
from tests.support import configure


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _queued_jobs() -> int:
    return queues.get_queue().count + queues.get_queue(priority=True).count


def test_rollback_leaves_no_event_no_delivery_and_no_job(app, receiver):
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    assert _queued_jobs() == 0  # nothing is enqueued before commit
    db.session.rollback()

    assert _count(Event) == 0
    assert _count(Delivery) == 0
    assert _queued_jobs() == 0


def test_commit_enqueues_a_drain_and_the_event_is_delivered(app, receiver, run_worker):
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    assert _queued_jobs() == 1
    run_worker()
    receiver.wait_for(1)


def test_publish_joins_the_callers_transaction(app, receiver):
    """The caller's own rows and the event commit or roll back together."""
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    other = event_types.create_custom_type(tenant.id, "order.shipped", "An order left")
    publish("order.shipped", {"order_id": "o_1"}, tenant_id=tenant.id)
    db.session.rollback()
    assert db.session.get(type(other), other.id) is None
    assert _count(Event) == 0


def test_redis_down_at_publish_still_commits_and_the_sweeper_delivers_later(
    app, receiver, run_worker, monkeypatch
):
    import redis

    from dispatcher import maintenance

    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    working = app.extensions["hookline.redis"]
    app.extensions["hookline.redis"] = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.5)
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()  # must not raise
    assert _count(Delivery) == 1

    app.extensions["hookline.redis"] = working
    assert _queued_jobs() == 0
    assert maintenance.sweep() is True
    run_worker()
    receiver.wait_for(1)


@pytest.mark.parametrize(
    ("event_type", "data", "error"),
    [
        ("nope.unknown", {"a": 1}, UnknownEventType),
        ("", {"a": 1}, UnknownEventType),
        ("invoice.paid", ["not", "an", "object"], InvalidPayload),
        ("invoice.paid", {"invoice_id": "inv_1", "bad": float("nan")}, InvalidPayload),
        ("invoice.paid", {"invoice_id": "inv_1", "bad": object()}, InvalidPayload),
        ("invoice.paid", {"invoice_id": 42}, InvalidPayload),  # breaks the type's schema
        ("invoice.paid", {"invoice_id": "inv_1", "s": "\ud800"}, InvalidPayload),
    ],
)
def test_invalid_publish_raises_a_clear_error_and_writes_nothing(app, event_type, data, error):
    tenant = make_tenant()
    with pytest.raises(error) as raised:
        publish(event_type, data, tenant_id=tenant.id)
    assert str(raised.value)
    db.session.commit()
    assert _count(Event) == 0


def test_payload_over_the_limit_is_refused(app):
    configure(app, HOOKLINE_MAX_PAYLOAD_BYTES=1000)
    tenant = make_tenant()
    with pytest.raises(PayloadTooLarge, match="limit is 1000 bytes"):
        publish("invoice.paid", {"invoice_id": "inv_1", "pad": "x" * 2000}, tenant_id=tenant.id)


def test_archived_type_is_refused(app):
    tenant = make_tenant()
    event_types.create_custom_type(tenant.id, "order.shipped")
    event_types.archive_custom_type(tenant.id, "order.shipped")
    db.session.commit()
    with pytest.raises(ArchivedEventType):
        publish("order.shipped", {}, tenant_id=tenant.id)


def test_another_tenants_custom_type_is_unknown(app):
    owner, other = make_tenant("Owner"), make_tenant("Other")
    event_types.create_custom_type(owner.id, "order.shipped")
    db.session.commit()
    with pytest.raises(UnknownEventType):
        publish("order.shipped", {}, tenant_id=other.id)


def test_idempotency_key_returns_the_first_event_without_new_deliveries(app, receiver):
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    first = publish(
        "invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id, idempotency_key="k1"
    )
    db.session.commit()
    again = publish(
        "invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id, idempotency_key="k1"
    )
    db.session.commit()
    assert again.id == first.id
    assert _count(Event) == 1
    assert _count(Delivery) == 1


def test_idempotency_key_reused_with_other_data_is_a_conflict(app):
    tenant = make_tenant()
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id, idempotency_key="k1")
    db.session.commit()
    with pytest.raises(IdempotencyConflict):
        publish("invoice.paid", {"invoice_id": "inv_2"}, tenant_id=tenant.id, idempotency_key="k1")


def test_idempotency_keys_are_per_tenant(app):
    a, b = make_tenant("A"), make_tenant("B")
    first = publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=a.id, idempotency_key="k")
    second = publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=b.id, idempotency_key="k")
    db.session.commit()
    assert first.id != second.id


def test_no_matching_subscription_records_the_event_without_deliveries(app):
    tenant = make_tenant()
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    assert _count(Event) == 1
    assert _count(Delivery) == 0
    assert get_redis().keys("*drain-waiting") == []


@pytest.mark.parametrize("key", ["", "k" * 256, 42])
def test_idempotency_key_must_be_short_text(app, key):
    from dispatcher import InvalidIdempotencyKey

    tenant = make_tenant()
    with pytest.raises(InvalidIdempotencyKey):
        publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id, idempotency_key=key)
