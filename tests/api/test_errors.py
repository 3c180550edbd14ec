"""Every error is an RFC 9457 problem: routing, bodies, validation and our own bugs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from portal.api import API_PREFIX
from portal.extensions import db
from portal.models import Subscription
from portal.services import subscriptions as subscription_service
from tests.api.conftest import assert_problem


def test_unknown_route_under_the_api_is_a_404_problem(api):
    body = assert_problem(api.get("/no-such-thing"), 404, "not-found")
    assert body["instance"] == API_PREFIX + "/no-such-thing"


def test_malformed_id_in_the_path_is_a_404_like_an_unknown_one(api):
    assert_problem(api.get("/subscriptions/sub%00x"), 404, "not-found")
    assert_problem(api.get("/subscriptions/" + "a" * 65), 404, "not-found")
    assert_problem(api.post("/subscriptions/%06%0A/test"), 404, "not-found")
    assert_problem(api.get("/deliveries/x%0Ay"), 404, "not-found")
    assert_problem(api.post("/deliveries/%C2%84/retry"), 404, "not-found")
    assert_problem(api.get("/deliveries/a/b/c"), 404, "not-found")


def test_wrong_method_is_a_405_problem_with_allow(api):
    response = api.delete("/subscriptions")
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_unknown_route_without_a_key_is_still_a_problem(app, client):
    assert_problem(client.get(API_PREFIX + "/nowhere"), 404, "not-found")


def test_wrong_content_type_is_415(api):
    response = api.post("/events", data="type=invoice.sent", content_type="text/plain")
    assert_problem(response, 415, "unsupported-media-type")


def test_malformed_json_is_400(api):
    response = api.post("/events", data='{"type": "invoice.sent",', content_type="application/json")
    body = assert_problem(response, 400, "malformed-json")
    assert body["code"] == "malformed_json"


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "invoice.sent", "data": {"x": "\\ud800"}}',
        '{"type": "invoice.sent", "data": {"x": NaN}}',
        '{"name": "order.x", "example": {"n": 1e400}}',
        b'{"type": "invoice.sent", "data": {"x": "\xff"}}',
    ],
)
def test_json_that_cannot_be_stored_is_400(api, raw):
    path = "/event-types" if "order.x" in str(raw) else "/events"
    response = api.post(path, data=raw, content_type="application/json")
    assert_problem(response, 400, "malformed-json")


def test_deeply_nested_json_is_400_not_a_crash(api):
    body = "[" * 200_000 + "]" * 200_000
    response = api.post("/events", data=body, content_type="application/json")
    assert_problem(response, 400, "malformed-json")  # 400 kB: under the request limit


def test_body_over_the_request_limit_is_413(api, app):
    big = (
        '{"type": "invoice.sent", "data": {"x": "' + "a" * app.config["MAX_CONTENT_LENGTH"] + '"}}'
    )
    response = api.post("/events", data=big, content_type="application/json")
    assert_problem(response, 413, "payload-too-large")


def test_validation_errors_name_each_field(api):
    response = api.post("/subscriptions", json={"url": 5, "events": "all", "color": "red"})
    body = assert_problem(response, 422, "validation-error")
    assert set(body["errors"]) == {"url", "events", "color"}
    assert all(isinstance(m, list) and m for m in body["errors"].values())


def test_nested_field_errors_are_flattened(api):
    response = api.post(
        "/subscriptions",
        json={"url": "http://127.0.0.1:9/", "events": ["*"], "headers": {"X-A": 5}},
    )
    body = assert_problem(response, 422, "validation-error")
    assert any(name.startswith("headers") for name in body["errors"])


def test_json_array_instead_of_object_is_422(api):
    response = api.post("/subscriptions", json=[1, 2])
    assert_problem(response, 422, "validation-error")


def test_internal_error_hides_the_traceback_and_rolls_back(api, monkeypatch):
    def broken(*args, **kwargs):
        db.session.add(Subscription(tenant_id=api.tenant_id, url="x", secrets_encrypted="x"))
        db.session.flush()
        raise RuntimeError("SELECT secret FROM subscriptions WHERE boom -- Traceback")

    monkeypatch.setattr(subscription_service, "list_subscriptions", broken)
    response = api.get("/subscriptions")
    body = assert_problem(response, 500, "internal-error")
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "SELECT", "RuntimeError", "boom", 'File "'):
        assert leak not in text
    assert set(body) <= {"type", "title", "status", "detail", "instance", "code"}
    assert db.session.query(Subscription).count() == 0


def test_database_error_does_not_leak_sql(api, monkeypatch):
    from sqlalchemy import text

    def broken(*args, **kwargs):
        db.session.execute(text("SELECT no_such_column FROM hookline_subscriptions"))

    monkeypatch.setattr(subscription_service, "list_subscriptions", broken)
    response = api.get("/subscriptions")
    assert_problem(response, 500, "internal-error")
    assert "no_such_column" not in response.get_data(as_text=True)
    # The session is usable again for the next request.
    monkeypatch.undo()
    assert api.get("/subscriptions").status_code == 200


@pytest.mark.parametrize("path", ["/no-such-page", "/api/v2/anything"])
def test_pages_outside_the_api_keep_their_own_errors(app, client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype != "application/problem+json"


REFUSED = (422, "validation-error")  # the field's rules refuse the text
UNENCODABLE = (400, "malformed-json")  # a lone surrogate has no UTF-8: the body cannot be JSON


@dataclass(frozen=True)
class Answers:
    """What the API answers to one hostile text in each place it can go: a success status, or
    the (status, problem type) of the refusal."""

    description: int | tuple[int, str]
    url_and_events: int | tuple[int, str]
    event_type: int | tuple[int, str]
    event_data: int | tuple[int, str]
    list_filter: int | tuple[int, str]  # in ?cursor=, ?event_type= and ?subscription_id=


HOSTILE = [
    pytest.param("\x00", Answers(REFUSED, REFUSED, REFUSED, 202, REFUSED), id="nul"),
    pytest.param("a\x00b", Answers(REFUSED, REFUSED, REFUSED, 202, REFUSED), id="inner-nul"),
    pytest.param(  # a description is shown escaped; a URL, type or filter is no place for it
        "\u202e<script>alert(1)</script>",
        Answers(201, REFUSED, REFUSED, 202, REFUSED),
        id="bidi-script",
    ),
    pytest.param(  # in a URL it is "?" (replaced): a key like any other for the list filters
        "\ud800", Answers(UNENCODABLE, UNENCODABLE, UNENCODABLE, UNENCODABLE, 200), id="surrogate"
    ),
    pytest.param(
        "x\udfff",
        Answers(UNENCODABLE, UNENCODABLE, UNENCODABLE, UNENCODABLE, 200),
        id="x-surrogate",
    ),
    pytest.param(
        "' OR 1=1 --",
        Answers(201, (422, "url-refused"), (422, "unknown-event-type"), 202, 200),
        id="sql",
    ),
]


def _assert_answer(response, expected: int | tuple[int, str], fields: set[str]) -> None:
    """The response is the expected success, or the expected problem naming only `fields`."""
    if isinstance(expected, int):
        assert response.status_code == expected, response.get_data(as_text=True)
        return
    body = assert_problem(response, *expected)
    if expected != UNENCODABLE:
        assert body["errors"] and set(body["errors"]) <= fields, body


@pytest.mark.parametrize(("value", "answers"), HOSTILE)
def test_hostile_text_gets_a_clear_answer_never_a_500(api, value, answers):
    calls = [
        (
            {"url": "http://127.0.0.1:9/", "events": ["*"], "description": value},
            "/subscriptions",
            answers.description,
            {"description"},
        ),
        (
            {"url": value, "events": [value]},
            "/subscriptions",
            answers.url_and_events,
            {"url", "events.0"},
        ),
        (
            {"name": "order.x", "description": value},
            "/event-types",
            answers.description,
            {"description"},
        ),
        ({"type": value, "data": {value: value}}, "/events", answers.event_type, {"type"}),
        ({"type": "invoice.sent", "data": {value: [value]}}, "/events", answers.event_data, set()),
    ]
    for body, path, expected, fields in calls:
        _assert_answer(api.post(path, json=body), expected, fields)
    # A URL cannot carry a lone surrogate at all (UTF-8 percent-encoding refuses it).
    in_url = value.encode("utf-8", "replace").decode()
    for query in ("cursor", "event_type", "subscription_id"):
        response = api.get("/deliveries", query_string={query: in_url})
        _assert_answer(response, answers.list_filter, {query})
    response = api.get("/deliveries", query_string={"status": in_url})
    _assert_answer(response, REFUSED, {"status"})  # not one of the statuses
    response = api.post(
        "/events", json={"type": "invoice.sent", "data": {}}, headers={"Idempotency-Key": "k\x00"}
    )
    _assert_answer(response, REFUSED, {"Idempotency-Key"})
