"""The tenant admin's whole journey in a real browser, against a real worker and receiver."""

from __future__ import annotations

import json

from playwright.sync_api import expect
from sqlalchemy import select
from standardwebhooks import Webhook

from dispatcher import publish
from portal.extensions import db
from portal.models import EventType
from tests.browser.conftest import screenshot, sign_in
from tests.browser.traffic import publish_day_of_traffic
from tests.receiver import Reply

HOSTILE = "<script>window.__pwned = 1; alert('pwned')</script>"


def _example(name: str) -> dict:
    return db.session.scalar(select(EventType.example).where(EventType.name == name))


def test_admin_journey_from_login_to_disable(
    open_page, admin, receiver, worker, monkeypatch
):  # fmt: skip
    publish_day_of_traffic(admin.tenant_id, receiver, monkeypatch)
    page = open_page()

    # Log in.
    page.goto("/endpoints")
    expect(page).to_have_url(f"{page.url.split('/login')[0]}/login?next=%2Fendpoints")
    sign_in(page, admin)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Create an endpoint at the loopback receiver with two event types.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Endpoints").click()
    page.get_by_role("link", name="Add endpoint").click()
    page.get_by_label("Endpoint URL").fill(receiver.url("/hook"))
    page.get_by_label("Description", exact=True).fill("Billing service")
    search = page.get_by_placeholder("Search event types…")
    search.fill("invoice.created")
    page.locator('input[value="invoice.created"]').check()
    search.fill("payment.succeeded")
    page.locator('input[value="payment.succeeded"]').check()
    page.get_by_label("Custom headers").fill("X-Team: billing")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator(".flash-success")).to_contain_text("Endpoint created")
    endpoint_path = page.url.removeprefix(page.url.split("/endpoints/")[0])
    expect(page.locator("h1")).to_have_text(receiver.url("/hook"))

    # Send a test event and see "succeeded" appear in place.
    page.get_by_label("Event type").select_option("webhook.test")
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#test-result .badge")).to_have_text("succeeded", timeout=20000)
    assert page.url.endswith(endpoint_path)  # no navigation: the result was swapped in
    (test_request,) = receiver.wait_for(1, "/hook")
    assert test_request.json["type"] == "webhook.test"

    # Reveal, then rotate the secret with a grace period.
    page.get_by_role("link", name="Reveal").click()
    old_secret = page.locator("#secret-panel [data-secret]").inner_text()
    assert old_secret.startswith("whsec_")
    page.get_by_text("Rotate secret…").click()
    page.get_by_label("Keep the current secret signing for").select_option("86400")
    page.get_by_role("button", name="Yes, rotate the secret").click()
    expect(page.locator("#secret-panel")).to_contain_text("previous secret keeps signing until")
    new_secret = page.locator("#secret-panel [data-secret]").inner_text()
    assert new_secret.startswith("whsec_") and new_secret != old_secret

    # Publish: the delivery carries two signatures, one per valid secret.
    publish("invoice.created", _example("invoice.created"), tenant_id=admin.tenant_id)
    db.session.commit()
    signed = receiver.wait_for(2, "/hook")[1]
    Webhook(old_secret).verify(signed.body, signed.headers)
    Webhook(new_secret).verify(signed.body, signed.headers)
    page.goto(endpoint_path)
    page.locator("table").get_by_role("link", name="invoice.created").click()
    expect(page.locator("#delivery-detail h1 .badge")).to_have_text("succeeded")
    signature_row = page.locator("table.kv tr").filter(
        has=page.get_by_role("rowheader", name="webhook-signature", exact=True)
    )
    signatures = signature_row.locator("td").inner_text().split()
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)

    # The receiver fails: the failure and its (hostile) response body show, escaped.
    failure = json.dumps({"error": "database unavailable", "detail": HOSTILE}).encode()
    receiver.script(
        "/hook",
        default=Reply(status=500, body=failure, headers={"Content-Type": "application/json"}),
    )
    publish("payment.succeeded", _example("payment.succeeded"), tenant_id=admin.tenant_id)
    db.session.commit()
    page.goto(endpoint_path)
    page.locator("table").get_by_role("link", name="payment.succeeded").click()
    expect(page.locator("#delivery-detail h1 .badge")).to_have_text("failed", timeout=20000)
    expect(page.locator("#attempt-2")).to_contain_text("500")
    body = page.locator("#attempt-2 .response-body")
    expect(body).to_contain_text('"detail": "<script>window.__pwned = 1;')
    expect(body).to_contain_text('"error": "database unavailable"')
    assert page.evaluate("window.__pwned") is None

    # Retry once the receiver is back: a manual attempt, and the page updates itself.
    receiver.script("/hook", default=Reply(status=204, body=b""))
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#delivery-detail h1 .badge")).to_have_text("succeeded", timeout=20000)
    expect(page.locator("#attempt-3")).to_contain_text("manual")
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "delivery-detail")

    # The endpoint page with a fresh test result, then the dashboard.
    page.goto(endpoint_path)
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#test-result .badge")).to_have_text("succeeded", timeout=20000)
    screenshot(page, "endpoint")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator(".chart svg")).to_be_visible()
    expect(page.get_by_role("link", name=receiver.url("/crm"))).to_be_visible()
    screenshot(page, "dashboard")

    # Disable: the banner says so and the dashboard lists it.
    page.goto(endpoint_path)
    page.get_by_role("button", name="Disable").click()
    expect(page.locator(".banner")).to_contain_text("This endpoint is disabled")
    expect(page.locator(".banner")).to_contain_text("Disabled by an admin.")
    page.goto("/")
    disabled = page.locator("section", has=page.get_by_role("heading", name="Disabled endpoints"))
    expect(disabled).to_contain_text(receiver.url("/hook"))
