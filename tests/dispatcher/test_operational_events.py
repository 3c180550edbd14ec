"""Every operational `endpoint.*` event arrives, over loopback, at the tenant's other endpoints
that subscribe to it, and never at the endpoint it is about."""

from __future__ import annotations

import jsonschema
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from dispatcher import health, publish
from portal.catalog import STANDARD_EVENT_TYPES
from portal.extensions import db
from portal.models import Event
from portal.services import subscriptions as service
from tests.dispatcher.helpers import sweep_and_work, work_until
from tests.factories import make_subscription, make_tenant
from tests.receiver import Reply
from tests.support import configure

SCHEMAS = {spec.name: spec.schema for spec in STANDARD_EVENT_TYPES}


def _watch(receiver, events=("endpoint.*",)):
    """A tenant with an endpoint that listens to operational events at /ops."""
    tenant = make_tenant()
    watcher, secret = make_subscription(tenant.id, receiver.url("/ops"), events=list(events))
    return tenant, watcher, secret


def _notices(receiver, event_type: str, run_worker, count: int = 1):
    work_until(
        run_worker,
        lambda: (
            len([r for r in receiver.received("/ops") if r.json["type"] == event_type]) >= count
        ),
        timeout=15,
    )
    got = [r for r in receiver.received("/ops") if r.json["type"] == event_type]
    for notice in got:
        jsonschema.validate(notice.json["data"], SCHEMAS[event_type])
    return got


def _own_types(receiver, path: str) -> set[str]:
    return {r.json["type"] for r in receiver.received(path)}


def test_endpoint_created_arrives_at_the_other_endpoint(app, receiver, run_worker):
    tenant, _, secret = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/new"), events=["endpoint.*"])

    (notice,) = _notices(receiver, "endpoint.created", run_worker)
    Webhook(secret).verify(notice.body, notice.headers)
    assert notice.json["data"]["endpoint_id"] == sub.id
    assert notice.json["data"]["event_types"] == ["endpoint.*"]
    assert notice.json["data"]["signature_scheme"] == "hmac"
    assert receiver.received("/new") == []  # never about itself


def test_endpoint_updated_names_the_changed_fields(app, receiver, run_worker):
    tenant, _, _ = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/sub"), events=["endpoint.*"])
    service.update(tenant.id, sub.id, {"url": receiver.url("/sub2"), "description": "billing"})
    db.session.commit()

    (notice,) = _notices(receiver, "endpoint.updated", run_worker)
    assert notice.json["data"]["changed_fields"] == ["url", "description"]
    assert notice.json["data"]["url"] == receiver.url("/sub2")
    assert "endpoint.updated" not in _own_types(receiver, "/sub2")


def test_an_update_that_changes_nothing_publishes_nothing(app, receiver, run_worker):
    tenant, _, _ = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/sub"), events=["*"])
    service.update(tenant.id, sub.id, {"url": receiver.url("/sub")})
    db.session.commit()
    run_worker()
    assert _own_types(receiver, "/ops") == {"endpoint.created"}


def test_endpoint_deleted_arrives(app, receiver, run_worker):
    tenant, _, _ = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/gone"), events=["endpoint.*"])
    service.delete(tenant.id, sub.id)
    db.session.commit()

    (notice,) = _notices(receiver, "endpoint.deleted", run_worker)
    assert notice.json["data"]["endpoint_id"] == sub.id
    assert receiver.received("/gone") == []


def test_endpoint_disabled_and_enabled_arrive(app, receiver, run_worker):
    tenant, _, _ = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/sub"), events=["endpoint.*"])
    service.set_active(tenant.id, sub.id, False)
    db.session.commit()
    service.set_active(tenant.id, sub.id, True)
    db.session.commit()

    (disabled,) = _notices(receiver, "endpoint.disabled", run_worker)
    (enabled,) = _notices(receiver, "endpoint.enabled", run_worker)
    assert disabled.json["data"]["reason"] == "Disabled by an admin."
    assert enabled.json["data"]["endpoint_id"] == sub.id
    assert receiver.received("/sub") == []


