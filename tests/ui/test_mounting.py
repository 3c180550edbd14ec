"""The portal and the API mounted into a host Flask app that has its own `base.html`,
`auth/login.html` and `/static`: nothing of the host's shadows Hookline's, nor the reverse."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient

from dispatcher.connection import get_redis
from portal import Hookline, api
from portal.config import load_config
from portal.extensions import db
from tests.conftest import TEST_CONFIG
from tests.factories import make_api_key
from tests.ui.conftest import Admin, FreshContextClient, csrf_token, make_admin

PORTAL = "/webhooks"
API = "/api/v1/webhooks"
HOST_BASE = "<!doctype html><title>Host</title><body>HOST BASE {% block body %}{% endblock %}"
HOST_LOGIN = "{% extends 'base.html' %}{% block body %}HOST LOGIN{% endblock %}"
HOST_CSS = "body { color: rebeccapurple; }"
_LINKS = re.compile(r'\b(?:href|src|action|hx-get|hx-post)="([^"]*)"')


def mount_hookline(host: Flask, portal_prefix: str, api_prefix: str) -> None:
    """What create_app() does for the portal and the API, on someone else's app."""
    host.config.from_mapping(load_config(os.environ, Path(host.instance_path)))
    host.config.update(TEST_CONFIG)
    db.init_app(host)
    # Hookline's own users sign in here (no current_tenant): the standalone app's way.
    Hookline().init_app(host, db=db, url_prefix=portal_prefix, api_prefix=api_prefix)


def build_host(root: Path, portal_prefix: str = PORTAL, api_prefix: str = API) -> Flask:
    """A platform's app: its own templates and static files, then Hookline mounted in it."""
    (root / "templates" / "auth").mkdir(parents=True)
    (root / "templates" / "base.html").write_text(HOST_BASE)
    (root / "templates" / "auth" / "login.html").write_text(HOST_LOGIN)
    (root / "static").mkdir()
    (root / "static" / "app.css").write_text(HOST_CSS)
    host = Flask("host", root_path=str(root), instance_path=str(root / "instance"))

    @host.get("/")
    def home() -> str:
        return render_template("base.html")

    @host.get("/login")
    def login() -> str:
        return render_template("auth/login.html")

    mount_hookline(host, portal_prefix, api_prefix)
    host.test_client_class = FreshContextClient
    return host


@pytest.fixture
def mount(app, tmp_path) -> Iterator[Callable[..., Flask]]:
    """Build host apps (after `app` has emptied the database); close their connections after."""
    hosts: list[Flask] = []

    def build(**prefixes: str) -> Flask:
        hosts.append(build_host(tmp_path / f"host{len(hosts)}", **prefixes))
        return hosts[-1]

    yield build
    for host in hosts:
        with host.app_context():
            db.session.remove()
            db.engine.dispose()
            get_redis().close()


@pytest.fixture
def host(mount) -> Flask:
    return mount()


def links(page: str) -> list[str]:
    """Every URL a page links to, loads or posts to (in-page #fragments aside)."""
    return [url for url in _LINKS.findall(page) if not url.startswith("#")]


def sign_in(client: FlaskClient, admin: Admin):
    """Sign in through the portal's login form under the prefix."""
    token = csrf_token(client, f"{PORTAL}/login")
    data = {"email": admin.email, "password": admin.password, "csrf_token": token}
    return client.post(f"{PORTAL}/login", data=data)


def test_the_portals_login_page_wins_over_the_hosts_own(host):
    page = host.test_client().get(f"{PORTAL}/login")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Manage your webhook endpoints and deliveries." in text
    assert "HOST" not in text


def test_the_hosts_own_login_base_template_and_static_files_still_work(host):
    client = host.test_client()
    assert client.get("/").get_data(as_text=True).startswith("<!doctype html><title>Host</title>")
    assert "HOST LOGIN" in client.get("/login").get_data(as_text=True)
    css = client.get("/static/app.css")
    assert css.status_code == 200
    assert css.get_data(as_text=True) == HOST_CSS
    css.close()


def test_the_portals_static_files_are_served_under_its_prefix(host):
    client = host.test_client()
    for path in ("vendor/htmx.min.js", "js/app.js", "css/app.css", "img/favicon.svg"):
        response = client.get(f"{PORTAL}/static/{path}")
        assert response.status_code == 200, path
        response.close()
    assert client.get("/static/vendor/htmx.min.js").status_code == 404  # not the host's


def test_every_link_on_the_login_page_is_under_the_prefix(host):
    page = host.test_client().get(f"{PORTAL}/login").get_data(as_text=True)
    found = links(page)
    assert f"{PORTAL}/static/vendor/htmx.min.js" in found
    assert [url for url in found if not url.startswith(f"{PORTAL}/")] == []


def test_signing_in_under_the_prefix_stays_under_it(host):
    with host.app_context():
        admin = make_admin()
    client = host.test_client()
    away = client.get(f"{PORTAL}/endpoints")
    assert away.status_code == 302
    assert away.headers["Location"].startswith(f"{PORTAL}/login?next=")
    signed_in = sign_in(client, admin)
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == f"{PORTAL}/"
    dashboard = client.get(f"{PORTAL}/").get_data(as_text=True)
    assert "HOST" not in dashboard
    assert [url for url in links(dashboard) if not url.startswith(f"{PORTAL}/")] == []


def test_an_expired_htmx_request_is_sent_to_the_prefixed_login(host):
    response = host.test_client().get(
        f"{PORTAL}/deliveries",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://localhost{PORTAL}/deliveries"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith(f"{PORTAL}/login?next=")


def test_a_missing_portal_page_is_the_portals_404_not_the_hosts(host):
    with host.app_context():
        admin = make_admin()
    client = host.test_client()
    sign_in(client, admin)
    missing = client.get(f"{PORTAL}/endpoints/sub_doesnotexist")
    assert missing.status_code == 404
    assert "HOST" not in missing.get_data(as_text=True)


def test_the_openapi_document_lists_the_paths_under_the_given_prefix(host):
    spec = host.test_client().get(f"{API}/openapi.json").get_json()
    assert f"{API}/subscriptions" in spec["paths"]
    assert all(path.startswith(f"{API}/") for path in spec["paths"])


def test_the_api_can_be_mounted_under_another_prefix(mount):
    elsewhere = "/platform/hooks-api"
    host = mount(api_prefix=elsewhere)
    client = host.test_client()
    spec = client.get(f"{elsewhere}/openapi.json").get_json()
    assert sorted(spec["paths"]) and all(p.startswith(f"{elsewhere}/") for p in spec["paths"])
    with host.app_context():
        key = make_api_key(make_admin().tenant_id)
    listed = client.get(f"{elsewhere}/subscriptions", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    assert client.get(f"{API}/subscriptions").status_code == 404  # nothing left at the default
    missing = client.get(f"{elsewhere}/nowhere")
    assert missing.status_code == 404
    assert f"{elsewhere}/docs" in missing.get_json()["detail"]
    docs = client.get(f"{elsewhere}/docs").get_data(as_text=True)
    assert f'href="{PORTAL}/static/css/api-docs.css"' in docs
    assert f"{elsewhere}/subscriptions" in docs


def test_the_api_refuses_to_be_mounted_at_the_root():
    with pytest.raises(ValueError, match="prefix"):
        api.init_app(Flask("bare"), url_prefix="/")
