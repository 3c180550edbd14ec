"""examples/platform end to end: a host app with its own models and login embeds Hookline, and
its own views publish in their own transactions.

The example runs against the suite's database (SQLite, or PostgreSQL via DATABASE_URL) and
Redis: `flask hookline upgrade` for Hookline's tables, the host's `db.create_all()` for its
own (dropped again afterwards, so the rest of the suite never sees them), then everything
through the host's views with Flask's test client and a burst worker in this process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select
from standardwebhooks import Webhook

from dispatcher import worker
from dispatcher.connection import get_redis
from examples.platform import app as platform_app
from examples.platform import billing
from examples.platform.extensions import db
from examples.platform.models import Invoice, Organization, Payment
from portal.models import Delivery, Event, Tenant

API = "/api/v1/webhooks"
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
PASSWORD = "correct horse battery"


@pytest.fixture
def platform(app, tmp_path, monkeypatch) -> Iterator[Flask]:
    """The example app on the suite's database and Redis (`app` has just emptied both), its
    tables made the way its README says; the host's tables are dropped afterwards."""
    monkeypatch.setenv("PLATFORM_INSTANCE_PATH", str(tmp_path / "instance"))
    host = platform_app.create_app({"TESTING": True})
    result = invoke(host, "hookline", "upgrade")
    assert result.exit_code == 0, f"flask hookline upgrade: {result.output}"
    with host.app_context():
        clash = set(db.metadata.tables) & set(inspect(db.engine).get_table_names())
    # (dropping the host's tables afterwards would otherwise drop Hookline's of the same name)
    assert not clash, f"Hookline's tables take names the platform uses: {sorted(clash)}"
    result = invoke(host, "create-tables")
    assert result.exit_code == 0, f"flask create-tables: {result.output}"
    yield host
    with host.app_context():
        db.session.remove()
        db.drop_all()  # the platform's tables only: Hookline's are on a metadata of their own
        db.engine.dispose()
        get_redis().close()


def invoke(host: Flask, *args: str):
    """`flask <args>` for the host app. In the host's app context: the `app` fixture keeps the
    suite's own app's context open, and Flask's CLI would run the command in that one."""
    with host.app_context():
        return host.test_cli_runner().invoke(args=list(args))


@dataclass
class Org:
    """An organization signed up through the host's own page, with its signed-in browser."""

    id: str
    client: FlaskClient

    def form_post(self, path: str, **data: str):
        """POST a host form the way the browser does, with the token from the dashboard."""
        page = self.client.get("/dashboard").get_data(as_text=True)
        data["csrf_token"] = _FORM_TOKEN.search(page).group(1)
        return self.client.post(path, data=data)

    def api(self, method: str, path: str, **kwargs):
        """The JSON API with the host's session cookie and the portal's CSRF token."""
        page = self.client.get("/webhooks/endpoints").get_data(as_text=True)
        headers = {"X-CSRFToken": _META_TOKEN.search(page).group(1)}
        return self.client.open(f"{API}{path}", method=method, headers=headers, **kwargs)


def sign_up(host: Flask, name: str, email: str) -> Org:
    client = host.test_client()
    token = _FORM_TOKEN.search(client.get("/signup").get_data(as_text=True)).group(1)
    form = {"organization": name, "email": email, "password": PASSWORD, "csrf_token": token}
    answer = client.post("/signup", data=form)
    assert answer.status_code == 302 and answer.location == "/dashboard", answer.text
    with host.app_context():
        org_id = db.session.scalar(select(Organization.id).where(Organization.name == name))
    return Org(org_id, client)


def add_endpoint(org: Org, url: str, events: list[str]) -> dict:
    created = org.api("POST", "/subscriptions", json={"url": url, "events": events})
    assert created.status_code == 201, created.text
    return created.get_json()


def count(host: Flask, model, **where) -> int:
    with host.app_context():
        query = select(func.count()).select_from(model).filter_by(**where)
        return db.session.scalar(query)


def only_invoice(host: Flask, org: Org) -> Invoice:
    with host.app_context():
        return db.session.scalars(select(Invoice).where(Invoice.org_id == org.id)).one()


