"""The wire contract over real loopback HTTP, verified by the standard libraries."""

from __future__ import annotations

import json

import svix.webhooks
from sqlalchemy import select
from standardwebhooks import Webhook

from dispatcher import publish
from portal.extensions import db
from portal.models import Attempt, Delivery
from tests.factories import make_subscription, make_tenant
from tests.receiver import Reply
from tests.support import configure


def verify_both(secret: str, received) -> None:
    """Every delivery must pass both standard verifiers unchanged."""
    Webhook(secret).verify(received.body, received.headers)
    svix.webhooks.Webhook(secret).verify(received.body, received.headers)


def test_delivery_body_and_headers_follow_the_wire_contract(app, receiver, run_worker):
    tenant = make_tenant()
    _, secret = make_subscription(tenant.id, receiver.url(), events=["invoice.*"])
    event = publish(
        "invoice.created", {"invoice_id": "inv_123", "amount": 100.0}, tenant_id=tenant.id
    )
    event_id, created = event.id, event.created_at
    db.session.commit()
    run_worker()

    (got,) = receiver.wait_for(1)
    verify_both(secret, got)
    assert (
        got.body
        == json.dumps(
            {
                "id": event_id,
                "type": "invoice.created",
                "timestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "tenant_id": tenant.id,
                "data": {"invoice_id": "inv_123", "amount": 100.0},
            },
            separators=(",", ":"),
        ).encode()
    )
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("Hookline/")
    assert headers["webhook-id"] == headers["x-webhook-event-id"] == event_id
    assert headers["webhook-timestamp"] == headers["x-webhook-timestamp"]
    assert headers["webhook-signature"] == headers["x-webhook-signature"]
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["x-webhook-event-type"] == "invoice.created"
    assert headers["x-webhook-attempt"] == "1"


