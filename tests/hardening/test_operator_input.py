"""Hostile input on every operator API route: a 4xx problem of the right type, never a 500, and
never a partial write."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select

from dispatcher.store import db
from portal.api.operator import OPERATOR_PREFIX
from portal.models import ApiKey, OperatorKey, PortalLink, Tenant, User
from portal.services import operator as operator_service
from tests.api.conftest import assert_problem
from tests.factories import make_tenant

# A valid body per route; each hostile case below spoils one part of it.
VALID = {
    "/tenants": {"name": "Acme", "id": "org_1"},
    "/tenants/{tenant}/admins": {"email": "ops@acme.test", "password": "long enough"},
    "/tenants/{tenant}/api-keys": {"name": "billing"},
    "/tenants/{tenant}/portal-links": {"expires_in": 300},
}


@pytest.fixture
def operator(app, client):
    """Call the operator API with a real operator key; `tenant` is an existing tenant's id."""
    _, key = operator_service.create_operator_key("hardening")
    tenant = make_tenant("Existing")
    db.session.commit()

    def call(method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        url = OPERATOR_PREFIX + path.replace("{tenant}", tenant.id)
        return client.open(url, method=method, headers=headers, **kwargs)

    return call


def _rows() -> tuple[int, ...]:
    db.session.expire_all()
    counts = tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Tenant, User, ApiKey, PortalLink)
    )
    db.session.rollback()
    return counts


PROBLEM_SLUGS = {400: "malformed-json", 409: "conflict", 422: "validation-error"}


def _refusals(path: str) -> list[tuple[object, int]]:
    """(body, status) cases that must be refused: unknown fields, wrong shapes and types,
    NULs, lone surrogates (400: no database stores them) and overlong text."""
    valid = VALID[path]
    cases: list[tuple[object, int]] = [
        ({**valid, "colour": "red"}, 422),
        ([valid], 422),
        ("just a string", 422),
        (12, 422),
    ]
    for field, value in valid.items():
        for bad in (None, ["x"], {"x": 1}, True):
            cases.append(({**valid, field: bad}, 422))
        if isinstance(value, str):
            cases += [({**valid, field: bad}, 422) for bad in ("\x00", "a\x00b", "x" * 100_000)]
            cases += [({**valid, field: bad}, 400) for bad in ("\ud800", "x\udfff")]
            cases.append(({**valid, field: 12}, 422))
        else:
            cases += [({**valid, field: bad}, 422) for bad in ("300", 1e9, -1, 300.5)]
    return cases


@pytest.mark.parametrize("path", sorted(VALID))
def test_hostile_bodies_are_refused_with_a_problem_and_write_nothing(app, operator, path):
    before = _rows()
    for body, status in _refusals(path):
        response = operator("POST", path, json=body)
        assert_problem(response, status, PROBLEM_SLUGS[status])
        assert _rows() == before, (path, body)


@pytest.mark.parametrize("path", sorted(VALID))
@pytest.mark.parametrize("value", ["\u202e<script>alert(1)</script>", "' OR 1=1 --", "🙂" * 50])
def test_strange_but_storable_text_is_kept_verbatim_or_refused_cleanly(app, operator, path, value):
    for field in (f for f, v in VALID[path].items() if isinstance(v, str)):
        before = _rows()
        response = operator("POST", path, json={**VALID[path], field: value})
        if response.status_code >= 400:
            assert_problem(response, response.status_code, PROBLEM_SLUGS[response.status_code])
            assert _rows() == before, (path, field)
        else:
            assert response.status_code in (200, 201), response.get_data(as_text=True)
            if field == "name":
                assert response.get_json()["name"] == value
        db.session.rollback()
        if path == "/tenants":
            db.session.execute(delete(Tenant).where(Tenant.id == "org_1"))
            db.session.commit()


@pytest.mark.parametrize("path", sorted(VALID))
def test_broken_transport_gets_a_problem_and_writes_nothing(app, operator, path):
    before = _rows()
    cases = [
        ({"data": '{"name": "x",', "content_type": "application/json"}, 400, "malformed-json"),
        ({"data": '{"name": NaN}', "content_type": "application/json"}, 400, "malformed-json"),
        ({"data": b'{"name": "\xff"}', "content_type": "application/json"}, 400, "malformed-json"),
        ({"data": "name=x", "content_type": "text/plain"}, 415, "unsupported-media-type"),
        (
            {"data": '{"name": "' + "a" * app.config["MAX_CONTENT_LENGTH"] + '"}'},
            413,
            "payload-too-large",
        ),
    ]
    for kwargs, status, slug in cases:
        kwargs.setdefault("content_type", "application/json")
        assert_problem(operator("POST", path, **kwargs), status, slug)
    deep = "[" * 100_000 + "]" * 100_000
    response = operator("POST", path, data=deep, content_type="application/json")
    assert response.status_code in (400, 413) and response.mimetype == "application/problem+json"
    assert _rows() == before


@pytest.mark.parametrize(
    "tenant", ["a%00b", "x" * 65, "%0A", "..", "a/b/c", "%C2%84", "-lead", "a%20b"]
)
def test_hostile_tenant_ids_in_the_path_are_404s(app, operator, tenant):
    before = _rows()
    assert_problem(operator("GET", f"/tenants/{tenant}"), 404, "not-found")
    for path in VALID:
        if "{tenant}" in path:
            url = path.replace("{tenant}", tenant)
            assert_problem(operator("POST", url, json=VALID[path]), 404, "not-found")
    assert _rows() == before


@pytest.mark.parametrize(
    "value",
    [
        "Bearer " + "hlop_" + "a" * 10_000,
        "Bearer hlop_\x00",
        "Bearer hlop_é",
        "Bearer  ",
        "bearer",
        "Bearer hl_" + "a" * 43,
        "Bearer " + "' OR 1=1 --",
    ],
)
def test_hostile_authorization_is_a_401(app, client, value):
    before = _rows()
    keys_before = db.session.scalar(select(func.count()).select_from(OperatorKey))
    response = client.post(
        OPERATOR_PREFIX + "/tenants", json={"name": "x"}, headers={"Authorization": value}
    )
    assert_problem(response, 401, "unauthorized")
    assert _rows() == before
    assert db.session.scalar(select(func.count()).select_from(OperatorKey)) == keys_before


def test_queries_on_the_tenant_list_are_checked(app, operator):
    for query, field in (
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=" + "x" * 65, "cursor"),
        ("cursor=%00", "cursor"),
        ("other=1", "other"),
    ):
        body = assert_problem(operator("GET", f"/tenants?{query}"), 422, "validation-error")
        assert field in body["errors"], (query, body)
