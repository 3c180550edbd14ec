"""The strict CSP in a real browser: every portal page loads, and HTMX works, with no violation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from dispatcher import publish
from portal.extensions import db
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer, require_browser, sign_in
from tests.factories import make_subscription
from tests.ui.conftest import make_admin

pytestmark = pytest.mark.browser

# Runs before any page script; CSP does not apply to scripts the browser driver injects.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
                    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


def _visit_under_the_csp(base_url: str, admin, subscription_id: str, secret: str) -> dict:
    """Drive Chromium through the portal; returns what the browser reported."""
    from playwright.sync_api import sync_playwright

    found: dict = {"violations": {}, "console": []}
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = chromium.new_context(base_url=base_url)
        context.set_default_timeout(15000)
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and found["console"].append(m.text))
        try:
            sign_in(page, admin)
            for path in ("/", "/endpoints", "/endpoints/new", f"/endpoints/{subscription_id}",
                         "/deliveries", "/event-types", "/api-keys"):  # fmt: skip
                response = page.goto(path)
                assert response is not None and response.status == 200, path
                assert "default-src 'self'" in response.headers["content-security-policy"]
                page.wait_for_load_state("networkidle")
                found["violations"][path] = page.evaluate("window.__csp")
                assert page.evaluate("typeof window.htmx") == "object", f"no htmx on {path}"

            # An HTMX swap under the policy: revealing the secret replaces the panel in place.
            page.goto(f"/endpoints/{subscription_id}")
            page.get_by_role("link", name="Reveal").click()
            page.locator("[data-secret]").wait_for()
            found["revealed"] = page.locator("[data-secret]").inner_text()
            found["url"] = page.url
            found["violations"]["reveal (HTMX)"] = page.evaluate("window.__csp")

            # A canary: an injected inline script must be blocked, and reported to the listener.
            page.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = 'window.__ran = true'; document.body.append(s); }"
            )
            page.wait_for_function("window.__csp.length > 0")
            found["canary_ran"] = page.evaluate("window.__ran")
            found["canary"] = page.evaluate("window.__csp")
        finally:
            context.close()
            chromium.close()
    return found


def test_portal_pages_and_htmx_run_under_the_csp_without_violations(app, receiver, run_worker):
    require_browser()  # a skip, or with HOOKLINE_REQUIRE_BROWSER=1 a failure
    admin = make_admin()
    subscription, secret = make_subscription(admin.tenant_id, receiver.url("/hook"))
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=admin.tenant_id)
    db.session.commit()
    run_worker()

    server = LiveServer(app).start()
    try:
        # Playwright's sync API runs its own event loop, so it gets a thread of its own: the
        # browser tests' session-wide Playwright may already be running in this one.
        with ThreadPoolExecutor(1) as pool:
            found = pool.submit(
                _visit_under_the_csp, server.url, admin, subscription.id, secret
            ).result(timeout=180)
    finally:
        server.stop()

    assert {path: seen for path, seen in found["violations"].items() if seen} == {}
    assert found["revealed"] == secret
    assert found["url"].endswith(f"/endpoints/{subscription.id}"), "HTMX did not swap in place"
    assert found["canary_ran"] is None, "an inline script ran"
    assert any(v.startswith("script-src") for v in found["canary"]), found["canary"]
    csp_errors = [e for e in found["console"] if "Content Security Policy" in e]
    assert len(csp_errors) == 1, csp_errors  # the canary's, and nothing else
