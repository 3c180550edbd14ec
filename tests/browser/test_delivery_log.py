"""The delivery log in the browser: filters swap the results in place, and live refresh."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from dispatcher import publish
from portal.extensions import db
from portal.models import EventType
from tests.browser.conftest import sign_in
from tests.factories import make_subscription


def _publish(tenant_id: str, event_type: str) -> None:
    example = db.session.scalar(select(EventType.example).where(EventType.name == event_type))
    publish(event_type, example, tenant_id=tenant_id)
    db.session.commit()


def test_filters_swap_results_in_place_and_live_refresh_shows_new_ones(
    open_page, admin, receiver
):  # fmt: skip
    make_subscription(admin.tenant_id, receiver.url())
    _publish(admin.tenant_id, "invoice.paid")
    _publish(admin.tenant_id, "customer.created")
    page = open_page()
    sign_in(page, admin)
    page.goto("/deliveries")
    rows = page.locator("#delivery-results tbody tr")
    expect(rows).to_have_count(2)
    page.evaluate("window.__notReloaded = true")

    page.get_by_label("Event type").select_option("invoice.paid")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("invoice.paid")
    expect(page).to_have_url(re.compile(r"/deliveries\?event_type=invoice\.paid$"))
    assert page.evaluate("window.__notReloaded") is True  # swapped by HTMX, not reloaded

    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#delivery-results")).to_contain_text("No deliveries match")
    page.get_by_label("Status").select_option("")

    page.get_by_label("Live refresh").check()
    _publish(admin.tenant_id, "invoice.paid")
    expect(rows).to_have_count(2, timeout=12000)
    assert page.evaluate("window.__notReloaded") is True
