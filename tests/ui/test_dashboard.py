"""The dashboard: a server-drawn SVG chart, success rate, and endpoints needing attention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dispatcher import clock, publish
from portal.extensions import db
from portal.models import Delivery
from portal.services.stats import HourBucket
from portal.ui.charts import axis_top, hourly_chart
from tests.factories import make_subscription, set_health


def _bucket(hour: int, succeeded: int = 0, failed: int = 0, pending: int = 0) -> HourBucket:
    start = datetime(2025, 9, 30, hour, tzinfo=UTC)
    counts = {"succeeded": succeeded, "failed": failed, "pending": pending, "cancelled": 0}
    return HourBucket(start=start, counts=counts)


def test_axis_top_is_a_round_number():
    tops = [axis_top(v) for v in (0, 3, 7, 11, 45, 101, 4000)]
    assert tops == [4, 4, 8, 20, 80, 200, 4000]
    assert all(top % 4 == 0 for top in tops)


def test_bars_stack_succeeded_below_failed_and_scale_to_the_axis():
    chart = hourly_chart([_bucket(h) for h in range(23)] + [_bucket(23, succeeded=6, failed=2)])
    assert chart.total == 8
    assert [tick.value for tick in chart.ticks] == [0, 2, 4, 6, 8]
    last = chart.bars[-1]
    ok, bad = last.segments
    assert (ok.css, bad.css) == ("ok", "bad")
    assert ok.y + ok.height == chart.baseline
    assert bad.y + bad.height == ok.y
    assert ok.height == 3 * bad.height
    assert ok.height + bad.height == chart.baseline - chart.ticks[-1].y
    assert chart.bars[0].segments == []
    assert [bar.label for bar in chart.bars if bar.label] == ["00:00", "04:00", "08:00", "12:00",
                                                             "16:00", "20:00"]  # fmt: skip


def test_dashboard_draws_the_last_24_hours_as_svg(portal, receiver, run_worker):
    make_subscription(portal.admin.tenant_id, receiver.url())
    publish("invoice.created", {"invoice_id": "inv_1"}, tenant_id=portal.admin.tenant_id)
    db.session.commit()
    run_worker()
    page = portal.get("/").get_data(as_text=True)
    assert '<svg viewBox="0 0 720 220"' in page
    assert page.count('class="seg seg-ok"') == 1
    assert "1 succeeded, 0 failed" in page
    assert "100.0%" in page
    assert "No endpoints yet" not in page


def test_empty_dashboard_invites_creating_an_endpoint(portal):
    page = portal.get("/").get_data(as_text=True)
    assert "No endpoints yet" in page
    assert "Add your first endpoint" in page
    assert "<svg" in page


def test_failing_and_disabled_endpoints_are_linked(portal, receiver):
    failing, _ = make_subscription(portal.admin.tenant_id, receiver.url("/failing"))
    disabled, _ = make_subscription(portal.admin.tenant_id, receiver.url("/disabled"))
    set_health(
        failing.id, consecutive_failures=5, circuit_opened_at=clock.now() - timedelta(hours=3)
    )
    portal.post(f"/endpoints/{disabled.id}/disable")
    page = portal.get("/").get_data(as_text=True)
    assert f'href="/endpoints/{failing.id}"' in page
    assert f'href="/endpoints/{disabled.id}"' in page
    assert "Disabled by an admin." in page
    assert "failing since" in page and "no success yet" in page


def test_test_deliveries_are_left_out_of_the_chart(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    portal.post(f"/endpoints/{sub.id}/test", {"event_type": "webhook.test"})
    assert db.session.scalar(select(Delivery.is_test)) is True
    page = portal.get("/").get_data(as_text=True)
    assert "in all" in page
    assert "Deliveries per hour over the last 24 hours: 0 in all" in page
