"""API keys: who may call the API, and what a refused caller sees."""

from __future__ import annotations

from portal.api import API_PREFIX
from portal.extensions import db
from portal.models import ApiKey
from portal.services import accounts
from tests.api.conftest import assert_problem


def test_missing_authorization_is_401_problem_with_challenge(api, client):
    response = client.get(API_PREFIX + "/subscriptions")
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer" in body["detail"]


def test_wrong_scheme_is_401(api, client):
    response = client.get(
        API_PREFIX + "/subscriptions", headers={"Authorization": f"Basic {api.key}"}
    )
    assert_problem(response, 401, "unauthorized")


def test_unknown_key_is_401(api, client):
    response = client.get(
        API_PREFIX + "/subscriptions", headers={"Authorization": "Bearer hl_not-a-real-key"}
    )
    assert_problem(response, 401, "unauthorized")


def test_revoked_key_is_401(api):
    row = db.session.query(ApiKey).filter_by(tenant_id=api.tenant_id).one()
    accounts.revoke_api_key(api.tenant_id, row.id)
    db.session.commit()
    assert_problem(api.get("/subscriptions"), 401, "unauthorized")


def test_auth_is_checked_before_the_body(api, client):
    response = client.post(API_PREFIX + "/events", data="{not json", content_type="text/plain")
    assert_problem(response, 401, "unauthorized")


def test_successful_call_records_last_used_at(api):
    assert api.get("/subscriptions").status_code == 200
    db.session.expire_all()
    row = db.session.query(ApiKey).filter_by(tenant_id=api.tenant_id).one()
    assert row.last_used_at is not None


def test_last_used_at_is_kept_even_when_the_request_fails(api):
    assert_problem(api.get("/subscriptions/sub_missing"), 404, "not-found")
    db.session.expire_all()
    row = db.session.query(ApiKey).filter_by(tenant_id=api.tenant_id).one()
    assert row.last_used_at is not None


def test_openapi_document_and_docs_need_no_key(app, client):
    assert client.get(API_PREFIX + "/openapi.json").status_code == 200
    page = client.get(API_PREFIX + "/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"


def test_api_is_exempt_from_csrf(api):
    """The app enforces CSRF for the portal; a token-authenticated POST needs none."""
    response = api.post("/events", json={"type": "invoice.sent", "data": {}})
    assert response.status_code == 202


def test_a_read_within_the_minute_writes_nothing(api):
    """A GET must not take the database's write lock just to restamp last_used_at."""
    from sqlalchemy import event

    assert api.get("/subscriptions").status_code == 200
    writes: list[str] = []

    def record(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            writes.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert api.get("/subscriptions").status_code == 200
        assert api.get("/events").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert writes == []
