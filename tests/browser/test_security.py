"""In the browser: CSRF refusals, tenant isolation, and hostile text rendered as text."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from dispatcher import publish
from portal.extensions import db
from portal.models import Delivery
from tests.browser.conftest import sign_in
from tests.factories import make_subscription
from tests.ui.conftest import make_admin

HOSTILE = "<script>window.__pwned = 1; alert('pwned')</script><img src=x onerror=alert(2)>"

NO_INLINE_CODE = """() => ({
  inlineScripts: document.querySelectorAll('script:not([src])').length,
  handlers: [...document.querySelectorAll('*')].flatMap(
    el => [...el.attributes].map(a => a.name).filter(n => n.startsWith('on'))),
  pwned: window.__pwned === undefined ? null : window.__pwned,
})"""


def test_posts_without_a_csrf_token_are_refused(open_page, admin, receiver):
    sub, _ = make_subscription(admin.tenant_id, receiver.url())
    page = open_page()
    sign_in(page, admin)
    page.goto(f"/endpoints/{sub.id}")
    # A plain form post from elsewhere carries the session cookie but no token.
    forged = page.request.post(f"/endpoints/{sub.id}/disable", form={"x": "1"})
    assert forged.status == 400
    assert "Request refused" in forged.text()
    # An HTMX-style request without the header is refused too; with it, it goes through.
    status = page.evaluate(
        """async (path) => {
          const bare = await fetch(path, {method: 'POST', headers: {'HX-Request': 'true'}});
          const token = document.querySelector('meta[name="csrf-token"]').content;
          const signed = await fetch(path, {method: 'POST',
            headers: {'HX-Request': 'true', 'X-CSRFToken': token}});
          return [bare.status, signed.status];
        }""",
        f"/endpoints/{sub.id}/disable",
    )
    assert status == [400, 200]
    db.session.expire_all()
    assert sub.is_active is False  # only the signed request disabled it


def test_second_tenant_gets_404_for_the_first_tenants_pages(open_page, admin, receiver):
    sub, _ = make_subscription(admin.tenant_id, receiver.url())
    publish("invoice.paid", {"invoice_id": "inv_1", "amount_paid": 5}, tenant_id=admin.tenant_id)
    db.session.commit()
    delivery_id = db.session.scalar(select(Delivery.id))
    other = make_admin("Globex", "admin@globex.test")
    page = open_page()
    sign_in(page, other)
    for path in (
        f"/endpoints/{sub.id}",
        f"/endpoints/{sub.id}/edit",
        f"/deliveries/{delivery_id}",
    ):
        response = page.goto(path)
        assert response.status == 404, path
        expect(
            page.get_by_text("There is nothing here, or it belongs to another account.")
        ).to_be_visible()
    page.goto("/deliveries")
    expect(page.get_by_text("No deliveries yet")).to_be_visible()
    page.goto("/endpoints")
    expect(page.get_by_text(receiver.url())).to_have_count(0)


def test_hostile_description_and_headers_render_as_text(open_page, admin, receiver):
    sub, _ = make_subscription(
        admin.tenant_id, receiver.url(), description=HOSTILE, headers={"X-Note": HOSTILE}
    )
    page = open_page()
    sign_in(page, admin)
    for path in ("/endpoints", f"/endpoints/{sub.id}", f"/endpoints/{sub.id}/edit"):
        page.goto(path)
        checks = page.evaluate(NO_INLINE_CODE)
        assert checks == {"inlineScripts": 0, "handlers": [], "pwned": None}, path
    page.goto(f"/endpoints/{sub.id}")
    expect(page.locator(".head-meta")).to_contain_text(HOSTILE)
    expect(page.locator("table.kv")).to_contain_text(HOSTILE)
    page.goto(f"/endpoints/{sub.id}/edit")
    expect(page.get_by_label("Description", exact=True)).to_have_value(HOSTILE)
