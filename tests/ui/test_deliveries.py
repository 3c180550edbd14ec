"""The delivery log and delivery detail: filters as partial swaps, paging, attempts, retry."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from dispatcher import publish
from portal.extensions import db
from portal.models import Delivery
from tests.factories import make_subscription
from tests.receiver import Reply
from tests.support import configure
from tests.ui.conftest import Portal, make_admin, sign_in

HOSTILE = "<script>alert('pwned')</script>"


def _publish(tenant_id: str, event_type: str = "invoice.created", **data) -> None:
    publish(event_type, data or {"invoice_id": "inv_1"}, tenant_id=tenant_id)
    db.session.commit()


def _deliveries() -> list[Delivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(Delivery).order_by(Delivery.id)))


def test_log_lists_deliveries_and_has_an_empty_state(portal, receiver):
    assert "No deliveries yet" in portal.get("/deliveries").get_data(as_text=True)
    make_subscription(portal.admin.tenant_id, receiver.url())
    _publish(portal.admin.tenant_id)
    page = portal.get("/deliveries").get_data(as_text=True)
    (delivery,) = _deliveries()
    assert f"/deliveries/{delivery.id}" in page
    assert "invoice.created" in page
    assert "badge-pending" in page


def test_filters_swap_only_the_results_for_htmx(portal, receiver, run_worker):
    receiver.script("/bad", default=Reply(status=500))
    good, _ = make_subscription(portal.admin.tenant_id, receiver.url("/good"))
    make_subscription(portal.admin.tenant_id, receiver.url("/bad"))
    _publish(portal.admin.tenant_id, "invoice.created")
    _publish(portal.admin.tenant_id, "payment.succeeded", payment_id="pay_1")
    run_worker()
    partial = portal.get("/deliveries?status=succeeded", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert "<html" not in body
    assert body.strip().startswith('<section id="delivery-results"')
    assert body.count("badge-succeeded") == 2
    assert "badge-pending" not in body
    full = portal.get("/deliveries?status=succeeded").get_data(as_text=True)
    assert "<html" in full and 'id="delivery-filters"' in full
    by_type = portal.get(
        f"/deliveries?event_type=payment.succeeded&endpoint_id={good.id}",
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert by_type.count("/deliveries/dlv_") == 1
    none = portal.get("/deliveries?status=cancelled", headers={"HX-Request": "true"})
    assert "No deliveries match" in none.get_data(as_text=True)
    from_form = portal.get(
        "/deliveries?status=failed&endpoint_id=&event_type=&since=&until=",
        headers={"HX-Request": "true", "HX-Trigger": "delivery-filters"},
    )
    assert from_form.headers["HX-Push-Url"] == "/deliveries?status=failed"


def test_cursor_paging_walks_older_deliveries(portal, receiver, monkeypatch):
    monkeypatch.setattr("portal.ui.deliveries.PAGE_SIZE", 2)
    make_subscription(portal.admin.tenant_id, receiver.url())
    for number in range(5):
        _publish(portal.admin.tenant_id, invoice_id=f"inv_{number}")
    ids = [d.id for d in reversed(_deliveries())]
    seen: list[str] = []
    path = "/deliveries"
    while path:
        body = portal.get(path, headers={"HX-Request": "true"}).get_data(as_text=True)
        seen += [i for i in re.findall(r'href="/deliveries/(dlv_\w+)"', body) if i not in seen]
        older = re.search(r'href="(/deliveries\?cursor=[^"]+)"[^>]*>Older', body)
        path = older.group(1).replace("&amp;", "&") if older else None
    assert seen == ids


def test_bad_filters_and_cursors_explain_themselves(portal):
    body = portal.get("/deliveries?since=yesterday&status=succeeded").get_data(as_text=True)
    assert "From must be a date and time" in body
    response = portal.get("/deliveries?status=exploded")
    assert response.status_code == 200
    assert "status must be one of" in response.get_data(as_text=True)


def test_detail_shows_each_attempt_with_escaped_pretty_response(app, portal, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script(
        "/hook",
        Reply(
            status=500,
            body=json.dumps({"error": HOSTILE, "code": 42}).encode(),
            headers={"Content-Type": "application/json", "X-Reason": HOSTILE},
        ),
    )
    make_subscription(portal.admin.tenant_id, receiver.url("/hook"))
    _publish(portal.admin.tenant_id, invoice_id=f"inv_{HOSTILE}")
    run_worker()
    (delivery,) = _deliveries()
    assert delivery.status == "failed"
    page = portal.get(f"/deliveries/{delivery.id}").get_data(as_text=True)
    assert HOSTILE not in page
    assert "Attempt 1" in page
    assert 'code-bad">500' in page
    # pretty-printed on the server, then escaped by Jinja
    assert "&#34;error&#34;: &#34;&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;&#34;" in page
    assert "&#34;code&#34;: 42" in page
    assert "webhook-signature" in page  # the request headers are shown
    assert "X-Reason" in page


def test_truncated_response_body_is_marked(app, portal, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/big", Reply(status=200, body=b"x" * 20000))
    make_subscription(portal.admin.tenant_id, receiver.url("/big"))
    _publish(portal.admin.tenant_id)
    run_worker()
    (delivery,) = _deliveries()
    page = portal.get(f"/deliveries/{delivery.id}").get_data(as_text=True)
    assert "truncated to 16 KiB" in page


def test_retry_queues_a_manual_attempt_and_the_detail_polls(app, portal, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/hook", Reply(status=503, body=b"down"), default=Reply(status=200))
    make_subscription(portal.admin.tenant_id, receiver.url("/hook"))
    _publish(portal.admin.tenant_id)
    run_worker()
    (delivery,) = _deliveries()
    assert delivery.status == "failed"
    response = portal.post(f"/deliveries/{delivery.id}/retry", htmx=True)
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert 'hx-trigger="every 2s"' in body
    run_worker()
    (delivery,) = _deliveries()
    assert delivery.status == "succeeded"
    done = portal.get(f"/deliveries/{delivery.id}", headers={"HX-Request": "true"})
    text = done.get_data(as_text=True)
    assert "Attempt 2" in text and "manual" in text
    assert "every 2s" not in text


def test_retry_on_a_disabled_endpoint_says_why(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    _publish(portal.admin.tenant_id)
    (delivery,) = _deliveries()
    portal.post(f"/endpoints/{sub.id}/disable")
    body = portal.post(f"/deliveries/{delivery.id}/retry", htmx=True).get_data(as_text=True)
    assert "enable it before retrying" in body


def test_another_tenants_delivery_is_404(client, receiver, app):
    owner = make_admin("Owner", "owner@a.test")
    make_subscription(owner.tenant_id, receiver.url())
    _publish(owner.tenant_id)
    (delivery,) = _deliveries()
    intruder = make_admin("Intruder", "intruder@b.test")
    sign_in(client, intruder)
    portal = Portal(client, intruder)
    assert portal.get(f"/deliveries/{delivery.id}").status_code == 404
    assert portal.post(f"/deliveries/{delivery.id}/retry").status_code == 404
    listing = portal.get("/deliveries").get_data(as_text=True)
    assert delivery.id not in listing
