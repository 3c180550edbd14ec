"""The strict CSP in a real browser: every portal page loads, and HTMX works, with no violation."""

from __future__ import annotations

import pytest

from dispatcher import publish
from portal.extensions import db
from tests.browser.conftest import browser, portal_server, sign_in  # noqa: F401 (fixtures)
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


def test_portal_pages_and_htmx_run_under_the_csp_without_violations(
    app,
    browser,  # noqa: F811
    portal_server,  # noqa: F811
    receiver,
    run_worker,
):
    admin = make_admin()
    subscription, secret = make_subscription(admin.tenant_id, receiver.url("/hook"))
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=admin.tenant_id)
    db.session.commit()
    run_worker()

    context = browser.new_context(base_url=portal_server.url)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
    try:
        sign_in(page, admin)
        violations: dict[str, list[str]] = {}
        for path in ("/", "/endpoints", "/endpoints/new", f"/endpoints/{subscription.id}",
                     "/deliveries", "/event-types", "/api-keys"):  # fmt: skip
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            assert "default-src 'self'" in response.headers["content-security-policy"]
            page.wait_for_load_state("networkidle")
            violations[path] = page.evaluate("window.__csp")
            assert page.evaluate("typeof window.htmx") == "object", f"htmx did not run on {path}"

        # An HTMX swap under the policy: revealing the secret replaces the panel in place.
        page.goto(f"/endpoints/{subscription.id}")
        page.get_by_role("link", name="Reveal").click()
        page.locator("[data-secret]").wait_for()
        assert page.locator("[data-secret]").inner_text() == secret
        assert page.url.endswith(f"/endpoints/{subscription.id}"), "HTMX did not swap in place"
        violations["reveal (HTMX)"] = page.evaluate("window.__csp")

        # A canary: an injected inline script must be blocked, and reported to the listener.
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__ran = true'; document.body.append(s); }"
        )
        page.wait_for_function("window.__csp.length > 0")
        assert page.evaluate("window.__ran") is None, "an inline script ran"
        canary = page.evaluate("window.__csp")
    finally:
        context.close()

    assert {path: found for path, found in violations.items() if found} == {}
    assert any(v.startswith("script-src") for v in canary), canary
    csp_errors = [e for e in console_errors if "Content Security Policy" in e]
    assert len(csp_errors) == 1, csp_errors  # the canary's, and nothing else
