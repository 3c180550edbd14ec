"""Hostile input through every portal form: a clear 4xx (or a harmless success), never a 500,
never a partial write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ApiKey, EventType, Subscription, User
from tests.factories import make_subscription

HOSTILE = [
    "line\r\nX-Injected: 1",
    "nul\x00byte",
    "\u202eevil\u200b\ufeff𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "<script>alert(1)</script>",
    "x" * 100_000,
    '{"a":' * 5_000 + "1" + "}" * 5_000,  # deeply nested JSON
    "",
]


def _counts() -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Subscription, EventType, ApiKey, User)
    )


def _post_all_ways(portal, path: str, fields: dict[str, str]) -> None:
    for htmx in (False, True):
        before = _counts()
        response = portal.post(path, data=fields, htmx=htmx)
        assert response.status_code < 500, (path, fields, response.status_code)
        if response.status_code >= 400:
            assert _counts() == before, f"a refused {path} wrote something"


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_endpoint_form_survives_hostile_input(portal, receiver, value):
    for field in ("url", "description", "headers"):
        fields = {"url": receiver.url(), "description": "d", "headers": "", "events": "*"}
        fields[field] = value
        _post_all_ways(portal, "/endpoints/new", fields)
    _post_all_ways(portal, "/endpoints/new", {"url": receiver.url(), "events": value})


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_endpoint_actions_survive_hostile_input(portal, receiver, value):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    _post_all_ways(portal, f"/endpoints/{sub.id}/edit", {"url": value, "events": "*"})
    _post_all_ways(portal, f"/endpoints/{sub.id}/rotate", {"grace": value})
    _post_all_ways(portal, f"/endpoints/{sub.id}/test", {"event_type": value})
    _post_all_ways(portal, f"/endpoints/{sub.id}/recover", {"since": value})


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_catalog_and_api_key_forms_survive_hostile_input(portal, value):
    for field in ("name", "description", "example"):
        fields = {"name": "order.shipped", "description": "", "example": "{}"}
        fields[field] = value
        _post_all_ways(portal, "/event-types", fields)
    _post_all_ways(portal, "/api-keys", {"name": value})


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_login_survives_hostile_input(client, value):
    response = client.post("/login", data={"email": value, "password": value})
    assert response.status_code < 500


def test_hostile_ids_in_portal_urls_are_404s(portal):
    for path in ("/endpoints/%00", "/endpoints/sub_%0d%0aX", "/deliveries/" + "d" * 5000):
        assert portal.get(path).status_code == 404


def test_invalid_utf8_in_a_form_body_is_refused_cleanly(portal, receiver):
    from tests.ui.conftest import csrf_token

    token = csrf_token(portal.client, "/")
    before = _counts()
    body = (
        b"csrf_token="
        + token.encode()
        + b"&url=http%3A%2F%2F127.0.0.1%2F&events=*&description=%FF%FE"
    )
    response = portal.client.post(
        "/endpoints/new", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code < 500
    if response.status_code >= 400:
        assert _counts() == before
