"""/subscriptions: the settable `rate_limit` and the read-only `health` of an endpoint.

Health columns are written straight onto the row (the delivery engine that writes them is built
separately); what the API shows is what dispatcher.health.describe derives from them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatcher.throttle import MAX_RATE_LIMIT, MIN_RATE_LIMIT
from portal.api import API_PREFIX
from portal.extensions import db
from portal.models import Subscription
from tests.api.conftest import assert_problem, snapshot
from tests.factories import make_subscription, set_health

URL = "http://127.0.0.1:9/hook"

# Out of range, of the wrong type, a bool (an int to Python), a float even when whole.
BAD_RATE_LIMITS = [
    0,
    -1,
    MIN_RATE_LIMIT - 1,
    MAX_RATE_LIMIT + 1,
    10**30,
    "5",
    "",
    True,
    False,
    1.5,
    5.0,
    [5],
    {"per_second": 5},
]


def _create(api, **fields) -> dict:
    response = api.post("/subscriptions", json={"url": URL, "events": ["*"], **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _stored_rate_limit(subscription_id: str) -> int | None:
    db.session.expire_all()
    return db.session.get(Subscription, subscription_id).rate_limit


def _iso(moment) -> str:
    """The API's Timestamp format: UTC, milliseconds, Z."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- rate_limit ---------------------------------------------------------------------------------


def test_create_without_a_rate_limit_has_none(api):
    body = _create(api)
    assert body["rate_limit"] is None
    assert _stored_rate_limit(body["id"]) is None


def test_create_with_a_rate_limit_stores_and_returns_it(api):
    body = _create(api, rate_limit=25)
    assert body["rate_limit"] == 25
    assert api.get(f"/subscriptions/{body['id']}").get_json()["rate_limit"] == 25
    assert _stored_rate_limit(body["id"]) == 25


def test_create_with_an_explicit_null_rate_limit_means_no_limit(api):
    assert _create(api, rate_limit=None)["rate_limit"] is None


def test_the_throttle_bounds_themselves_are_accepted(api):
    assert _create(api, rate_limit=MIN_RATE_LIMIT)["rate_limit"] == MIN_RATE_LIMIT
    assert _create(api, rate_limit=MAX_RATE_LIMIT)["rate_limit"] == MAX_RATE_LIMIT


def test_patch_sets_changes_and_null_removes_the_rate_limit(api):
    sub_id = _create(api)["id"]
    path = f"/subscriptions/{sub_id}"
    assert api.patch(path, json={"rate_limit": 10}).get_json()["rate_limit"] == 10
    assert _stored_rate_limit(sub_id) == 10
    assert api.patch(path, json={"rate_limit": 200}).get_json()["rate_limit"] == 200
    response = api.patch(path, json={"rate_limit": None})
    assert response.status_code == 200
    assert response.get_json()["rate_limit"] is None
    assert _stored_rate_limit(sub_id) is None


def test_patch_of_other_fields_keeps_the_rate_limit(api):
    sub_id = _create(api, rate_limit=40)["id"]
    response = api.patch(f"/subscriptions/{sub_id}", json={"description": "renamed"})
    assert response.get_json()["rate_limit"] == 40
    assert _stored_rate_limit(sub_id) == 40


@pytest.mark.parametrize("bad", BAD_RATE_LIMITS, ids=repr)
def test_create_refuses_a_bad_rate_limit_with_a_field_error_and_writes_nothing(api, bad):
    response = api.post("/subscriptions", json={"url": URL, "events": ["*"], "rate_limit": bad})
    body = assert_problem(response, 422, "validation-error")
    assert set(body["errors"]) == {"rate_limit"}
    (message,) = body["errors"]["rate_limit"]
    assert f"between {MIN_RATE_LIMIT} and {MAX_RATE_LIMIT}" in message
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0


@pytest.mark.parametrize("bad", BAD_RATE_LIMITS, ids=repr)
def test_patch_refuses_a_bad_rate_limit_with_a_field_error_and_changes_nothing(api, bad):
    sub_id = _create(api, rate_limit=30)["id"]
    before = snapshot()
    response = api.patch(
        f"/subscriptions/{sub_id}", json={"description": "not saved", "rate_limit": bad}
    )
    body = assert_problem(response, 422, "validation-error")
    assert set(body["errors"]) == {"rate_limit"}
    assert "rate limit" in body["errors"]["rate_limit"][0]
    assert snapshot() == before
    assert _stored_rate_limit(sub_id) == 30


def test_another_tenants_subscription_is_404_for_rate_limit_changes(api, other_api):
    sub_id = _create(api, rate_limit=30)["id"]
    before = snapshot()
    for body in ({"rate_limit": 5}, {"rate_limit": None}, {"rate_limit": 0}):
        response = other_api.patch(f"/subscriptions/{sub_id}", json=body)
        assert_problem(response, 404, "not-found")
    assert_problem(other_api.get(f"/subscriptions/{sub_id}"), 404, "not-found")
    assert snapshot() == before
    assert _stored_rate_limit(sub_id) == 30


