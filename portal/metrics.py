"""/metrics for Prometheus: the workers' counters, and the state of the outbox at scrape time.

Counters and the latency histogram are recorded where attempts happen (dispatcher.metrics). With
PROMETHEUS_MULTIPROC_DIR set for gunicorn and the workers on a host, each process writes its
figures to that directory and this view adds them up; without it the process's own registry is
served (one process, development, tests). The gauges are not kept in any process: they are
read from the database and Redis at each scrape, so every scraper sees the same truth however
many processes there are. `python -m portal.metrics` serves the directory alone, for hosts that
run workers but no web process.

/metrics needs no login: keep it off the public ingress (docs/operations.md).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from datetime import timedelta

import redis
from flask import Blueprint, Flask, Response, request
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

import dispatcher.metrics  # noqa: F401  (defines the counters, so a scrape shows them at 0)
from dispatcher import clock, health, queues
from dispatcher.claims import due_filter
from dispatcher.health import STATES
from dispatcher.settings import get_settings
from dispatcher.states import DeliveryStatus
from dispatcher.store import db
from portal.models import Delivery, Subscription
from portal.services import stats

bp = Blueprint("metrics", __name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Counts stop at this many rows, so a scrape during a huge backlog stays cheap; the oldest-due
# age still tells how far behind the workers are.
COUNT_CAP = 100_000
OVERDUE_AFTER = timedelta(seconds=60)


def _capped_count(*conditions) -> int:
    rows = select(Delivery.id).where(*conditions).limit(COUNT_CAP).subquery()
    return db.session.scalar(select(func.count()).select_from(rows)) or 0


class OutboxCollector(Collector):
    """Gauges computed at scrape time from the database (the outbox) and the RQ queues."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "hookline_state_up",
            "1 when the scrape could read this source, 0 when it could not.",
            labels=["source"],
        )
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except SQLAlchemyError:
            db.session.rollback()
            up.add_metric(["database"], 0)
        try:
            yield from self._queues()
            up.add_metric(["redis"], 1)
        except redis.RedisError:
            up.add_metric(["redis"], 0)
        yield up

    def _database(self) -> Iterator[Metric]:
        now = clock.now()
        # Deliveries their endpoint's breaker or Retry-After holds back are waiting by design,
        # not behind: they show as hookline_endpoints{state} instead.
        held = select(Subscription.id).where(health.unhealthy(now))
        due = (*due_filter(now), Delivery.subscription_id.not_in(held))
        overdue_after = max(OVERDUE_AFTER, timedelta(seconds=4 * get_settings().sweep_interval))
        oldest = db.session.scalar(select(func.min(Delivery.next_attempt_at)).where(*due))
        in_flight = (Delivery.status == DeliveryStatus.PENDING, Delivery.lease_expires_at >= now)
        figures = [
            (
                "hookline_deliveries_due",
                "Deliveries due now that no worker holds (due but not yet taken from the "
                f"outbox); counted up to {COUNT_CAP}.",
                _capped_count(*due),
            ),
            (
                "hookline_deliveries_overdue",
                f"Due deliveries no worker has taken for over {int(overdue_after.total_seconds())}"
                " s: the workers are behind or stopped.",
                _capped_count(*due, Delivery.next_attempt_at < now - overdue_after),
            ),
            (
                "hookline_oldest_due_delivery_age_seconds",
                "How long the oldest due, unheld delivery has waited (0 when none waits).",
                max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            ),
            (
                "hookline_deliveries_in_flight",
                "Pending deliveries a worker holds a lease on right now.",
                _capped_count(*in_flight),
            ),
            (
                "hookline_endpoints_disabled",
                "Endpoints that are disabled (by an admin, a 410 Gone, or failing too long).",
                db.session.scalar(select(func.count()).where(Subscription.is_active.is_(False))),
            ),
            (
                "hookline_endpoints_failing",
                "Active endpoints with no success since their attempts began to fail "
                "(failing_since is set: the auto-disable clock); see also hookline_endpoints.",
                db.session.scalar(
                    select(func.count()).where(
                        Subscription.is_active.is_(True), Subscription.failing_since.is_not(None)
                    )
                ),
            ),
        ]
        states = stats.endpoint_states(now)
        db.session.rollback()  # end the read transaction: no snapshot held between scrapes
        for name, documentation, value in figures:
            yield GaugeMetricFamily(name, documentation, value=float(value or 0))
        by_health = GaugeMetricFamily(
            "hookline_endpoints",
            "Active endpoints by health: healthy, failing (circuit breaker open) or throttled "
            "(paused by the receiver's Retry-After).",
            labels=["state"],
        )
        for state in STATES:
            by_health.add_metric([state], float(states[state]))
        yield by_health

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "hookline_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        scheduled = GaugeMetricFamily(
            "hookline_queue_scheduled_jobs",
            "Jobs on RQ's scheduler for each queue (retry drains waiting for their time).",
            labels=["queue"],
        )
        for priority in (True, False):
            queue = queues.get_queue(priority)
            label = "priority" if priority else "deliveries"
            depth.add_metric([label], queue.count)
            scheduled.add_metric([label], queue.scheduled_job_registry.get_job_count(cleanup=False))
        yield depth
        yield scheduled


class _ProcessRegistry(Collector):
    """This process's own metrics (no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def recorded_metrics(registry: CollectorRegistry) -> None:
    """Add the counters and histograms: every process's when PROMETHEUS_MULTIPROC_DIR is set."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessRegistry())


@bp.get("/metrics")
def scrape() -> Response:
    """Prometheus text (or OpenMetrics, if the scraper asks): internal, not for the internet."""
    registry = CollectorRegistry(auto_describe=False)
    recorded_metrics(registry)
    registry.register(OutboxCollector())
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), headers={"Content-Type": content_type})


def init_app(app: Flask) -> None:
    """Serve /metrics (no authentication, no CSRF: it only reads)."""
    app.register_blueprint(bp)


def main(argv: list[str] | None = None) -> None:
    """Serve the multiprocess directory's counters on a port (a worker-only host's exporter)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=9464)
    parser.add_argument("--bind", default="127.0.0.1")
    args = parser.parse_args(argv)
    if not os.environ.get(MULTIPROC_ENV):
        parser.error(f"set {MULTIPROC_ENV} to the directory the workers on this host write to")
    registry = CollectorRegistry(auto_describe=False)
    recorded_metrics(registry)
    start_http_server(args.port, addr=args.bind, registry=registry)
    print(f"serving the workers' metrics on http://{args.bind}:{args.port}/metrics", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
