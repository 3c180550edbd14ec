"""Every portal page fits a 375 px wide phone screen without sideways scrolling."""

from __future__ import annotations

from sqlalchemy import select

from dispatcher import publish
from portal.extensions import db
from portal.models import Delivery
from tests.browser.conftest import screenshot, sign_in
from tests.factories import make_subscription

PHONE = {"width": 375, "height": 740}


def test_pages_fit_a_phone_screen(open_page, admin, receiver):
    sub, _ = make_subscription(
        admin.tenant_id,
        receiver.url("/a-rather-long-path/for-webhooks/that-could-overflow-a-phone"),
        description="Billing service",
        headers={"X-Very-Long-Header-Name": "a-value-that-is-long-enough-to-wrap-" * 3},
    )
    publish("invoice.paid", {"invoice_id": "inv_1", "amount_paid": 5}, tenant_id=admin.tenant_id)
    db.session.commit()
    delivery_id = db.session.scalar(select(Delivery.id))
    page = open_page(**PHONE)
    sign_in(page, admin)
    for path in (
        "/",
        "/endpoints",
        "/endpoints/new",
        f"/endpoints/{sub.id}",
        "/deliveries",
        f"/deliveries/{delivery_id}",
        "/event-types",
        "/api-keys",
    ):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide"
        labels = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter(el => el.type !== 'hidden' && !el.labels.length
                         && !el.getAttribute('aria-label'))
                 .map(el => el.name || el.id)"""
        )
        assert labels == [], f"{path} has unlabelled fields: {labels}"
        if path == f"/endpoints/{sub.id}":
            screenshot(page, "endpoint-phone")
