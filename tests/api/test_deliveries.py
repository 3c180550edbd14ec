"""/deliveries: the filterable log, detail with attempts, and manual retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from tests.api.conftest import assert_problem
from tests.factories import make_subscription
from tests.receiver import Reply
from tests.support import configure

ATTEMPT_FIELDS = {
    "number",
    "trigger",
    "started_at",
    "duration_ms",
    "request_headers",
    "response_status",
    "response_headers",
    "response_body",
    "response_truncated",
    "error",
}


def publish(api, event_type="invoice.sent", **data):
    response = api.post("/events", json={"type": event_type, "data": data})
    assert response.status_code == 202
    return response.get_json()


def test_detail_shows_each_attempt_request_and_response(api, receiver, run_worker):
    receiver.script("/hook", Reply(status=200, body=b"thanks", headers={"X-Seen": "yes"}))
    sub, _ = make_subscription(api.tenant_id, receiver.url("/hook"))
    event = publish(api, n=1)
    run_worker()
    receiver.wait_for(1)
    (summary,) = api.get("/deliveries").get_json()["data"]
    response = api.get(f"/deliveries/{summary['id']}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["event_id"] == event["id"] and body["subscription_id"] == sub.id
    assert body["event_type"] == "invoice.sent" and body["status"] == "succeeded"
    assert body["attempt_count"] == 1 and body["next_attempt_at"] is None
    (attempt,) = body["attempts"]
    assert set(attempt) == ATTEMPT_FIELDS
    assert attempt["number"] == 1 and attempt["trigger"] == "auto"
    assert attempt["response_status"] == 200 and attempt["response_body"] == "thanks"
    assert attempt["response_headers"]["X-Seen"] == "yes"
    assert attempt["request_headers"]["webhook-id"] == event["id"]
    assert attempt["error"] is None and attempt["response_truncated"] is False


def test_get_unknown_delivery_is_404(api):
    assert_problem(api.get("/deliveries/dlv_01J000000000000000000000"), 404, "not-found")


def test_filters_by_status_subscription_type_and_time(api, app, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/bad", default=Reply(status=500))
    good, _ = make_subscription(api.tenant_id, receiver.url("/good"))
    bad, _ = make_subscription(api.tenant_id, receiver.url("/bad"), events=["invoice.*"])
    publish(api, "invoice.sent")
    publish(api, "payment.refunded")
    run_worker()
    receiver.wait_for(3)

    def ids(query: str) -> set[str]:
        response = api.get("/deliveries" + query)
        assert response.status_code == 200, response.get_json()
        return {
            (d["subscription_id"], d["event_type"], d["status"])
            for d in response.get_json()["data"]
        }

    assert len(ids("")) == 3
    assert ids("?status=failed") == {(bad.id, "invoice.sent", "failed")}
    assert ids(f"?subscription_id={good.id}") == {
        (good.id, "invoice.sent", "succeeded"),
        (good.id, "payment.refunded", "succeeded"),
    }
    assert ids("?event_type=payment.refunded") == {(good.id, "payment.refunded", "succeeded")}
    assert ids(f"?subscription_id={good.id}&event_type=invoice.sent&status=succeeded") == {
        (good.id, "invoice.sent", "succeeded")
    }
    hour_ago = quote((datetime.now(UTC) - timedelta(hours=1)).isoformat())
    in_an_hour = quote((datetime.now(UTC) + timedelta(hours=1)).isoformat())
    assert len(ids(f"?since={hour_ago}&until={in_an_hour}")) == 3
    assert ids(f"?since={in_an_hour}") == set()
    assert ids(f"?until={hour_ago}") == set()


def test_list_pages_with_a_cursor(api):
    make_subscription(api.tenant_id, "http://127.0.0.1:9/a")
    for n in range(5):
        publish(api, n=n)
    first = api.get("/deliveries?limit=2").get_json()
    seen = [d["id"] for d in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get(f"/deliveries?limit=2&cursor={cursor}").get_json()
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)


def test_list_refuses_bad_filters(api):
    for query, field in (
        ("status=lost", "status"),
        ("since=yesterday", "since"),
        ("until=0001-01-01T00:00:00%2B05:00", "until"),
        ("limit=1000", "limit"),
    ):
        body = assert_problem(api.get(f"/deliveries?{query}"), 422, "validation-error")
        assert field in body["errors"], body
    body = assert_problem(
        api.get("/deliveries?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z"),
        422,
        "validation-error",
    )
    assert "since" in body["errors"]


def test_retry_sends_a_failed_delivery_again(api, app, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/hook", Reply(status=503))
    make_subscription(api.tenant_id, receiver.url("/hook"))
    publish(api)
    run_worker()
    receiver.wait_for(1)
    (failed,) = api.get("/deliveries?status=failed").get_json()["data"]
    response = api.post(f"/deliveries/{failed['id']}/retry")
    assert response.status_code == 202
    assert response.get_json()["status"] == "pending"
    run_worker()
    receiver.wait_for(2)
    body = api.get(f"/deliveries/{failed['id']}").get_json()
    assert body["status"] == "succeeded"
    assert [(a["number"], a["trigger"], a["response_status"]) for a in body["attempts"]] == [
        (1, "auto", 503),
        (2, "manual", 200),
    ]


def test_retry_of_a_disabled_endpoint_is_409(api):
    sub, _ = make_subscription(api.tenant_id, "http://127.0.0.1:9/a")
    publish(api)
    (delivery,) = api.get("/deliveries").get_json()["data"]
    api.patch(f"/subscriptions/{sub.id}", json={"is_active": False})
    body = assert_problem(api.post(f"/deliveries/{delivery['id']}/retry"), 409, "endpoint-disabled")
    assert body["code"] == "endpoint_disabled"


def test_retry_unknown_delivery_is_404(api):
    assert_problem(api.post("/deliveries/dlv_missing/retry"), 404, "not-found")
