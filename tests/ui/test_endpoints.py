"""Endpoints in the portal: create/edit with inline errors, secret, test events, on/off, recover."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select
from standardwebhooks import Webhook

from dispatcher import clock, publish
from portal.extensions import db
from portal.models import Delivery, Subscription
from portal.services import subscriptions as subscription_service
from tests.factories import make_subscription
from tests.support import configure
from tests.ui.conftest import Portal, make_admin, sign_in


def _endpoint(tenant_id: str) -> Subscription:
    db.session.expire_all()
    return db.session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))


def test_create_endpoint_with_two_event_types(portal, receiver):
    response = portal.post(
        "/endpoints/new",
        {
            "url": receiver.url("/hook"),
            "description": "Billing service",
            "events": ["invoice.created", "payment.succeeded"],
            "headers": "X-Team: billing\n\nX-Env: test",
        },
    )
    assert response.status_code == 302
    endpoint = _endpoint(portal.admin.tenant_id)
    assert response.headers["Location"] == f"/endpoints/{endpoint.id}"
    assert endpoint.events == ["invoice.created", "payment.succeeded"]
    assert endpoint.headers == {"X-Team": "billing", "X-Env": "test"}
    page = portal.get(response.headers["Location"]).get_data(as_text=True)
    assert "Endpoint created." in page
    assert receiver.url("/hook") in page
    assert "whsec_••" in page  # masked until revealed


def test_new_endpoint_form_lists_grouped_types_with_wildcards(portal):
    page = portal.get("/endpoints/new").get_data(as_text=True)
    assert '<label for="url">Endpoint URL</label>' in page
    assert 'value="*"' in page
    assert 'value="invoice.*"' in page
    assert "Billing — invoices" in page
    assert 'value="invoice.created"' in page


def test_whole_group_and_everything_are_saved_as_wildcards(portal, receiver):
    portal.post("/endpoints/new", {"url": receiver.url(), "events": ["invoice.*", "*"]})
    assert _endpoint(portal.admin.tenant_id).events == ["invoice.*", "*"]


def test_refused_url_is_explained_next_to_the_field(app, portal):
    configure(app, HOOKLINE_ALLOW_PRIVATE_TARGETS=False)
    response = portal.post(
        "/endpoints/new", {"url": "http://169.254.169.254/latest", "events": ["*"]}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    field = page[page.index('<div class="field has-error">') :]
    assert 'id="url"' in field[:600]
    assert '<p class="error">' in field[:900]
    assert _endpoint(portal.admin.tenant_id) is None
    assert 'value="http://169.254.169.254/latest"' in page  # what was typed is kept


def test_missing_event_types_and_bad_headers_are_shown_inline(portal, receiver):
    response = portal.post("/endpoints/new", {"url": receiver.url(), "events": []})
    assert response.status_code == 400
    assert "choose at least one event type" in response.get_data(as_text=True)
    response = portal.post(
        "/endpoints/new", {"url": receiver.url(), "events": ["*"], "headers": "no colon here"}
    )
    assert response.status_code == 400
    assert "line 1: write each header as Name: value" in response.get_data(as_text=True)
    response = portal.post(
        "/endpoints/new",
        {"url": receiver.url(), "events": ["*"], "headers": "webhook-signature: forged"},
    )
    assert "the webhook-signature header is set by Hookline" in response.get_data(as_text=True)
    assert _endpoint(portal.admin.tenant_id) is None


def test_edit_changes_url_filter_and_headers(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url("/a"), ["invoice.created"])
    form = portal.get(f"/endpoints/{sub.id}/edit").get_data(as_text=True)
    assert re.search(r'value="invoice.created"[^>]* checked>', form)
    assert not re.search(r'value="invoice.paid"[^>]* checked>', form)
    response = portal.post(
        f"/endpoints/{sub.id}/edit",
        {"url": receiver.url("/b"), "events": ["payment.*"], "headers": "X-A: 1"},
    )
    assert response.status_code == 302
    endpoint = _endpoint(portal.admin.tenant_id)
    assert (endpoint.url, endpoint.events, endpoint.headers) == (
        receiver.url("/b"),
        ["payment.*"],
        {"X-A": "1"},
    )


def test_reveal_shows_the_secret_in_place_and_is_never_cached(portal, receiver):
    sub, secret = make_subscription(portal.admin.tenant_id, receiver.url())
    assert secret not in portal.get(f"/endpoints/{sub.id}").get_data(as_text=True)
    partial = portal.get(f"/endpoints/{sub.id}/secret", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert secret in body
    assert "<html" not in body
    assert partial.headers["Cache-Control"] == "no-store"
    full = portal.get(f"/endpoints/{sub.id}/secret")
    assert "<html" in full.get_data(as_text=True)
    assert secret in full.get_data(as_text=True)


def test_rotate_makes_a_new_secret_and_keeps_the_old_one_for_the_grace(portal, receiver):
    sub, old = make_subscription(portal.admin.tenant_id, receiver.url())
    response = portal.post(f"/endpoints/{sub.id}/rotate", {"grace": "3600"}, htmx=True)
    body = response.get_data(as_text=True)
    new = re.search(r"<code class=\"secret\" data-secret>(whsec_[^<]+)</code>", body).group(1)
    assert new != old
    assert "The previous secret keeps signing until" in body
    db.session.expire_all()
    assert subscription_service.reveal_secret(portal.admin.tenant_id, sub.id) == new


def test_rotate_with_an_unknown_grace_choice_is_refused(portal, receiver):
    sub, old = make_subscription(portal.admin.tenant_id, receiver.url())
    assert portal.post(f"/endpoints/{sub.id}/rotate", {"grace": "999999999"}).status_code == 400
    db.session.expire_all()
    assert subscription_service.reveal_secret(portal.admin.tenant_id, sub.id) == old


def test_test_event_result_appears_in_place(portal, receiver, run_worker):
    sub, secret = make_subscription(portal.admin.tenant_id, receiver.url(), ["invoice.created"])
    response = portal.post(
        f"/endpoints/{sub.id}/test", {"event_type": "invoice.created"}, htmx=True
    )
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert "pending" in body
    poll = re.search(r'hx-get="([^"]+)" hx-trigger="load delay', body).group(1)
    run_worker()
    (got,) = receiver.wait_for(1)
    Webhook(secret).verify(got.body, got.headers)
    assert got.json["type"] == "invoice.created"
    result = portal.get(poll, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "succeeded" in result
    assert "hx-trigger" not in result  # polling stops once the delivery is finished


def test_test_event_without_javascript_goes_to_the_delivery(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    response = portal.post(f"/endpoints/{sub.id}/test", {"event_type": "webhook.test"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/deliveries/dlv_")


def test_disable_and_enable(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    response = portal.post(f"/endpoints/{sub.id}/disable")
    assert response.status_code == 302
    page = portal.get(f"/endpoints/{sub.id}").get_data(as_text=True)
    assert "This endpoint is disabled" in page
    assert "Disabled by an admin." in page
    assert _endpoint(portal.admin.tenant_id).is_active is False
    portal.post(f"/endpoints/{sub.id}/enable")
    assert _endpoint(portal.admin.tenant_id).is_active is True


def test_recover_requeues_failed_deliveries_since_the_chosen_time(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    publish("invoice.created", {"invoice_id": "inv_1"}, tenant_id=portal.admin.tenant_id)
    db.session.commit()
    delivery = db.session.scalar(select(Delivery))
    delivery.status = "failed"
    db.session.commit()
    since = (clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = portal.post(f"/endpoints/{sub.id}/recover", {"since": since})
    assert response.status_code == 302
    page = portal.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 failed delivery queued to be sent again." in page
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).status == "pending"


def test_delete_removes_the_endpoint(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    response = portal.post(f"/endpoints/{sub.id}/delete")
    assert response.headers["Location"] == "/endpoints"
    assert _endpoint(portal.admin.tenant_id) is None


def test_list_shows_status_and_an_empty_state(portal, receiver):
    assert "No endpoints yet" in portal.get("/endpoints").get_data(as_text=True)
    make_subscription(portal.admin.tenant_id, receiver.url("/listed"))
    page = portal.get("/endpoints").get_data(as_text=True)
    assert receiver.url("/listed") in page
    assert '<span class="badge badge-healthy">healthy</span>' in page


def test_another_tenants_endpoint_is_404_everywhere(app, client, receiver):
    owner = make_admin("Owner", "owner@a.test")
    sub, _ = make_subscription(owner.tenant_id, receiver.url())
    intruder = make_admin("Intruder", "intruder@b.test")
    sign_in(client, intruder)
    portal = Portal(client, intruder)
    for path in (
        f"/endpoints/{sub.id}",
        f"/endpoints/{sub.id}/edit",
        f"/endpoints/{sub.id}/secret",
    ):
        assert portal.get(path).status_code == 404, path
    for action in ("rotate", "test", "disable", "enable", "recover", "delete", "edit"):
        data = {"grace": "0", "event_type": "webhook.test", "since": "2020-01-01T00:00"}
        data.update({"url": "https://example.com/x", "events": ["*"]})
        assert portal.post(f"/endpoints/{sub.id}/{action}", data).status_code == 404, action
    db.session.expire_all()
    assert db.session.get(Subscription, sub.id).is_active is True


def test_hostile_description_and_headers_are_escaped(portal, receiver):
    hostile = "<script>alert('x')</script>"
    make_subscription(
        portal.admin.tenant_id,
        receiver.url(),
        description=hostile,
        headers={"X-Evil": hostile},
    )
    sub = _endpoint(portal.admin.tenant_id)
    for path in ("/endpoints", f"/endpoints/{sub.id}", f"/endpoints/{sub.id}/edit"):
        page = portal.get(path).get_data(as_text=True)
        assert hostile not in page, path
        assert "&lt;script&gt;" in page, path
