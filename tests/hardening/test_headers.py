"""Security headers on every kind of response, cookie flags, and pages a strict CSP can render."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

from dispatcher import publish
from portal import create_app
from portal.extensions import db
from portal.security import CONTENT_SECURITY_POLICY
from tests.factories import make_api_key, make_subscription
from tests.hardening.conftest import call_api, close_app
from tests.ui.conftest import PASSWORD, csrf_token, make_admin, sign_in

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def assert_security_headers(response, production: bool = False) -> None:
    for name, expected in EXPECTED.items():
        assert response.headers.get(name) == expected, f"{name} on {response.request.path}"
    hsts = response.headers.get("Strict-Transport-Security")
    if production:
        assert hsts is not None and "max-age=31536000" in hsts
    else:
        assert hsts is None, "HSTS outside production would pin localhost to HTTPS"


def test_csp_is_the_strict_policy_without_inline_script():
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert EXPECTED["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_portal_pages_carry_the_headers(app, client):
    admin = make_admin()
    assert_security_headers(client.get("/login"))
    sign_in(client, admin)
    for path in ("/", "/endpoints", "/deliveries", "/event-types", "/api-keys"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_security_headers(response)
        assert response.headers["Cache-Control"] == "no-store"


def test_api_answers_and_problems_carry_the_headers(app, client):
    admin = make_admin()
    key = make_api_key(admin.tenant_id)
    ok = call_api(client, key, "GET", "/event-types")
    assert ok.status_code == 200
    assert_security_headers(ok)
    unauthorized = client.get("/api/v1/webhooks/subscriptions")
    assert unauthorized.status_code == 401
    assert_security_headers(unauthorized)
    missing = call_api(client, key, "GET", "/subscriptions/sub_doesnotexist")
    assert missing.status_code == 404
    assert_security_headers(missing)


def test_health_metrics_static_and_errors_carry_the_headers(app, client):
    for path, status in (
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/static/js/app.js", 200),
        ("/no-such-page", 404),
    ):
        response = client.get(path)
        assert response.status_code == status, path
        assert_security_headers(response)
        response.close()


class HttpsClient(FlaskClient):
    """Requests arrive over HTTPS, as production serves them behind TLS."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", "https://hookline.example")
        return super().open(*args, **kwargs)


@pytest.fixture
def production_app(app, monkeypatch):
    """The same database and Redis, configured as production (HTTPS, secure cookies)."""
    monkeypatch.setenv("HOOKLINE_ENV", "production")
    monkeypatch.setenv("HOOKLINE_ENCRYPTION_KEY", app.config["HOOKLINE_ENCRYPTION_KEY"])
    production = create_app({"TESTING": True})
    assert production.config["HOOKLINE_ENV"] == "production"
    production.test_client_class = HttpsClient
    yield production
    close_app(production)


def test_production_adds_hsts_everywhere(production_app):
    client = production_app.test_client()
    for path in ("/healthz", "/login", "/metrics", "/api/v1/webhooks/event-types"):
        assert_security_headers(client.get(path), production=True)


def test_production_session_cookie_is_secure_httponly_and_samesite(production_app):
    admin = make_admin()
    client = production_app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
        headers={"Referer": "https://hookline.example/login"},  # Flask-WTF's HTTPS check
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert "; Secure" in cookie
    assert "; HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_development_session_cookie_is_httponly_samesite_but_not_secure(app, client):
    response = sign_in(client, make_admin())
    cookie = response.headers["Set-Cookie"]
    assert "; HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http://localhost must still work in development


def test_production_refuses_to_start_without_its_keys(monkeypatch, test_env):
    from portal.config import ConfigError

    monkeypatch.setenv("HOOKLINE_ENV", "production")
    monkeypatch.setenv("HOOKLINE_ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"TESTING": True})


class _InlineFinder(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style":
            self.blocked.append("<style> element")
        if tag == "script":
            self._in_script = "src" not in names
        if "style" in names:
            self.blocked.append(f"style attribute on <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.blocked.append(f"{name} handler on <{tag}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.blocked.append(f"javascript: URL in {name} of <{tag}>")
            if name.startswith("hx-on"):
                self.blocked.append(f"{name} (htmx evaluates it as inline script) on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.blocked.append(f"inline script: {data.strip()[:60]!r}")


def _blocked_by_csp(html: str) -> list[str]:
    finder = _InlineFinder()
    finder.feed(html)
    return finder.blocked


def test_every_portal_page_renders_nothing_the_csp_would_block(app, client, receiver, run_worker):
    admin = make_admin()
    subscription, _ = make_subscription(admin.tenant_id, receiver.url("/hook"))
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=admin.tenant_id)
    db.session.commit()
    run_worker()
    delivery_id = call_api(client, make_api_key(admin.tenant_id), "GET", "/deliveries").get_json()[
        "data"
    ][0]["id"]

    assert not _blocked_by_csp(client.get("/login").get_data(as_text=True))
    sign_in(client, admin)
    pages = (
        "/",
        "/endpoints",
        "/endpoints/new",
        f"/endpoints/{subscription.id}",
        "/deliveries",
        f"/deliveries/{delivery_id}",
        "/event-types",
        "/api-keys",
    )
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assert _blocked_by_csp(response.get_data(as_text=True)) == [], path
        htmx = client.get(path, headers={"HX-Request": "true"})
        assert _blocked_by_csp(htmx.get_data(as_text=True)) == [], f"{path} (HTMX partial)"


def test_templates_hold_no_inline_script_or_style():
    offenders = []
    pattern = re.compile(r"<style|\sstyle=|\son[a-z]+=|hx-on|javascript:|<script(?![^>]*\ssrc=)")
    for template in sorted((ROOT / "portal" / "templates").rglob("*.html")):
        for number, line in enumerate(template.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{template.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
