"""/events: publish with idempotency, list and read."""

from __future__ import annotations

import threading

from portal.api import API_PREFIX
from portal.extensions import db
from portal.models import Delivery, Event
from tests.api.conftest import assert_problem
from tests.factories import make_subscription

EVENT_FIELDS = {"id", "type", "timestamp", "data", "deliveries"}


def test_publish_fans_out_to_matching_endpoints(api):
    make_subscription(api.tenant_id, "http://127.0.0.1:9/all")
    make_subscription(api.tenant_id, "http://127.0.0.1:9/inv", events=["invoice.*"])
    make_subscription(api.tenant_id, "http://127.0.0.1:9/pay", events=["payment.*"])
    response = api.post("/events", json={"type": "invoice.paid", "data": {"invoice_id": "inv_1"}})
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == EVENT_FIELDS
    assert body["id"].startswith("evt_") and body["deliveries"] == 2
    assert body["data"] == {"invoice_id": "inv_1"} and body["timestamp"].endswith("Z")
    assert response.headers["Idempotent-Replayed"] == "false"
    assert response.headers["Location"].endswith(f"/events/{body['id']}")


def test_published_event_is_delivered(api, receiver, run_worker):
    make_subscription(api.tenant_id, receiver.url("/hook"))
    event = api.post("/events", json={"type": "invoice.sent", "data": {"k": "v"}}).get_json()
    run_worker()
    (got,) = receiver.wait_for(1)
    assert got.json["id"] == event["id"] and got.json["timestamp"] == event["timestamp"]


def test_same_idempotency_key_and_body_returns_the_first_event(api):
    make_subscription(api.tenant_id, "http://127.0.0.1:9/all")
    request = {"type": "invoice.sent", "data": {"n": 1}}
    first = api.post("/events", json=request, headers={"Idempotency-Key": "order-42"})
    again = api.post("/events", json=request, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.query(Event).count() == 1
    assert db.session.query(Delivery).count() == 1


def test_same_idempotency_key_with_another_body_is_409(api):
    headers = {"Idempotency-Key": "order-42"}
    api.post("/events", json={"type": "invoice.sent", "data": {"n": 1}}, headers=headers)
    response = api.post("/events", json={"type": "invoice.sent", "data": {"n": 2}}, headers=headers)
    body = assert_problem(response, 409, "idempotency-conflict")
    assert body["code"] == "idempotency_conflict"
    assert db.session.query(Event).count() == 1


def test_idempotency_keys_are_per_tenant(api, other_api):
    headers = {"Idempotency-Key": "shared"}
    mine = api.post("/events", json={"type": "invoice.sent", "data": {}}, headers=headers)
    theirs = other_api.post("/events", json={"type": "invoice.sent", "data": {}}, headers=headers)
    assert mine.get_json()["id"] != theirs.get_json()["id"]


def test_idempotency_key_too_long_is_422(api):
    response = api.post(
        "/events", json={"type": "invoice.sent", "data": {}}, headers={"Idempotency-Key": "k" * 256}
    )
    assert "Idempotency-Key" in assert_problem(response, 422, "validation-error")["errors"]


def test_publish_unknown_type_is_422(api):
    response = api.post("/events", json={"type": "nope.nothing", "data": {}})
    body = assert_problem(response, 422, "unknown-event-type")
    assert "type" in body["errors"]


def test_publish_data_breaking_the_type_schema_is_422(api):
    response = api.post("/events", json={"type": "invoice.created", "data": {"amount": 1}})
    body = assert_problem(response, 422, "invalid-payload")
    assert "invoice_id" in body["detail"]
    assert db.session.query(Event).count() == 0


def test_publish_missing_or_non_object_data_is_422(api):
    assert (
        "data"
        in assert_problem(
            api.post("/events", json={"type": "invoice.sent"}), 422, "validation-error"
        )["errors"]
    )
    assert (
        "data"
        in assert_problem(
            api.post("/events", json={"type": "invoice.sent", "data": [1]}), 422, "validation-error"
        )["errors"]
    )


def test_publish_over_the_payload_limit_is_413(api, app):
    filler = "x" * (app.config["HOOKLINE_MAX_PAYLOAD_BYTES"] + 1)
    response = api.post("/events", json={"type": "invoice.sent", "data": {"filler": filler}})
    assert_problem(response, 413, "payload-too-large")
    assert db.session.query(Event).count() == 0


def test_archived_custom_type_cannot_be_published(api):
    api.post("/event-types", json={"name": "order.shipped"})
    assert api.post("/events", json={"type": "order.shipped", "data": {}}).status_code == 202
    api.delete("/event-types/order.shipped")
    response = api.post("/events", json={"type": "order.shipped", "data": {}})
    assert_problem(response, 422, "archived-event-type")


def test_list_pages_newest_first_and_filters_by_type(api):
    ids = []
    for n in range(5):
        kind = "invoice.sent" if n % 2 else "invoice.finalized"
        ids.append(api.post("/events", json={"type": kind, "data": {"n": n}}).get_json()["id"])
    first = api.get("/events?limit=3").get_json()
    second = api.get(f"/events?limit=3&cursor={first['next_cursor']}").get_json()
    assert [e["id"] for e in first["data"] + second["data"]] == ids[::-1]
    assert second["next_cursor"] is None
    sent = api.get("/events?type=invoice.sent").get_json()["data"]
    assert [e["id"] for e in sent] == [ids[3], ids[1]]


def test_list_refuses_bad_arguments(api):
    assert "limit" in assert_problem(api.get("/events?limit=-1"), 422, "validation-error")["errors"]
    assert (
        "cursor"
        in assert_problem(api.get("/events?cursor=" + "x" * 100), 422, "validation-error")["errors"]
    )
    assert (
        "colour" in assert_problem(api.get("/events?colour=red"), 422, "validation-error")["errors"]
    )


def test_get_event_and_unknown_event(api):
    make_subscription(api.tenant_id, "http://127.0.0.1:9/all")
    created = api.post("/events", json={"type": "invoice.sent", "data": {"a": 1}}).get_json()
    response = api.get(f"/events/{created['id']}")
    assert response.status_code == 200 and response.get_json() == created
    assert_problem(api.get("/events/evt_01J000000000000000000000"), 404, "not-found")


def test_concurrent_publishes_with_one_key_make_one_event(app, api):
    """Racing retries of one publish (a client timing out and retrying) still make one event."""
    make_subscription(api.tenant_id, "http://127.0.0.1:9/all")
    headers = {"Authorization": f"Bearer {api.key}", "Idempotency-Key": "race"}
    body = {"type": "invoice.sent", "data": {"n": 1}}
    start = threading.Barrier(6)
    results: list[tuple[int, str]] = []

    def publish() -> None:
        client = app.test_client()
        start.wait()
        response = client.post(API_PREFIX + "/events", json=body, headers=headers)
        results.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [202] * 6
    assert len({event_id for _, event_id in results}) == 1
    db.session.expire_all()
    assert db.session.query(Event).count() == 1
    assert db.session.query(Delivery).count() == 1
