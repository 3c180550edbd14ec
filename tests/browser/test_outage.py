"""In the browser: an outage met by an HTMX request shows the "temporarily unavailable" page's
message in place, rather than a click that silently does nothing."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy.exc import OperationalError

from portal.services import subscriptions
from tests.browser.conftest import sign_in
from tests.factories import make_subscription


def test_an_htmx_action_during_an_outage_shows_that_hookline_is_unavailable(
    open_page, admin, receiver, monkeypatch
):
    sub, _ = make_subscription(admin.tenant_id, receiver.url())
    page = open_page(expect_statuses=(503,))
    sign_in(page, admin)
    page.goto(f"/endpoints/{sub.id}")

    def database_gone(*args, **kwargs):
        raise OperationalError(
            "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
        )

    monkeypatch.setattr(subscriptions, "send_test", database_gone)
    page.get_by_role("button", name="Send test event").click()
    main = page.locator("#main")
    expect(main).to_contain_text("Hookline is temporarily unavailable")
    expect(main).to_contain_text("nothing was changed")
