"""Service mode: an operator provisions tenants, admins and API keys, and mints single-use portal
sign-in links; operator keys and tenant API keys never stand in for each other."""

from __future__ import annotations

import logging
import os
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from dispatcher.connection import get_redis
from portal import Hookline
from portal.api import API_PREFIX
from portal.api import operator as operator_api
from portal.api.operator import OPERATOR_PREFIX
from portal.config import ConfigError, load_config, parse_operator_keys
from portal.extensions import csrf, db, login_manager
from portal.models import ApiKey, OperatorKey, PortalLink, Tenant, User
from portal.services import operator as operator_service
from tests.api.conftest import assert_problem
from tests.api.test_docs_curl import curl_commands, operation_of
from tests.conftest import TEST_CONFIG
from tests.factories import make_subscription, make_tenant
from tests.support import configure
from tests.ui.conftest import FreshContextClient, csrf_token

CONFIGURED_KEY = "hlop_" + "c" * 40
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-api.md"


class OperatorClient:
    """The Flask test client with the operator prefix and an operator key."""

    def __init__(self, client, key: str) -> None:
        self.client = client
        self.key = key

    def request(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return self.client.open(OPERATOR_PREFIX + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)


@pytest.fixture
def browser(app):
    """A second client, a browser: each request in its own app context, as a server does."""
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture
def operator_key(app) -> str:
    _, key = operator_service.create_operator_key("platform")
    db.session.commit()
    return key


@pytest.fixture
def op(client, operator_key) -> OperatorClient:
    return OperatorClient(client, operator_key)


def _link(op: OperatorClient, tenant_id: str, **body) -> dict:
    response = op.post(f"/tenants/{tenant_id}/portal-links", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


# --- provisioning end to end ---------------------------------------------------------------------


def test_operator_provisions_a_tenant_its_admin_key_and_a_link_that_signs_in(
    app, op, client, browser
):
    created = op.post("/tenants", json={"name": "Acme", "id": "org_42"})
    assert created.status_code == 201
    assert created.get_json()["id"] == "org_42" and created.get_json()["name"] == "Acme"
    assert created.headers["Location"].endswith(f"{OPERATOR_PREFIX}/tenants/org_42")

    admin = op.post(
        "/tenants/org_42/admins", json={"email": "Ops@Acme.test", "password": "correct horse"}
    )
    assert admin.status_code == 201
    assert admin.get_json()["email"] == "ops@acme.test"
    assert "password" not in admin.get_data(as_text=True)

    key = op.post("/tenants/org_42/api-keys", json={"name": "billing"}).get_json()
    assert key["key"].startswith("hl_") and key["key"].startswith(key["prefix"])
    headers = {"Authorization": f"Bearer {key['key']}"}
    mine = client.post(
        API_PREFIX + "/subscriptions",
        json={"url": "http://127.0.0.1:9/acme-hook", "events": ["*"]},
        headers=headers,
    )
    assert mine.status_code == 201
    other = make_tenant("Other")
    make_subscription(other.id, "http://127.0.0.1:9/other-hook")

    link = _link(op, "org_42")
    assert link["url"].startswith("http://localhost/sign-in/")
    response = browser.get(_path(link["url"]))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    dashboard = browser.get("/")
    assert dashboard.status_code == 200
    page = dashboard.get_data(as_text=True)
    assert "Signed in with a link" in page and "Sign out" in page
    endpoints = browser.get("/endpoints").get_data(as_text=True)
    assert "acme-hook" in endpoints and "other-hook" not in endpoints

    # The admin made through the API signs in with the password as well.
    token = csrf_token(client)
    signed_in = client.post(
        "/login", data={"email": "ops@acme.test", "password": "correct horse", "csrf_token": token}
    )
    assert signed_in.status_code == 302


def test_provisioning_logs_ids_but_never_a_key_token_or_password(app, op, browser, caplog):
    caplog.set_level(logging.DEBUG)
    op.post("/tenants", json={"name": "Acme", "id": "org_7"})
    op.post("/tenants/org_7/admins", json={"email": "a@acme.test", "password": "s3cret-pass"})
    key = op.post("/tenants/org_7/api-keys", json={"name": "k"}).get_json()["key"]
    url = _link(op, "org_7")["url"]
    browser.get(_path(url))
    browser.get(_path(url))
    text = "\n".join(f"{record.getMessage()} {record.args!r}" for record in caplog.records)
    assert "operator opk_" in text and "created tenant org_7" in text
    assert "sign-in link lnk_" in text and "refused: used" in text
    token = url.rsplit("/", 1)[1]
    for secret in (key, key[10:30], token, token[5:25], op.key, op.key[12:30], "s3cret-pass"):
        assert secret not in text


def test_a_link_signs_in_only_once(app, op, browser, client):
    tenant = make_tenant("Acme")
    path = _path(_link(op, tenant.id)["url"])
    assert browser.get(path).status_code == 302
    again = client.get(path)  # another browser with the same link
    assert again.status_code == 410
    assert "has been used already" in again.get_data(as_text=True)
    assert 'name="password"' in again.get_data(as_text=True)  # the sign-in form
    assert client.get("/").status_code == 302  # not signed in


def test_an_expired_link_is_refused(app, op, browser, clock):
    tenant = make_tenant("Acme")
    link = _link(op, tenant.id, expires_in=60)
    clock.advance(seconds=61)
    response = browser.get(_path(link["url"]))
    assert response.status_code == 410
    assert "has expired" in response.get_data(as_text=True)
    assert browser.get("/").status_code == 302


@pytest.mark.parametrize(
    "token", ["nope", "A" * 43, "x" * 101, "%00" * 30, "a%0Ab" * 10, "\u202e" * 30]
)
def test_an_unknown_or_malformed_token_shows_the_sign_in_page(app, browser, token):
    response = browser.get(f"/sign-in/{token}")
    assert response.status_code == 400
    assert "not valid" in response.get_data(as_text=True)
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_links_last_ten_minutes_by_default_and_at_most_an_hour(app, op, clock):
    tenant = make_tenant("Acme")
    link = _link(op, tenant.id)
    expires = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (clock.now() + timedelta(seconds=600))) < timedelta(seconds=1)
    longest = _link(op, tenant.id, expires_in=3600)
    expires = datetime.fromisoformat(longest["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (clock.now() + timedelta(hours=1))) < timedelta(seconds=1)
    for bad in (3601, 29, 0, -5, "600", True, 600.5, None):
        response = op.post(f"/tenants/{tenant.id}/portal-links", json={"expires_in": bad})
        body = assert_problem(response, 422, "validation-error")
        assert "expires_in" in body["errors"]
    assert _count(PortalLink) == 2


def test_only_a_hash_of_the_link_token_is_stored(app, op):
    tenant = make_tenant("Acme")
    token = _link(op, tenant.id)["url"].rsplit("/", 1)[1]
    (row,) = db.session.scalars(select(PortalLink)).all()
    assert token not in repr(vars(row)) and row.token_hash == operator_service._digest(token)


def test_two_clicks_at_once_sign_in_only_one(app, op):
    tenant_id = make_tenant("Acme").id
    token = _link(op, tenant_id)["url"].rsplit("/", 1)[1]
    db.session.remove()
    barrier, results = threading.Barrier(4), []

    def click() -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append(operator_service.consume_link(token).tenant_id)
            except operator_service.LinkRefused as refused:
                results.append(refused.reason)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted([tenant_id, "used", "used", "used"])


def test_a_link_replaces_whoever_was_signed_in(app, op, browser):
    from tests.ui.conftest import make_admin, sign_in

    admin = make_admin("Beta", "admin@beta.test")
    make_subscription(admin.tenant_id, "http://127.0.0.1:9/beta-hook")
    assert sign_in(browser, admin).status_code == 302
    acme = make_tenant("Acme")
    make_subscription(acme.id, "http://127.0.0.1:9/acme-hook")
    assert browser.get(_path(_link(op, acme.id)["url"])).status_code == 302
    page = browser.get("/endpoints").get_data(as_text=True)
    assert "acme-hook" in page and "beta-hook" not in page
    assert "admin@beta.test" not in browser.get("/").get_data(as_text=True)


def test_a_link_session_signs_out_and_ends_after_its_lifetime(app, op, browser, clock):
    tenant = make_tenant("Acme")
    assert browser.get(_path(_link(op, tenant.id)["url"])).status_code == 302
    token = csrf_token(browser, "/")
    signed_out = browser.post("/logout", data={"csrf_token": token})
    assert signed_out.status_code == 302
    assert browser.get("/").status_code == 302

    assert browser.get(_path(_link(op, tenant.id)["url"])).status_code == 302
    clock.advance(seconds=operator_service.LINK_SESSION_LIFETIME.total_seconds() - 60)
    assert browser.get("/").status_code == 200
    clock.advance(seconds=61)
    response = browser.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_minting_prunes_the_tenants_spent_links(app, op, clock):
    tenant = make_tenant("Acme")
    for _ in range(3):
        _link(op, tenant.id, expires_in=30)
    other = make_tenant("Other")
    _link(op, other.id, expires_in=30)
    clock.advance(seconds=30 + operator_service.LINK_SESSION_LIFETIME.total_seconds() + 1)
    _link(op, tenant.id)
    db.session.expire_all()
    assert sorted(row.tenant_id for row in db.session.scalars(select(PortalLink))) == sorted(
        [tenant.id, other.id]
    )


def test_link_urls_follow_the_portal_prefix(app, test_env, tmp_path, operator_key):
    service = Flask("service", instance_path=str(tmp_path / "instance"))
    service.config.from_mapping(load_config(os.environ, Path(service.instance_path)))
    service.config.update(TEST_CONFIG, SERVER_NAME="hooks.example.com")
    db.init_app(service)
    csrf.init_app(service)
    login_manager.init_app(service)
    Hookline().init_app(service, db=db, url_prefix="/portal")
    operator_api.init_app(service)
    service.test_client_class = FreshContextClient
    try:
        with service.app_context():
            tenant_id = make_tenant("Acme").id
        web = service.test_client()
        headers = {"Authorization": f"Bearer {operator_key}"}
        response = web.post(
            f"{OPERATOR_PREFIX}/tenants/{tenant_id}/portal-links", json={}, headers=headers
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        url = response.get_json()["url"]
        assert url.startswith("http://hooks.example.com/portal/sign-in/")
        signed_in = web.get(url)
        assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/portal/"
        assert web.get("/portal/").status_code == 200
    finally:
        with service.app_context():
            db.session.remove()
            db.engine.dispose()
            get_redis().close()


# --- tenants -------------------------------------------------------------------------------------


def test_creating_a_tenant_with_its_id_again_is_safe_and_another_name_conflicts(app, op):
    first = op.post("/tenants", json={"name": "Acme", "id": "org.42:eu-1"})
    assert first.status_code == 201
    again = op.post("/tenants", json={"name": "Acme", "id": "org.42:eu-1"})
    assert again.status_code == 200 and again.get_json() == first.get_json()
    body = assert_problem(
        op.post("/tenants", json={"name": "Beta", "id": "org.42:eu-1"}), 409, "conflict"
    )
    assert "id" in body["errors"]
    assert db.session.get(Tenant, "org.42:eu-1").name == "Acme"
    assert op.get("/tenants/org.42:eu-1").get_json()["name"] == "Acme"


def test_a_tenant_without_an_id_gets_a_hookline_id(app, op):
    body = op.post("/tenants", json={"name": "Acme"}).get_json()
    assert body["id"].startswith("ten_")
    assert op.post("/tenants", json={"name": "Acme"}).get_json()["id"] != body["id"]


@pytest.mark.parametrize("bad", ["", "-lead", "has space", "a/b", "x" * 65, "é", "a\x00"])
def test_a_tenant_id_breaking_the_rules_is_refused(app, op, bad):
    response = op.post("/tenants", json={"name": "Acme", "id": bad})
    body = assert_problem(response, 422, "validation-error")
    assert set(body["errors"]) <= {"id", "name"}
    assert _count(Tenant) == 0


def test_tenants_are_listed_in_pages(app, op):
    ids = {op.post("/tenants", json={"name": f"T{n}"}).get_json()["id"] for n in range(5)}
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = op.get("/tenants", query_string=query).get_json()
        seen += [row["id"] for row in page["data"]]
        pages += 1
        if not (cursor := page["next_cursor"]):
            break
    assert set(seen) == ids and len(seen) == 5 and pages == 3
    assert seen == sorted(seen, reverse=True)
    assert_problem(op.get("/tenants?limit=101"), 422, "validation-error")
    assert_problem(op.get("/tenants?colour=red"), 422, "validation-error")


def test_an_unknown_tenant_is_a_404_on_every_route_and_writes_nothing(app, op):
    assert_problem(op.get("/tenants/org_missing"), 404, "not-found")
    calls = [
        ("/admins", {"email": "a@b.test", "password": "long enough"}),
        ("/api-keys", {"name": "k"}),
        ("/portal-links", {}),
    ]
    for suffix, body in calls:
        assert_problem(op.post(f"/tenants/org_missing{suffix}", json=body), 404, "not-found")
    assert (_count(User), _count(ApiKey), _count(PortalLink)) == (0, 0, 0)
    assert_problem(op.get("/tenants/bad%00id"), 404, "not-found")
    assert_problem(op.get("/nowhere"), 404, "not-found")
    response = op.request("DELETE", "/tenants")
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_an_admin_email_is_unique_and_the_password_long_enough(app, op):
    tenant = make_tenant("Acme")
    ok = op.post(f"/tenants/{tenant.id}/admins", json={"email": "a@b.test", "password": "12345678"})
    assert ok.status_code == 201
    again = op.post(f"/tenants/{tenant.id}/admins", json={"email": "A@b.test", "password": "x" * 9})
    assert "email" in assert_problem(again, 422, "validation-error")["errors"]
    short = op.post(f"/tenants/{tenant.id}/admins", json={"email": "c@b.test", "password": "1234"})
    assert "password" in assert_problem(short, 422, "validation-error")["errors"]
    assert _count(User) == 1


# --- keys ----------------------------------------------------------------------------------------


def test_no_or_a_bad_operator_key_is_a_401_with_a_challenge(app, client, op):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer hlop_nope"}):
        response = client.get(OPERATOR_PREFIX + "/tenants", headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="hookline-operator"'


def test_a_tenant_api_key_is_refused_by_the_operator_api(app, client, api):
    response = client.get(
        OPERATOR_PREFIX + "/tenants", headers={"Authorization": f"Bearer {api.key}"}
    )
    assert_problem(response, 401, "unauthorized")
    response = client.post(
        OPERATOR_PREFIX + "/tenants",
        json={"name": "Mine"},
        headers={"Authorization": f"Bearer {api.key}"},
    )
    assert_problem(response, 401, "unauthorized")
    assert _count(Tenant) == 1  # the API client's own


def test_an_operator_key_is_refused_by_the_tenant_api(app, client, operator_key):
    configure(app, HOOKLINE_OPERATOR_KEYS=(CONFIGURED_KEY,))
    for key in (operator_key, CONFIGURED_KEY):
        response = client.get(
            API_PREFIX + "/subscriptions", headers={"Authorization": f"Bearer {key}"}
        )
        assert_problem(response, 401, "unauthorized")


def test_a_configured_operator_key_works_and_is_compared_in_full(app, client):
    configure(app, HOOKLINE_OPERATOR_KEYS=(CONFIGURED_KEY, "hlop_" + "d" * 40))
    for key in (CONFIGURED_KEY, "hlop_" + "d" * 40):
        response = client.get(
            OPERATOR_PREFIX + "/tenants", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200
    for near in (CONFIGURED_KEY[:-1], CONFIGURED_KEY + "c", CONFIGURED_KEY.upper()):
        response = client.get(
            OPERATOR_PREFIX + "/tenants", headers={"Authorization": f"Bearer {near}"}
        )
        assert_problem(response, 401, "unauthorized")


def test_a_revoked_operator_key_stops_working_and_use_is_stamped(app, op, clock):
    assert op.get("/tenants").status_code == 200
    (row,) = db.session.scalars(select(OperatorKey)).all()
    assert row.last_used_at == clock.now()
    operator_service.revoke_operator_key(row.id)
    db.session.commit()
    assert_problem(op.get("/tenants"), 401, "unauthorized")


def test_operator_keys_from_the_environment_are_parsed_once_and_checked(tmp_path):
    assert parse_operator_keys(None) == ()
    assert parse_operator_keys(f" {CONFIGURED_KEY} , ,hlop_{'e' * 32}") == (
        CONFIGURED_KEY,
        "hlop_" + "e" * 32,
    )
    config = load_config({"HOOKLINE_OPERATOR_KEYS": CONFIGURED_KEY}, tmp_path)
    assert config["HOOKLINE_OPERATOR_KEYS"] == (CONFIGURED_KEY,)
    for bad in ("hl_" + "a" * 40, "hlop_short", "hlop_" + "a" * 31, "hlop_" + "é" * 40):
        with pytest.raises(ConfigError) as refused:
            parse_operator_keys(f"{CONFIGURED_KEY},{bad}")
        assert "key 2 of 2" in str(refused.value) and bad not in str(refused.value)


def test_flask_operator_keys_create_prints_a_key_once_and_stores_its_hash(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["operator-keys", "create", "--name", "platform-prod"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("hlop_") and len(key) > 40
    (row,) = db.session.scalars(select(OperatorKey)).all()
    assert row.name == "platform-prod" and row.key_hash == operator_service._digest(key)
    assert key not in repr(vars(row))
    listed = runner.invoke(args=["operator-keys", "list"])
    assert row.id in listed.output and key not in listed.output
    revoked = runner.invoke(args=["operator-keys", "revoke", row.id])
    assert revoked.exit_code == 0
    assert runner.invoke(args=["operator-keys", "revoke", "opk_nope"]).exit_code != 0
    assert runner.invoke(args=["operator-keys", "create", "--name", " "]).exit_code != 0


def test_every_curl_example_in_the_operator_guide_works(app, client, operator_key):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    covered = set()
    for command in curl_commands(GUIDE.read_text(encoding="utf-8")):
        url = command.url.replace("$HOOKLINE", "")
        headers = {
            name: value.replace("$HOOKLINE_OPERATOR_KEY", operator_key)
            for name, value in command.headers.items()
        }
        response = client.open(url, method=command.method, headers=headers, data=command.data)
        assert response.status_code < 300, (command, response.get_data(as_text=True))
        operation = operation_of(spec, command.method, url.split("?")[0])
        assert operation, f"{command.method} {url} is not an API operation"
        covered.add(operation)
    operator_operations = {
        (method, path)
        for path, item in spec["paths"].items()
        if path.startswith(OPERATOR_PREFIX)
        for method in item
        if method in {"get", "post", "patch", "delete"}
    }
    assert operator_operations - covered == set(), "operator operations without a curl example"


def test_an_embedded_hookline_has_no_operator_api_and_no_sign_in_links(app, tmp_path):
    host = Flask("host", instance_path=str(tmp_path / "instance"))
    host.config.update(TEST_CONFIG, SECRET_KEY="host-secret")
    host.config["SQLALCHEMY_DATABASE_URI"] = app.config["SQLALCHEMY_DATABASE_URI"]
    db.init_app(host)
    Hookline().init_app(
        host, db=db, url_prefix="/webhooks", current_tenant=lambda: None, login_url="/login"
    )
    with pytest.raises(ValueError, match="standalone"):
        operator_api.init_app(host)
    try:
        with host.app_context():
            tenant_id = make_tenant("Acme").id
            _, token = operator_service.mint_link(tenant_id)
            db.session.commit()
        web = host.test_client()
        assert web.get(f"/webhooks/sign-in/{token}").status_code == 404
        assert web.get(OPERATOR_PREFIX + "/tenants").status_code == 404
        spec = web.get(API_PREFIX + "/openapi.json").get_json()
        assert not [path for path in spec["paths"] if path.startswith(OPERATOR_PREFIX)]
    finally:
        with host.app_context():
            db.session.remove()
            db.engine.dispose()
            get_redis().close()