# --- health -------------------------------------------------------------------------------------


def test_a_new_endpoint_is_healthy(api):
    body = _create(api)
    assert body["health"] == {
        "state": "healthy",
        "since": None,
        "paused_until": None,
        "consecutive_failures": 0,
        "last_error": None,
    }


def test_an_open_breaker_shows_failing_with_since_pause_failures_and_last_error(api, clock):
    sub, _ = make_subscription(api.tenant_id, URL)
    opened = clock.now() - timedelta(minutes=3)
    pause_ends = clock.now() + timedelta(seconds=20)
    set_health(
        sub.id,
        consecutive_failures=7,
        circuit_opened_at=opened,
        paused_until=pause_ends,
        pause_seconds=40,
        last_error="HTTP 503 from the receiver",
    )
    health = api.get(f"/subscriptions/{sub.id}").get_json()["health"]
    assert health == {
        "state": "failing",
        "since": _iso(opened),
        "paused_until": _iso(pause_ends),
        "consecutive_failures": 7,
        "last_error": "HTTP 503 from the receiver",
    }


def test_an_open_breaker_whose_pause_is_over_is_still_failing_until_a_probe_succeeds(api, clock):
    sub, _ = make_subscription(api.tenant_id, URL)
    set_health(
        sub.id,
        consecutive_failures=5,
        circuit_opened_at=clock.now() - timedelta(minutes=1),
        paused_until=clock.now() - timedelta(seconds=1),
        last_error="timed out",
    )
    health = api.get(f"/subscriptions/{sub.id}").get_json()["health"]
    assert health["state"] == "failing"
    assert health["paused_until"] is None  # no longer held back: waiting for its probe


def test_a_retry_after_pause_shows_throttled_until_it_ends(api, clock):
    sub, _ = make_subscription(api.tenant_id, URL)
    until = clock.now() + timedelta(seconds=90)
    set_health(sub.id, consecutive_failures=1, paused_until=until, last_error="HTTP 429")
    health = api.get(f"/subscriptions/{sub.id}").get_json()["health"]
    assert health == {
        "state": "throttled",
        "since": None,
        "paused_until": _iso(until),
        "consecutive_failures": 1,
        "last_error": "HTTP 429",
    }
    clock.advance(seconds=91)
    health = api.get(f"/subscriptions/{sub.id}").get_json()["health"]
    assert health["state"] == "healthy" and health["paused_until"] is None
    assert health["last_error"] == "HTTP 429"  # kept for display after the pause


def test_health_appears_in_the_list_and_after_a_patch(api, clock):
    failing, _ = make_subscription(api.tenant_id, URL)
    healthy, _ = make_subscription(api.tenant_id, URL)
    set_health(failing.id, consecutive_failures=5, circuit_opened_at=clock.now())
    rows = api.get("/subscriptions").get_json()["data"]
    states = {row["id"]: row["health"]["state"] for row in rows}
    assert states == {failing.id: "failing", healthy.id: "healthy"}
    patched = api.patch(f"/subscriptions/{failing.id}", json={"rate_limit": 3}).get_json()
    assert patched["health"]["state"] == "failing"


def test_health_cannot_be_written_through_the_api(api):
    sub_id = _create(api)["id"]
    response = api.patch(f"/subscriptions/{sub_id}", json={"health": {"state": "healthy"}})
    body = assert_problem(response, 422, "validation-error")
    assert "health" in body["errors"]


def test_another_tenants_health_is_never_shown(api, other_api, clock):
    sub, _ = make_subscription(api.tenant_id, URL)
    set_health(sub.id, consecutive_failures=9, circuit_opened_at=clock.now(), last_error="secret")
    assert_problem(other_api.get(f"/subscriptions/{sub.id}"), 404, "not-found")
    assert other_api.get("/subscriptions").get_json()["data"] == []


def test_openapi_describes_rate_limit_and_health(client):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    for name in ("SubscriptionCreateArgs", "SubscriptionUpdateArgs"):
        prop = schemas[name]["properties"]["rate_limit"]
        assert prop["type"] == "integer" and prop["nullable"] is True
        assert (prop["minimum"], prop["maximum"]) == (MIN_RATE_LIMIT, MAX_RATE_LIMIT)
    shown = schemas["Subscription"]
    assert {"rate_limit", "health"} <= set(shown["required"])
    assert shown["properties"]["rate_limit"]["type"] == "integer"
    assert shown["properties"]["health"] == {"$ref": "#/components/schemas/EndpointHealth"}
    health = schemas["EndpointHealth"]
    assert health["properties"]["state"]["enum"] == ["healthy", "failing", "throttled"]
    assert set(health["required"]) == {
        "state",
        "since",
        "paused_until",
        "consecutive_failures",
        "last_error",
    }
    assert health["properties"]["since"]["format"] == "date-time"
