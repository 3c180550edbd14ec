"""The event-type catalog (examples, search, custom types) and API keys (shown once, revoke)."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiKey
from portal.services import accounts
from tests.ui.conftest import Portal, make_admin, sign_in


def test_catalog_shows_groups_descriptions_and_pretty_examples(portal):
    page = portal.get("/event-types").get_data(as_text=True)
    assert "Billing — invoices" in page
    assert 'id="type-invoice.created"' in page
    assert "&#34;invoice_id&#34;: " in page  # indented JSON, escaped
    assert "webhook.test" in page


def test_catalog_search_without_javascript(portal):
    page = portal.get("/event-types?q=refund").get_data(as_text=True)
    assert "payment.refunded" in page
    assert "invoice.created" not in page
    empty = portal.get("/event-types?q=zzzz-nothing").get_data(as_text=True)
    assert "No event type matches" in empty


def test_custom_type_can_be_added_and_archived(portal):
    response = portal.post(
        "/event-types",
        {"name": "order.shipped", "description": "An order left", "example": '{"order": 1}'},
    )
    assert response.status_code == 302
    page = portal.get("/event-types").get_data(as_text=True)
    assert 'id="type-order.shipped"' in page
    picker = portal.get("/endpoints/new").get_data(as_text=True)
    assert 'value="order.shipped"' in picker
    portal.post("/event-types/order.shipped/archive")
    page = portal.get("/event-types").get_data(as_text=True)
    assert "Event type order.shipped archived." in page
    assert 'id="type-order.shipped"' not in page


def test_custom_type_errors_are_shown_inline(portal):
    bad_json = portal.post("/event-types", {"name": "order.shipped", "example": "{nope"})
    assert bad_json.status_code == 400
    assert "The example is not valid JSON" in bad_json.get_data(as_text=True)
    reserved = portal.post("/event-types", {"name": "webhook.mine"})
    assert "reserved for Hookline" in reserved.get_data(as_text=True)
    standard = portal.post("/event-types/invoice.created/archive")
    page = portal.get(standard.headers["Location"]).get_data(as_text=True)
    assert "standard event types cannot be deleted" in page


def test_new_api_key_is_shown_once_and_works(portal):
    response = portal.post("/api-keys", {"name": "billing-service"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    key = re.search(r"<code class=\"secret\" data-new-key>(hl_[^<]+)</code>", response.text).group(
        1
    )
    assert accounts.api_key_for(key) is not None
    again = portal.get("/api-keys").get_data(as_text=True)
    assert key not in again
    assert key[:10] in again
    assert "billing-service" in again


def test_revoked_key_stops_working(portal):
    _, key = accounts.create_api_key(portal.admin.tenant_id, "old")
    db.session.commit()
    row = db.session.scalar(select(ApiKey))
    response = portal.post(f"/api-keys/{row.id}/revoke")
    assert response.status_code == 302
    assert "API key old revoked." in portal.get("/api-keys").get_data(as_text=True)
    db.session.expire_all()
    assert accounts.api_key_for(key) is None


def test_key_without_a_name_is_refused_inline(portal):
    response = portal.post("/api-keys", {"name": ""})
    assert response.status_code == 400
    assert "This field is required." in response.get_data(as_text=True)


def test_another_tenants_key_cannot_be_revoked(client, app):
    owner = make_admin("Owner", "owner@a.test")
    _, key = accounts.create_api_key(owner.tenant_id, "theirs")
    db.session.commit()
    row = db.session.scalar(select(ApiKey))
    intruder = make_admin("Intruder", "intruder@b.test")
    sign_in(client, intruder)
    portal = Portal(client, intruder)
    assert "theirs" not in portal.get("/api-keys").get_data(as_text=True)
    assert portal.post(f"/api-keys/{row.id}/revoke").status_code == 404
    db.session.expire_all()
    assert accounts.api_key_for(key) is not None