def run_worker(host: Flask) -> None:
    """A burst worker in its own app context of the host app, as `flask hookline worker`."""
    with host.app_context():
        worker.run(burst=True)


def test_invoice_created_and_paid_reach_the_endpoint_signed_with_the_hosts_tenant_id(
    platform, receiver
):
    acme = sign_up(platform, "Acme", "ada@acme.test")
    sign_up(platform, "Globex", "hank@globex.test")
    endpoint = add_endpoint(acme, receiver.url("/acme"), ["invoice.*"])

    created = acme.form_post("/invoices", customer_email="billing@customer.test", amount="129")
    assert created.status_code == 303
    invoice = only_invoice(platform, acme)
    paid = acme.form_post(f"/invoices/{invoice.id}/pay", card_number="4242 4242 4242 4242")
    assert paid.status_code == 303
    run_worker(platform)

    got = receiver.wait_for(2, "/acme")
    verified = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in got]
    bodies = {body["type"]: body for body in verified}  # sent concurrently: in either order
    assert sorted(bodies) == ["invoice.created", "invoice.paid"]
    assert {body["tenant_id"] for body in verified} == {acme.id}
    assert {body["data"]["invoice_id"] for body in verified} == {invoice.id}
    assert bodies["invoice.created"]["data"]["amount_due"] == 12900
    with platform.app_context():
        payment = db.session.scalars(select(Payment)).one()
        published = db.session.scalars(
            select(Event.type).where(Event.tenant_id == acme.id).order_by(Event.id)
        ).all()
    assert bodies["invoice.paid"]["data"]["payment_id"] == payment.id
    # The same commits published what the endpoint does not subscribe to, beside the rows.
    assert published == [
        "invoice.created",
        "email.sent",
        "payment.succeeded",
        "invoice.paid",
        "email.sent",
    ]
    assert count(platform, Event, tenant_id=acme.id) == 5
    assert len(receiver.received()) == 2  # nothing of Globex's, nothing unsubscribed


def test_a_host_view_that_fails_after_publishing_leaves_no_event_and_no_delivery(
    platform, receiver, monkeypatch
):
    acme = sign_up(platform, "Acme", "ada@acme.test")
    add_endpoint(acme, receiver.url("/acme"), ["*"])
    published: list[str] = []
    real_publish = billing.publish

    def recording_publish(event_type, data, **kwargs):
        published.append(event_type)
        return real_publish(event_type, data, **kwargs)

    monkeypatch.setattr(billing, "publish", recording_publish)

    # billing publishes invoice.created, then communications refuses the address: one rollback
    refused = acme.form_post("/invoices", customer_email="not an address", amount="50")
    assert refused.status_code == 303
    assert "Not done" in acme.client.get("/dashboard").get_data(as_text=True)
    assert published == ["invoice.created"]
    assert count(platform, Invoice) == 0
    assert count(platform, Event) == 0
    assert count(platform, Delivery) == 0
    run_worker(platform)
    assert receiver.received() == []


def test_every_service_action_publishes_its_event_type_with_its_row_change(platform):
    acme = sign_up(platform, "Acme", "ada@acme.test")
    acme.form_post("/invoices", customer_email="billing@customer.invalid", amount="10")
    first = only_invoice(platform, acme)
    acme.form_post(f"/invoices/{first.id}/pay", card_number="4000 0000 0000 0002")  # declined
    acme.form_post(f"/invoices/{first.id}/void")
    acme.form_post("/invoices", customer_email="billing@customer.test", amount="20")
    with platform.app_context():
        second = db.session.scalars(select(Invoice).where(Invoice.status == "open")).one()
    acme.form_post(f"/invoices/{second.id}/pay", card_number="4242 4242 4242 4242")
    with platform.app_context():
        payment = db.session.scalars(select(Payment).where(Payment.status == "succeeded")).one()
    acme.form_post(f"/payments/{payment.id}/refund")

    with platform.app_context():
        types = set(db.session.scalars(select(Event.type).where(Event.tenant_id == acme.id)))
        statuses = dict(db.session.execute(select(Invoice.id, Invoice.status)).all())
    assert types == {
        "invoice.created",
        "invoice.paid",
        "invoice.voided",
        "payment.succeeded",
        "payment.failed",
        "payment.refunded",
        "email.sent",
        "email.failed",
    }
    assert statuses == {first.id: "void", second.id: "paid"}


