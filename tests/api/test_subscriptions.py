"""/subscriptions: endpoints and everything done to one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from tests.api.conftest import assert_problem
from tests.receiver import Reply
from tests.support import configure

SUBSCRIPTION_FIELDS = {
    "id",
    "url",
    "events",
    "description",
    "headers",
    "rate_limit",
    "data_filter",
    "signature_scheme",
    "public_key",
    "is_active",
    "disabled_reason",
    "health",
    "created_at",
    "updated_at",
}


def create(api, url="http://127.0.0.1:9/hook", **fields):
    response = api.post("/subscriptions", json={"url": url, "events": ["*"], **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_returns_the_secret_once(api):
    response = api.post(
        "/subscriptions",
        json={
            "url": "http://127.0.0.1:9/hook",
            "events": ["invoice.*", "payment.succeeded"],
            "description": "billing",
            "headers": {"X-Team": "billing"},
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == SUBSCRIPTION_FIELDS | {"secret"}
    assert body["id"].startswith("sub_") and body["secret"].startswith("whsec_")
    assert body["events"] == ["invoice.*", "payment.succeeded"]
    assert body["is_active"] is True and body["created_at"].endswith("Z")
    assert response.headers["Location"].endswith(f"/subscriptions/{body['id']}")
    read = api.get(f"/subscriptions/{body['id']}").get_json()
    assert set(read) == SUBSCRIPTION_FIELDS


def test_create_with_a_supplied_secret_keeps_it(api):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwk6Zr5bQ1Ms8="
    assert create(api, secret=secret)["secret"] == secret


def test_create_refuses_unknown_event_types(api):
    response = api.post("/subscriptions", json={"url": "http://127.0.0.1:9/", "events": ["nope.x"]})
    body = assert_problem(response, 422, "validation-error")
    assert "events" in body["errors"]


def test_create_refuses_missing_fields(api):
    body = assert_problem(api.post("/subscriptions", json={}), 422, "validation-error")
    assert set(body["errors"]) == {"url", "events"}


def test_create_refuses_a_bad_url(api):
    body = assert_problem(
        api.post("/subscriptions", json={"url": "ftp://example.com/x", "events": ["*"]}),
        422,
        "url-refused",
    )
    assert "url" in body["errors"]


def test_create_refuses_private_targets_when_not_allowed(api, app):
    configure(app, HOOKLINE_ALLOW_PRIVATE_TARGETS=False)
    for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest", "http://10.0.0.1/"):
        response = api.post("/subscriptions", json={"url": url, "events": ["*"]})
        assert_problem(response, 422, "url-refused")


def test_create_refuses_reserved_headers_and_bad_secrets(api):
    response = api.post(
        "/subscriptions",
        json={"url": "http://127.0.0.1:9/", "events": ["*"], "headers": {"webhook-id": "x"}},
    )
    assert_problem(response, 422, "validation-error")
    response = api.post(
        "/subscriptions", json={"url": "http://127.0.0.1:9/", "events": ["*"], "secret": "nope"}
    )
    assert "secret" in assert_problem(response, 422, "validation-error")["errors"]


def test_list_pages_newest_first(api):
    ids = [create(api, url=f"http://127.0.0.1:9/{n}")["id"] for n in range(5)]
    first = api.get("/subscriptions?limit=2").get_json()
    assert [s["id"] for s in first["data"]] == ids[:-3:-1]
    seen = [s["id"] for s in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get(f"/subscriptions?limit=2&cursor={cursor}").get_json()
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    assert "secret" not in first["data"][0]


def test_list_refuses_a_bad_limit(api):
    for limit in ("0", "101", "ten"):
        body = assert_problem(api.get(f"/subscriptions?limit={limit}"), 422, "validation-error")
        assert "limit" in body["errors"]


def test_get_unknown_is_404(api):
    assert_problem(api.get("/subscriptions/sub_01J000000000000000000000"), 404, "not-found")


def test_patch_changes_only_the_given_fields(api):
    sub = create(api, description="old")
    response = api.patch(
        f"/subscriptions/{sub['id']}", json={"description": "new", "events": ["invoice.paid"]}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["description"] == "new" and body["events"] == ["invoice.paid"]
    assert body["url"] == sub["url"]


def test_patch_is_active_false_disables_and_true_enables(api):
    sub = create(api)
    body = api.patch(f"/subscriptions/{sub['id']}", json={"is_active": False}).get_json()
    assert body["is_active"] is False and body["disabled_reason"]
    body = api.patch(f"/subscriptions/{sub['id']}", json={"is_active": True}).get_json()
    assert body["is_active"] is True and body["disabled_reason"] is None


def test_patch_validation_error_changes_nothing(api):
    sub = create(api, description="kept")
    response = api.patch(
        f"/subscriptions/{sub['id']}", json={"description": "changed", "events": ["nope.x"]}
    )
    assert_problem(response, 422, "validation-error")
    assert api.get(f"/subscriptions/{sub['id']}").get_json()["description"] == "kept"
    response = api.patch(f"/subscriptions/{sub['id']}", json={"is_active": "yes"})
    assert "is_active" in assert_problem(response, 422, "validation-error")["errors"]


def test_patch_unknown_is_404(api):
    response = api.patch("/subscriptions/sub_missing", json={"description": "x"})
    assert_problem(response, 404, "not-found")


def test_delete_removes_it(api):
    sub = create(api)
    assert api.delete(f"/subscriptions/{sub['id']}").status_code == 204
    assert_problem(api.get(f"/subscriptions/{sub['id']}"), 404, "not-found")
    assert_problem(api.delete(f"/subscriptions/{sub['id']}"), 404, "not-found")


def test_secret_reveal_returns_the_created_secret(api):
    sub = create(api)
    response = api.get(f"/subscriptions/{sub['id']}/secret")
    assert response.status_code == 200
    assert response.get_json() == {"secret": sub["secret"]}
    assert_problem(api.get("/subscriptions/sub_missing/secret"), 404, "not-found")


def test_rotate_secret_gives_a_new_secret_and_a_grace_period(api):
    sub = create(api)
    response = api.post(
        f"/subscriptions/{sub['id']}/rotate-secret", json={"grace_period_seconds": 60}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["secret"] != sub["secret"] and body["secret"].startswith("whsec_")
    expires = datetime.fromisoformat(body["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=50) < expires - datetime.now(UTC) <= timedelta(seconds=61)
    assert api.get(f"/subscriptions/{sub['id']}/secret").get_json()["secret"] == body["secret"]


def test_rotate_secret_without_a_body_uses_the_default_grace(api):
    sub = create(api)
    body = api.post(f"/subscriptions/{sub['id']}/rotate-secret").get_json()
    expires = datetime.fromisoformat(body["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)


def test_rotate_secret_refuses_a_grace_over_seven_days(api):
    sub = create(api)
    response = api.post(
        f"/subscriptions/{sub['id']}/rotate-secret", json={"grace_period_seconds": 700_000}
    )
    assert "grace_period_seconds" in assert_problem(response, 422, "validation-error")["errors"]
    assert_problem(api.post("/subscriptions/sub_missing/rotate-secret"), 404, "not-found")


def test_send_test_delivers_a_signed_test_event(api, receiver, run_worker):
    sub = create(api, url=receiver.url("/hook"))
    response = api.post(f"/subscriptions/{sub['id']}/test")
    assert response.status_code == 202
    delivery_id = response.get_json()["delivery_id"]
    run_worker()
    (got,) = receiver.wait_for(1)
    Webhook(sub["secret"]).verify(got.body, got.headers)
    assert got.json["type"] == "webhook.test"
    delivery = api.get(f"/deliveries/{delivery_id}").get_json()
    assert delivery["status"] == "succeeded" and delivery["is_test"] is True
    assert [a["trigger"] for a in delivery["attempts"]] == ["test"]


def test_send_test_with_an_example_of_another_type(api, receiver, run_worker):
    sub = create(api, url=receiver.url("/hook"))
    response = api.post(f"/subscriptions/{sub['id']}/test", json={"event_type": "invoice.paid"})
    assert response.status_code == 202
    run_worker()
    (got,) = receiver.wait_for(1)
    assert got.json["type"] == "invoice.paid" and got.json["data"]["invoice_id"]


def test_send_test_refuses_an_unknown_type(api):
    sub = create(api)
    response = api.post(f"/subscriptions/{sub['id']}/test", json={"event_type": "no.such"})
    assert "event_type" in assert_problem(response, 422, "validation-error")["errors"]
    assert_problem(api.post("/subscriptions/sub_missing/test"), 404, "not-found")


def test_recover_requeues_failed_deliveries(api, app, receiver, run_worker):
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
    receiver.script("/hook", Reply(status=500))
    sub = create(api, url=receiver.url("/hook"))
    api.post("/events", json={"type": "invoice.sent", "data": {"n": 1}})
    run_worker()
    receiver.wait_for(1)
    assert api.get("/deliveries?status=failed").get_json()["data"]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = api.post(f"/subscriptions/{sub['id']}/recover", json={"since": since})
    assert response.status_code == 202 and response.get_json() == {"queued": 1}
    run_worker()
    receiver.wait_for(2)
    (delivery,) = api.get("/deliveries").get_json()["data"]
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 2


def test_recover_needs_since(api):
    sub = create(api)
    body = assert_problem(
        api.post(f"/subscriptions/{sub['id']}/recover", json={}), 422, "validation-error"
    )
    assert "since" in body["errors"]
    response = api.post(
        "/subscriptions/sub_missing/recover", json={"since": "2024-01-01T00:00:00Z"}
    )
    assert_problem(response, 404, "not-found")


def test_stats_count_the_last_day(api, receiver, run_worker):
    receiver.script("/hook", Reply(status=200), Reply(status=200), Reply(status=400))
    sub = create(api, url=receiver.url("/hook"))
    api.post(f"/subscriptions/{sub['id']}/test")
    for n in range(3):
        api.post("/events", json={"type": "invoice.sent", "data": {"n": n}})
    run_worker()
    receiver.wait_for(4)
    response = api.get(f"/subscriptions/{sub['id']}/stats")
    assert response.status_code == 200
    stats = response.get_json()
    assert stats["total"] == 3  # the test delivery is not counted
    assert (
        stats["counts"]["succeeded"] + stats["counts"]["pending"] + stats["counts"]["failed"] == 3
    )
    assert stats["latency_ms"]["samples"] >= 2
    assert stats["latency_ms"]["p50"] <= stats["latency_ms"]["p99"]
    assert 0 <= stats["success_rate"] <= 1
    assert_problem(api.get("/subscriptions/sub_missing/stats"), 404, "not-found")
