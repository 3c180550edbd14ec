"""/metrics: the workers' counters and the outbox gauges move with real deliveries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from dispatcher import health, publish
from dispatcher.health import STATES
from portal import create_app
from portal.extensions import db
from portal.models import Subscription
from portal.services import stats
from portal.services import subscriptions as subscription_service
from tests.conftest import TEST_CONFIG
from tests.factories import make_subscription, make_tenant, set_health
from tests.hardening.conftest import close_app, scrape, value
from tests.receiver import Reply
from tests.support import configure

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
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])
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


def test_deliveries_a_breaker_holds_back_are_not_overdue(app, client, receiver, clock):
    """Waiting for a failing endpoint's pause is by design: it shows as the endpoint's state."""
    tenant_id, _, failing_id = _two_endpoints(receiver)
    _publish(tenant_id, 3)
    set_health(
        failing_id,
        circuit_opened_at=clock.now(),
        paused_until=clock.now() + timedelta(minutes=5),
        consecutive_failures=5,
    )
    clock.advance(minutes=2)
    late = scrape(client)
    assert value(late, "hookline_deliveries_due") == 3  # the healthy endpoint's only
    assert value(late, "hookline_deliveries_overdue") == 3
    assert value(late, "hookline_endpoints", state="failing") == 1


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


# --- endpoint health ----------------------------------------------------------------------------


def _health_gauge(samples: dict) -> dict[str, float]:
    return {state: value(samples, "hookline_endpoints", state=state) for state in STATES}


def test_endpoint_health_gauge_exports_every_state_even_at_zero(app, client):
    samples = scrape(client)
    for state in STATES:
        assert ("hookline_endpoints", (("state", state),)) in samples
    assert _health_gauge(samples) == {"healthy": 0, "failing": 0, "throttled": 0}


def test_endpoint_health_gauge_counts_active_endpoints_of_every_tenant_by_state(app, client, clock):
    now = clock.now()
    first, second = make_tenant("First"), make_tenant("Second")

    def endpoint(tenant_id: str, **health) -> str:
        sub, _ = make_subscription(tenant_id, "http://127.0.0.1:9/hook")
        if health:
            set_health(sub.id, **health)
        return sub.id

    endpoint(first.id)
    endpoint(second.id, consecutive_failures=2, last_error="HTTP 500")  # breaker still closed
    endpoint(first.id, paused_until=now - timedelta(seconds=1))  # a pause that is over
    endpoint(first.id, consecutive_failures=5, circuit_opened_at=now)
    endpoint(
        second.id,
        consecutive_failures=6,
        circuit_opened_at=now - timedelta(minutes=1),
        paused_until=now + timedelta(seconds=30),
    )
    endpoint(second.id, paused_until=now + timedelta(seconds=60))
    off = endpoint(first.id, consecutive_failures=9, circuit_opened_at=now)
    subscription_service.set_active(first.id, off, False)
    db.session.commit()

    samples = scrape(client)
    assert _health_gauge(samples) == {"healthy": 3, "failing": 2, "throttled": 1}
    assert value(samples, "hookline_endpoints_disabled") == 1

    clock.advance(seconds=61)  # the Retry-After pause ends; open breakers stay open
    assert _health_gauge(scrape(client)) == {"healthy": 4, "failing": 2, "throttled": 0}


def test_endpoint_health_counts_agree_with_describe_on_every_row(app, clock):
    """The SQL that narrows which rows are read must never hide one describe() calls unhealthy."""
    now = clock.now()
    tenant = make_tenant()
    moments = (None, now - timedelta(seconds=5), now + timedelta(seconds=5))
    for opened in (None, now - timedelta(minutes=1)):
        for paused in moments:
            for failures in (0, 3):
                sub, _ = make_subscription(tenant.id, "http://127.0.0.1:9/hook")
                set_health(
                    sub.id,
                    circuit_opened_at=opened,
                    paused_until=paused,
                    consecutive_failures=failures,
                )
    rows = db.session.scalars(select(Subscription)).all()
    expected = Counter(health.describe(row, now).state for row in rows)
    assert stats.endpoint_states(now) == {state: expected[state] for state in STATES}
    listed = stats.unhealthy_endpoints(tenant.id, now)
    assert len(listed) == expected["failing"] + expected["throttled"]
    assert [item.health.state for item in listed] == sorted(
        (item.health.state for item in listed), key=STATES.index
    )