def test_successful_delivery_is_recorded_with_its_attempt(app, receiver, run_worker):
    tenant = make_tenant()
    receiver.script("/hook", Reply(status=202, body=b'{"ok":true}', headers={"X-Seen": "1"}))
    make_subscription(tenant.id, receiver.url())
    publish("user.created", {"user_id": "usr_1", "email": "a@example.com"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    delivery = db.session.scalar(select(Delivery))
    assert delivery.status == "succeeded"
    assert delivery.attempt_count == 1
    assert delivery.last_response_status == 202
    attempt = db.session.scalar(select(Attempt))
    assert attempt.number == 1 and attempt.trigger == "auto"
    assert attempt.response_status == 202
    assert attempt.response_body == '{"ok":true}'
    assert attempt.response_headers["X-Seen"] == "1"
    assert attempt.request_headers["webhook-id"] == delivery.event_id
    assert attempt.response_truncated is False
    assert attempt.error is None


def test_fan_out_reaches_every_matching_active_subscription_only(app, receiver, run_worker):
    tenant = make_tenant()
    other = make_tenant("Other")
    _, s_all = make_subscription(tenant.id, receiver.url("/all"), events=["*"])
    _, s_group = make_subscription(tenant.id, receiver.url("/group"), events=["invoice.*"])
    _, s_name = make_subscription(tenant.id, receiver.url("/name"), events=["invoice.paid"])
    make_subscription(tenant.id, receiver.url("/wrong"), events=["payment.*"])
    make_subscription(other.id, receiver.url("/other-tenant"), events=["*"])
    inactive, _ = make_subscription(tenant.id, receiver.url("/inactive"), events=["*"])
    inactive.is_active = False
    db.session.commit()

    publish("invoice.paid", {"invoice_id": "inv_9"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    receiver.wait_for(3)
    paths = sorted(r.path for r in receiver.received())
    assert paths == ["/all", "/group", "/name"]
    for path, secret in (("/all", s_all), ("/group", s_group), ("/name", s_name)):
        verify_both(secret, receiver.received(path)[0])


def test_custom_headers_are_sent_but_cannot_override_ours(app, receiver, run_worker):
    tenant = make_tenant()
    sub, secret = make_subscription(tenant.id, receiver.url(), headers={"X-Team": "billing"})
    # A header smuggled past validation (an old row, a direct DB edit) still cannot override.
    sub.headers = {"X-Team": "billing", "webhook-id": "forged", "Content-Type": "text/plain"}
    db.session.commit()
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    (got,) = receiver.wait_for(1)
    verify_both(secret, got)
    assert got.headers["X-Team"] == "billing"
    assert got.headers["webhook-id"] != "forged"
    assert got.headers["Content-Type"] == "application/json"


def test_large_response_body_is_truncated_at_16_kib_and_flagged(app, receiver, run_worker):
    tenant = make_tenant()
    receiver.script("/hook", Reply(status=500, body=b"x" * 100_000))
    make_subscription(tenant.id, receiver.url())
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    attempt = db.session.scalar(select(Attempt))
    assert attempt.response_status == 500
    assert attempt.response_truncated is True
    assert len(attempt.response_body.encode()) == 16 * 1024


def test_redirects_are_not_followed_and_count_as_failure(app, receiver, run_worker):
    tenant = make_tenant()
    receiver.script("/hook", Reply(status=302, headers={"Location": receiver.url("/elsewhere")}))
    make_subscription(tenant.id, receiver.url())
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    assert [r.path for r in receiver.received()] == ["/hook"]
    delivery = db.session.scalar(select(Delivery))
    assert delivery.status == "pending"  # waiting for its first retry
    assert delivery.last_response_status == 302


def test_unreachable_endpoint_records_the_connection_error(app, run_worker):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tenant = make_tenant()
    make_subscription(tenant.id, f"http://127.0.0.1:{port}/closed")
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    attempt = db.session.scalar(select(Attempt))
    assert attempt.response_status is None
    assert "connect" in attempt.error.lower()


def test_slow_endpoint_hits_the_total_timeout(app, receiver, run_worker):
    configure(app, HOOKLINE_DELIVERY_TIMEOUT=1)
    tenant = make_tenant()
    receiver.script("/hook", Reply(delay=3))
    make_subscription(tenant.id, receiver.url())
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    attempt = db.session.scalar(select(Attempt))
    assert attempt.response_status is None
    assert "timed out" in attempt.error
    assert attempt.duration_ms < 2500


def test_a_slow_endpoint_holds_only_its_share_of_the_sending_threads(app, receiver, run_worker):
    """Its backlog is older than everyone else's work, yet the others go out at once."""
    configure(app, HOOKLINE_WORKER_CONCURRENCY=8, HOOKLINE_ENDPOINT_CONCURRENCY=2)
    tenant = make_tenant()
    receiver.script("/slow", default=Reply(delay=0.5))
    make_subscription(tenant.id, receiver.url("/slow"), events=["invoice.paid"])
    make_subscription(tenant.id, receiver.url("/fast"), events=["invoice.created"])
    for n in range(8):
        publish("invoice.paid", {"invoice_id": f"inv_{n}"}, tenant_id=tenant.id)
        db.session.commit()
    for n in range(6):
        publish("invoice.created", {"invoice_id": f"inv_{n}"}, tenant_id=tenant.id)
        db.session.commit()
    run_worker()

    slow, fast = receiver.received("/slow"), receiver.received("/fast")
    assert len(slow) == 8 and len(fast) == 6
    assert receiver.most_concurrent("/slow") == 2
    # every fast delivery went out while the first two slow requests were still unanswered
    assert max(r.at for r in fast) < slow[0].at + 0.5


def test_a_response_that_never_ends_is_cut_at_the_total_timeout(app, run_worker):
    """A receiver trickling headers forever must not hold a sending thread."""
    import socket
    import threading
    import time as _time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]

    def endless() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for n in range(50):  # bounded: at most 10 s
                _time.sleep(0.2)
                conn.sendall(f"X-Forever-{n}: 1\r\n".encode())
        except OSError:
            pass  # Hookline hung up, as it should
        finally:
            conn.close()

    thread = threading.Thread(target=endless, daemon=True)
    thread.start()
    configure(app, HOOKLINE_DELIVERY_TIMEOUT=1, HOOKLINE_RETRY_SCHEDULE=[])
    tenant = make_tenant()
    make_subscription(tenant.id, f"http://127.0.0.1:{port}/hook")
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    started = _time.monotonic()
    run_worker()
    thread.join(12)
    server.close()

    attempt = db.session.scalar(select(Attempt))
    assert "timed out" in attempt.error
    assert attempt.duration_ms < 2000
    assert _time.monotonic() - started < 8


def test_binary_response_body_is_stored_as_text_without_nul(app, receiver, run_worker):
    receiver.script(
        "/hook",
        Reply(status=500, body=bytes(range(256)) * 8, headers={"Content-Type": "image/png"}),
    )
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    attempt = db.session.scalar(select(Attempt))
    assert attempt.response_status == 500
    assert "\x00" not in attempt.response_body
    assert len(attempt.response_body) == 2048