def test_sign_up_makes_the_organization_a_hookline_tenant_of_the_same_id(platform):
    acme = sign_up(platform, "Acme", "ada@acme.test")
    with platform.app_context():
        tenant = db.session.get(Tenant, acme.id)
    assert tenant is not None and tenant.name == "Acme"


def test_the_portal_without_a_host_session_sends_to_the_hosts_login_and_back(platform):
    sign_up(platform, "Acme", "ada@acme.test")
    visitor = platform.test_client()
    answer = visitor.get("/webhooks/")
    assert answer.status_code == 302
    target = urlsplit(answer.location)
    assert target.path == "/login"
    assert parse_qs(target.query)["next"] == ["/webhooks/"]

    page = visitor.get(answer.location).get_data(as_text=True)
    form = {
        "email": "ada@acme.test",
        "password": PASSWORD,
        "next": parse_qs(target.query)["next"][0],
        "csrf_token": _FORM_TOKEN.search(page).group(1),
    }
    signed_in = visitor.post("/login", data=form)
    assert signed_in.status_code == 302 and signed_in.location == "/webhooks/"
    assert visitor.get("/webhooks/").status_code == 200


def test_each_organization_sees_only_its_own_endpoints(platform, receiver):
    acme = sign_up(platform, "Acme", "ada@acme.test")
    globex = sign_up(platform, "Globex", "hank@globex.test")
    endpoint = add_endpoint(acme, receiver.url("/acme-only"), ["invoice.*"])

    listed = acme.client.get("/webhooks/endpoints")
    assert listed.status_code == 200
    assert receiver.url("/acme-only") in listed.get_data(as_text=True)
    assert acme.client.get(f"/webhooks/endpoints/{endpoint['id']}").status_code == 200

    assert receiver.url("/acme-only") not in globex.client.get("/webhooks/endpoints").text
    assert globex.client.get(f"/webhooks/endpoints/{endpoint['id']}").status_code == 404
    assert globex.api("GET", f"/subscriptions/{endpoint['id']}").status_code == 404
    assert globex.api("DELETE", f"/subscriptions/{endpoint['id']}").status_code == 404
    assert acme.api("GET", f"/subscriptions/{endpoint['id']}").status_code == 200


def test_the_host_session_api_refuses_a_change_without_the_csrf_header(platform, receiver):
    acme = sign_up(platform, "Acme", "ada@acme.test")
    body = {"url": receiver.url("/acme"), "events": ["invoice.*"]}
    refused = acme.client.post(f"{API}/subscriptions", json=body)
    # Hookline's own check (the host's app-wide CSRFProtect leaves the API to it)
    assert refused.status_code == 403, refused.text
    assert refused.get_json()["type"].endswith("/csrf")
    assert refused.get_json()["detail"].startswith("The CSRF token is missing")
    assert acme.client.get(f"{API}/subscriptions").get_json()["data"] == []


def test_hookline_api_keys_made_under_the_hosts_flask_work_beside_its_csrf_protection(
    platform, receiver
):
    acme = sign_up(platform, "Acme", "ada@acme.test")
    made = invoke(platform, "hookline", "api-keys", "create", "--tenant", acme.id)
    assert made.exit_code == 0, made.output
    bearer = {"Authorization": f"Bearer {made.output.split()[-1]}"}
    program = platform.test_client()  # no host session: the key alone
    body = {"url": receiver.url("/acme"), "events": ["invoice.*"]}
    created = program.post(f"{API}/subscriptions", json=body, headers=bearer)
    assert created.status_code == 201, created.text
    listed = program.get(f"{API}/subscriptions", headers=bearer).get_json()["data"]
    assert [row["id"] for row in listed] == [created.get_json()["id"]]
