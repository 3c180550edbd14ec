"""Signing in and out: hashed passwords, one failure message, throttling, CSRF on every POST."""

from __future__ import annotations

from tests.support import configure
from tests.ui.conftest import PASSWORD, csrf_token, make_admin, sign_in


def test_every_page_sends_a_signed_out_visitor_to_login(client, app):
    for path in ("/", "/endpoints", "/endpoints/new", "/deliveries", "/event-types", "/api-keys"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=")


def test_htmx_request_after_the_session_ended_redirects_the_whole_page(client, app):
    response = client.get(
        "/deliveries?status=failed",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/deliveries?x=1"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/deliveries?x%3D1"


def test_right_password_signs_in_and_lands_on_dashboard(client, admin):
    response = sign_in(client, admin)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Dashboard" in page
    assert admin.email in page


def test_session_cookie_is_httponly_and_samesite(client, admin):
    response = sign_in(client, admin)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_wrong_password_and_unknown_email_get_the_same_answer(client, admin):
    token = csrf_token(client)
    wrong = client.post(
        "/login", data={"email": admin.email, "password": "nope-nope", "csrf_token": token}
    )
    unknown = client.post(
        "/login", data={"email": "who@else.test", "password": PASSWORD, "csrf_token": token}
    )
    assert wrong.status_code == unknown.status_code == 401
    message = "That email and password do not match an account."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)


def test_repeated_failures_lock_out_that_email_even_with_the_right_password(app, client, admin):
    configure(app, HOOKLINE_LOGIN_MAX_FAILURES=3)
    token = csrf_token(client)
    for _ in range(3):
        response = client.post(
            "/login", data={"email": admin.email, "password": "bad-guess", "csrf_token": token}
        )
        assert response.status_code == 401
    blocked = sign_in(client, admin)
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.get_data(as_text=True)
    other = make_admin("Other", "other@acme.test")
    assert sign_in(client, other).status_code == 302


def test_successful_sign_in_forgets_earlier_failures(app, client, admin):
    configure(app, HOOKLINE_LOGIN_MAX_FAILURES=2)
    token = csrf_token(client)
    client.post("/login", data={"email": admin.email, "password": "bad", "csrf_token": token})
    assert sign_in(client, admin).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    token = csrf_token(client)
    client.post("/login", data={"email": admin.email, "password": "bad", "csrf_token": token})
    assert sign_in(client, admin).status_code == 302


def test_next_stays_on_this_site(client, admin):
    token = csrf_token(client)
    form = {"email": admin.email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login?next=/deliveries", data=form)
    assert response.headers["Location"] == "/deliveries"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    for hostile in ("https://evil.test/", "//evil.test/", "/\\evil.test"):
        form["csrf_token"] = csrf_token(client)
        response = client.post("/login", query_string={"next": hostile}, data=form)
        assert response.headers["Location"] == "/", hostile
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


def test_login_without_csrf_token_is_refused(client, admin):
    response = client.post("/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 400


def test_logout_is_a_post_with_a_csrf_token(portal):
    assert portal.client.get("/logout").status_code == 405
    assert portal.client.post("/logout").status_code == 400
    assert portal.client.get("/").status_code == 200
    response = portal.post("/logout")
    assert response.status_code == 302
    assert portal.client.get("/").status_code == 302


def test_state_changes_without_csrf_token_get_400(portal):
    response = portal.client.post("/endpoints/new", data={"url": "https://example.com/h"})
    assert response.status_code == 400
    assert "Request refused" in response.get_data(as_text=True)
    htmx = portal.client.post("/api-keys", data={"name": "x"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 400
