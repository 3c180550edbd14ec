"""/metrics: the workers' counters and the outbox gauges move with real deliveries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from dispatcher import publish
from portal import create_app
from portal.extensions import db
from portal.services import subscriptions as subscription_service
from tests.conftest import TEST_CONFIG
from tests.factories import make_subscription, make_tenant
from tests.hardening.conftest import close_app, scrape, value
from tests.receiver import Reply

ROOT = Path(__file__).resolve().parents[2]


def _two_endpoints(receiver) -> tuple[str, str, str]:
    """A tenant with an endpoint that answers 200 and one that answers 500."""
    tenant = make_tenant()
    receiver.script("/fail", default=Reply(status=500))
    ok, _ = make_subscription(tenant.id, receiver.url("/ok"))
    failing, _ = make_subscription(tenant.id, receiver.url("/fail"))
    return tenant.id, ok.id, failing.id


def _publish(tenant_id: str, count: int) -> None:
    for n in range(count):
        publish("invoice.paid", {"invoice_id": f"inv_{n}"}, tenant_id=tenant_id)
    db.session.commit()


def test_metrics_figures_move_after_publish_and_delivery(app, client, receiver, run_worker):
    tenant_id, _, failing_id = _two_endpoints(receiver)
    before = scrape(client)

    _publish(tenant_id, 2)
    queued = scrape(client)
    assert value(queued, "hookline_deliveries_due") == 4
    assert value(queued, "hookline_queue_depth", queue="deliveries") == 1

    run_worker()
    receiver.wait_for(4)
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("hookline_deliveries_total", outcome="succeeded") == 2
    assert moved("hookline_deliveries_total", outcome="retrying") == 2
    assert moved("hookline_deliveries_total", outcome="failed") == 0
    assert moved("hookline_attempts_total", result="2xx") == 2
    assert moved("hookline_attempts_total", result="5xx") == 2
    assert moved("hookline_attempt_duration_seconds_count") == 4
    assert moved("hookline_attempt_duration_seconds_sum") > 0
    assert value(after, "hookline_deliveries_due") == 0
    assert value(after, "hookline_queue_depth", queue="deliveries") == 0
    assert value(after, "hookline_queue_scheduled_jobs", queue="deliveries") == 1  # the retries
    assert value(after, "hookline_endpoints_failing") == 1
    assert value(after, "hookline_endpoints_disabled") == 0

    subscription_service.set_active(tenant_id, failing_id, False)
    db.session.commit()
    assert value(scrape(client), "hookline_endpoints_disabled") == 1


def test_last_failed_attempt_counts_as_failed(app, client, receiver, run_worker):
    app.config["HOOKLINE_RETRY_SCHEDULE"] = []
    tenant_id, _, _ = _two_endpoints(receiver)
    before = scrape(client)
    _publish(tenant_id, 1)
    run_worker()
    after = scrape(client)
    for outcome, expected in (("succeeded", 1), ("failed", 1), ("retrying", 0)):
        moved = value(after, "hookline_deliveries_total", outcome=outcome) - value(
            before, "hookline_deliveries_total", outcome=outcome
        )
        assert moved == expected, outcome


def test_deliveries_no_worker_takes_become_overdue(app, client, receiver, clock):
    tenant_id, _, _ = _two_endpoints(receiver)
    _publish(tenant_id, 3)
    fresh = scrape(client)
    assert value(fresh, "hookline_deliveries_due") == 6
    assert value(fresh, "hookline_deliveries_overdue") == 0

    clock.advance(minutes=2)
    late = scrape(client)
    assert value(late, "hookline_deliveries_overdue") == 6
    assert value(late, "hookline_oldest_due_delivery_age_seconds") >= 120


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_metrics_still_answer_when_redis_is_down(test_env):
    app = create_app({**TEST_CONFIG, "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"})
    try:
        samples = scrape(app.test_client())
    finally:
        close_app(app)
    with app.app_context():
        db.engine.dispose()  # an undisposed pool warns when collected, failing a later test
    assert value(samples, "hookline_state_up", source="redis") == 0
    assert value(samples, "hookline_state_up", source="database") == 1
    assert ("hookline_deliveries_due", ()) in samples


def test_worker_processes_figures_reach_metrics_through_the_multiprocess_dir(
    app, client, receiver, tmp_path, monkeypatch
):
    tenant_id, _, _ = _two_endpoints(receiver)
    _publish(tenant_id, 3)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "FLASK_APP": "wsgi.py"}
    subprocess.run(
        [sys.executable, "-m", "flask", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert list(tmp_path.glob("counter_*.db")), "the worker wrote no metric files"

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    # Only the worker process wrote to the directory, so these are exactly its figures.
    assert value(samples, "hookline_deliveries_total", outcome="succeeded") == 3
    assert value(samples, "hookline_deliveries_total", outcome="retrying") == 3
    assert value(samples, "hookline_attempt_duration_seconds_count") == 6
    assert value(samples, "hookline_deliveries_due") == 0
