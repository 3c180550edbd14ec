"""The services behind the API and the portal: events, deliveries and stats."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher import clock as dispatcher_clock
from portal.extensions import db
from portal.models import Attempt, Event
from portal.services import NotFound, ServiceError, deliveries, events, stats
from tests.factories import make_subscription, make_tenant


def test_publish_event_fans_out_and_repeats_idempotently(app):
    tenant = make_tenant()
    make_subscription(tenant.id, "http://127.0.0.1:9/a")
    make_subscription(tenant.id, "http://127.0.0.1:9/b", events=["invoice.*"])
    first = events.publish_event(
        tenant.id, "invoice.created", {"invoice_id": "inv_1"}, idempotency_key="k1"
    )
    db.session.commit()
    assert (first.deliveries, first.replayed) == (2, False)
    again = events.publish_event(
        tenant.id, "invoice.created", {"invoice_id": "inv_1"}, idempotency_key="k1"
    )
    db.session.commit()
    assert (again.event.id, again.deliveries, again.replayed) == (first.event.id, 2, True)
    assert db.session.query(Event).count() == 1


def test_a_replay_in_the_same_transaction_counts_the_flushed_deliveries(app):
    tenant = make_tenant()
    make_subscription(tenant.id, "http://127.0.0.1:9/a")
    first = events.publish_event(tenant.id, "invoice.sent", {"n": 1}, idempotency_key="k")
    again = events.publish_event(tenant.id, "invoice.sent", {"n": 1}, idempotency_key="k")
    assert (again.event.id, again.deliveries, again.replayed) == (first.event.id, 1, True)


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, "tab\there", "nul\x00", 42])
def test_publish_event_refuses_an_unusable_idempotency_key(app, key):
    tenant = make_tenant()
    with pytest.raises(ServiceError) as info:
        events.publish_event(tenant.id, "invoice.sent", {}, idempotency_key=key)
    assert (info.value.code, info.value.field) == ("invalid_request", "idempotency_key")
    db.session.rollback()
    assert db.session.query(Event).count() == 0


def test_publish_event_reused_key_with_other_body_is_a_conflict(app):
    tenant = make_tenant()
    events.publish_event(tenant.id, "invoice.sent", {"n": 1}, idempotency_key="k")
    db.session.commit()
    with pytest.raises(ServiceError) as info:
        events.publish_event(tenant.id, "invoice.sent", {"n": 2}, idempotency_key="k")
    assert info.value.code == "idempotency_conflict"


@pytest.mark.parametrize(
    ("event_type", "data", "code", "field"),
    [
        ("no.such_type", {}, "unknown_event_type", "type"),
        ("invoice.sent", [1, 2], "invalid_payload", "data"),
        ("invoice.sent", {"x": "y" * 300_000}, "payload_too_large", "data"),
    ],
)
def test_publish_event_refusals_carry_dispatcher_codes(app, event_type, data, code, field):
    tenant = make_tenant()
    with pytest.raises(ServiceError) as info:
        events.publish_event(tenant.id, event_type, data)
    assert (info.value.code, info.value.field) == (code, field)
    db.session.rollback()
    assert db.session.query(Event).count() == 0


def test_list_events_pages_newest_first_and_filters_by_type(app):
    tenant = make_tenant()
    ids = []
    for n in range(5):
        kind = "invoice.sent" if n % 2 else "invoice.finalized"
        ids.append(events.publish_event(tenant.id, kind, {"n": n}).event.id)
    db.session.commit()
    first = events.list_events(tenant.id, limit=3)
    second = events.list_events(tenant.id, limit=3, cursor=first.next_cursor)
    assert [e.id for e in first.items + second.items] == ids[::-1]
    assert second.next_cursor is None
    paid = events.list_events(tenant.id, type="invoice.finalized")
    assert {e.type for e in paid.items} == {"invoice.finalized"} and len(paid.items) == 3


def test_get_event_of_another_tenant_is_not_found(app):
    mine, theirs = make_tenant("A"), make_tenant("B")
    event = events.publish_event(mine.id, "invoice.sent", {}).event
    db.session.commit()
    with pytest.raises(NotFound):
        events.get_event(theirs.id, event.id)
    assert events.get_event(mine.id, event.id).id == event.id


def test_list_deliveries_filters(app):
    tenant = make_tenant()
    a, _ = make_subscription(tenant.id, "http://127.0.0.1:9/a")
    b, _ = make_subscription(tenant.id, "http://127.0.0.1:9/b")
    events.publish_event(tenant.id, "invoice.sent", {})
    events.publish_event(tenant.id, "payment.refunded", {})
    db.session.commit()
    everything = deliveries.list_deliveries(tenant.id)
    assert len(everything.items) == 4
    by_sub = deliveries.list_deliveries(tenant.id, subscription_id=a.id)
    assert {d.subscription_id for d in by_sub.items} == {a.id}
    by_type = deliveries.list_deliveries(tenant.id, event_type="payment.refunded")
    assert {d.event_type for d in by_type.items} == {"payment.refunded"}
    assert deliveries.list_deliveries(tenant.id, status="failed").items == []
    later = dispatcher_clock.now() + timedelta(hours=1)
    assert deliveries.list_deliveries(tenant.id, since=later).items == []
    assert len(deliveries.list_deliveries(tenant.id, until=later).items) == 4
    with pytest.raises(ServiceError):
        deliveries.list_deliveries(tenant.id, status="lost")
    assert b.id


def test_stats_count_statuses_and_latency(app, receiver, run_worker):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url("/hook"))
    for n in range(3):
        events.publish_event(tenant.id, "invoice.sent", {"n": n})
    db.session.commit()
    run_worker()
    receiver.wait_for(3)
    now = dispatcher_clock.now() + timedelta(seconds=1)
    result = stats.subscription_stats(tenant.id, sub.id, now)
    assert result.counts["succeeded"] == 3 and result.success_rate == 1.0
    assert result.latency_ms.samples == 3
    assert result.latency_ms.p50 is not None and result.latency_ms.p99 >= result.latency_ms.p50
    overview = stats.tenant_overview(tenant.id, now)
    assert len(overview.hours) == 24
    assert overview.hours[-1].counts["succeeded"] == 3
    assert overview.counts["succeeded"] == 3 and overview.success_rate == 1.0
    assert db.session.query(Attempt).count() == 3


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 95) == 95
    assert stats.percentile(values, 99) == 99
    assert stats.percentile([], 50) is None
    assert stats.percentile([7], 99) == 7


# --- one pager for every list ------------------------------------------------------------------


def test_subscriptions_and_event_types_page_with_the_shared_pager(app):
    from portal.services import event_types
    from portal.services import subscriptions as subscription_service

    tenant = make_tenant()
    made = [make_subscription(tenant.id, f"http://127.0.0.1:9/{n}")[0].id for n in range(3)]
    first = subscription_service.list_subscriptions(tenant.id, 2)
    rest = subscription_service.list_subscriptions(tenant.id, 2, first.next_cursor)
    assert [s.id for s in first.items + rest.items] == made[::-1]
    assert first.next_cursor == first.items[-1].id and rest.next_cursor is None

    names = [row.name for row in event_types.list_types(tenant.id)]
    page = event_types.page_types(tenant.id, 5)
    after = event_types.page_types(tenant.id, 5, page.next_cursor)
    assert [row.name for row in page.items + after.items] == names[:10]
    assert page.next_cursor == names[4]


@pytest.mark.parametrize("cursor", ["sub_\x00", "x" * 65, "sub_\u00e9", 7])
def test_every_list_refuses_a_cursor_it_did_not_hand_out(app, cursor):
    from portal.services import event_types
    from portal.services import subscriptions as subscription_service

    tenant = make_tenant()
    for list_page in (
        subscription_service.list_subscriptions,
        events.list_events,
        deliveries.list_deliveries,
    ):
        with pytest.raises(ServiceError) as info:
            list_page(tenant.id, limit=10, cursor=cursor)
        assert info.value.field == "cursor"
    if cursor != "x" * 65:  # type names may be longer than ids, up to 200 characters
        with pytest.raises(ServiceError):
            event_types.page_types(tenant.id, 10, cursor)
