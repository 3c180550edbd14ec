"""Portal fixtures: a tenant admin, a signed-in test client, and CSRF-aware form posting."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient

from portal.extensions import db
from portal.services import accounts
from tests.factories import make_tenant

PASSWORD = "correct horse battery"
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class Admin:
    tenant_id: str
    email: str
    password: str = PASSWORD


def make_admin(tenant_name: str = "Acme", email: str = "admin@acme.test") -> Admin:
    tenant = make_tenant(tenant_name)
    accounts.create_user(tenant.id, email, PASSWORD)
    db.session.commit()
    return Admin(tenant.id, email)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The token the portal put in a page's <meta name="csrf-token">."""
    page = client.get(path).get_data(as_text=True)
    match = _META.search(page)
    assert match, f"no csrf meta tag on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, admin: Admin):
    return client.post(
        "/login",
        data={"email": admin.email, "password": admin.password, "csrf_token": csrf_token(client)},
    )


class Portal:
    """A signed-in client that adds the CSRF token to every POST, like the browser does."""

    def __init__(self, client: FlaskClient, admin: Admin) -> None:
        self.client = client
        self.admin = admin

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, htmx: bool = False, **kwargs):
        data = dict(data or {})
        headers = dict(kwargs.pop("headers", {}))
        token = csrf_token(self.client, "/")
        if htmx:
            headers.update({"HX-Request": "true", "X-CSRFToken": token})
        else:
            data.setdefault("csrf_token", token)
        return self.client.post(path, data=data, headers=headers, **kwargs)


class FreshContextClient(FlaskClient):
    """Runs each request in its own app context, as a server does.

    The `app` fixture keeps one app context open for the whole test, and Flask reuses it for
    requests, so `g` (where Flask-WTF and Flask-Login cache the CSRF token and the user) would
    otherwise leak from one request into the next.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app) -> FlaskClient:
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture
def admin(app) -> Admin:
    return make_admin()


@pytest.fixture
def portal(app, client, admin) -> Portal:
    response = sign_in(client, admin)
    assert response.status_code == 302, response.get_data(as_text=True)
    return Portal(client, admin)