def test_endpoint_secret_rotated_arrives_with_the_grace_end(app, receiver, run_worker):
    tenant, _, _ = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/sub"), events=["endpoint.*"])
    _, expires = service.rotate_secret(tenant.id, sub.id, 3600)
    db.session.commit()

    (notice,) = _notices(receiver, "endpoint.secret_rotated", run_worker)
    assert notice.json["data"]["previous_secret_expires_at"] == expires.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert receiver.received("/sub") == []


def test_endpoint_delivery_failed_when_retries_are_used_up(app, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])  # the first failed attempt is the last
    receiver.script("/down", default=Reply(status=500))
    tenant, _, _ = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/down"), events=["*", "endpoint.*"])
    event = publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()

    (notice,) = _notices(receiver, "endpoint.delivery_failed", run_worker)
    data = notice.json["data"]
    assert data["endpoint_id"] == sub.id and data["event_id"] == event.id
    assert data["event_type"] == "invoice.paid" and data["attempts"] == 1
    assert data["last_response_status"] == 500
    assert "endpoint.delivery_failed" not in _own_types(receiver, "/down")


def test_failed_operational_deliveries_do_not_cascade(app, receiver, run_worker):
    """Two endpoints that listen to each other's notices and both fail: one notice about the
    real delivery, none about the notices' own failed deliveries."""
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/a", default=Reply(status=500))
    receiver.script("/b", default=Reply(status=500))
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/a"), events=["invoice.paid", "endpoint.*"])
    make_subscription(tenant.id, receiver.url("/b"), events=["endpoint.*"])
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    for _ in range(3):
        run_worker()

    failed = db.session.scalar(
        select(func.count()).select_from(Event).where(Event.type == "endpoint.delivery_failed")
    )
    assert failed == 1  # about /a's invoice; /b's failed notice about it caused nothing
    assert [r.json["type"] for r in receiver.received("/b")] == ["endpoint.delivery_failed"]


def test_endpoint_failing_and_recovered_follow_the_breaker(app, receiver, run_worker, clock):
    configure(app, HOOKLINE_BREAKER_FAILURES=3)
    receiver.script("/down", default=Reply(status=503))
    tenant, _, _ = _watch(receiver, events=("endpoint.failing", "endpoint.recovered"))
    sub, _ = make_subscription(tenant.id, receiver.url("/down"), events=["invoice.paid"])
    # more than the breaker lets through before it opens, so some wait to be the probe
    for n in range(12):
        publish("invoice.paid", {"invoice_id": f"inv_{n}"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    (failing,) = _notices(receiver, "endpoint.failing", run_worker)
    assert failing.json["data"]["endpoint_id"] == sub.id
    assert failing.json["data"]["consecutive_failures"] >= 3
    assert failing.json["data"]["last_error"] == "HTTP 503"

    receiver.script("/down", default=Reply(status=200))
    clock.advance(seconds=health.FIRST_PAUSE_SECONDS + 1)
    sweep_and_work(run_worker)  # the probe succeeds and the breaker closes
    (recovered,) = _notices(receiver, "endpoint.recovered", run_worker)
    assert recovered.json["data"]["endpoint_id"] == sub.id
    assert _own_types(receiver, "/down") == {"invoice.paid"}


def test_star_leaves_operational_events_out(app, receiver, run_worker):
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/all"), events=["*"])
    make_subscription(tenant.id, receiver.url("/other"), events=["*"])
    run_worker()
    assert receiver.received("/all") == []
    # and nobody listening means nothing stored
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0


def test_an_uncommitted_change_publishes_nothing(app, receiver, run_worker):
    tenant, _, _ = _watch(receiver)
    sub, _ = make_subscription(tenant.id, receiver.url("/sub"), events=["*"])
    run_worker()
    before = len(receiver.received("/ops"))
    service.rotate_secret(tenant.id, sub.id, 0)
    db.session.rollback()
    run_worker()
    assert len(receiver.received("/ops")) == before
