"""Hookline as the bench runs it: the app, seeded tenants, a backlog of events, worker processes.

Workers are real `flask worker` processes with DATABASE_URL/REDIS_URL set; the bench process
only publishes (with `dispatcher.publish` and a commit, like any internal module) and reads the
database afterwards to time what the workers did.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from sqlalchemy import delete, func, select, update

from dispatcher import publish, queues
from portal import create_app
from portal.extensions import db
from portal.models import Attempt, Delivery, Event, Subscription
from portal.schema import upgrade
from portal.services import accounts, event_types
from portal.services import subscriptions as subscription_service
from tests.perf import payload
from tests.perf.infra import ROOT, child_pids, stop_process


def make_app(database_uri: str) -> Flask:
    """An app on `database_uri` (the rest of the settings come from the bench's environment)."""
    return create_app({"SQLALCHEMY_DATABASE_URI": database_uri, "TESTING": True})


def migrate(app: Flask) -> None:
    """Schema by the real migrations, plus the standard event types."""
    with app.app_context():
        upgrade()
        event_types.sync_standard_types()
        db.session.commit()
    # Alembic's logging config disables every logger that existed before it ran.
    logging.getLogger("bench").disabled = False


@dataclass
class Fleet:
    """One tenant whose subscription i listens to exactly the type `types[i]` at `urls[i]`."""

    tenant_id: str
    subscription_ids: list[str]
    types: list[str]
    urls: list[str]

    def ids_for(self, url: str) -> list[str]:
        return [s for s, u in zip(self.subscription_ids, self.urls, strict=True) if u == url]


def seed_fleet(app: Flask, name: str, urls: list[str], events: list[str] | None = None) -> Fleet:
    """A tenant with one subscription per url, each filtering its own bench type (or `events`)."""
    with app.app_context():
        tenant = accounts.create_tenant(name)
        types = payload.TYPE_NAMES[: len(urls)]
        for type_name in types:
            event_types.create_custom_type(tenant.id, type_name, "bench")
        ids = []
        for type_name, url in zip(types, urls, strict=True):
            subscription, _ = subscription_service.create(
                tenant.id, url=url, events=events or [type_name], description="bench"
            )
            ids.append(subscription.id)
        db.session.commit()
        return Fleet(tenant.id, ids, types, urls)


def publish_backlog(app: Flask, fleet: Fleet, count: int, batch: int = 100) -> None:
    """Publish `count` events round-robin over the fleet's types, `batch` per transaction."""
    data = payload.padded_data()
    with app.app_context():
        for start in range(0, count, batch):
            for i in range(start, min(start + batch, count)):
                publish(fleet.types[i % len(fleet.types)], data, tenant_id=fleet.tenant_id)
            db.session.commit()
        db.session.remove()


def reset_backlog(app: Flask, fleet: Fleet) -> int:
    """Put the fleet's deliveries back exactly as `publish()` wrote them, and kick a drain.

    Publishing goes through `publish()` once; repetitions replay the same backlog, because
    publishing thousands of events per repetition would dominate the bench's run time."""
    with app.app_context():
        scope = select(Delivery.id).where(Delivery.subscription_id.in_(fleet.subscription_ids))
        db.session.execute(delete(Attempt).where(Attempt.delivery_id.in_(scope)))
        count = db.session.execute(
            update(Delivery)
            .where(Delivery.subscription_id.in_(fleet.subscription_ids))
            .values(
                status="pending",
                attempt_count=0,
                next_attempt_at=Delivery.created_at,
                lease_expires_at=None,
                last_response_status=None,
                last_attempt_at=None,
                updated_at=Delivery.created_at,
            )
        ).rowcount
        db.session.commit()
        vacuum(app)
        queues.kick()  # what the publishing commit did
        db.session.remove()
    return count


def vacuum(app: Flask) -> None:
    """VACUUM ANALYZE the delivery tables on PostgreSQL, as autovacuum would in production.

    The bench's server may run with autovacuum off (CI's does), and each replay leaves every
    delivery row and attempt of the last run dead: left in place, they made each claim skip
    thousands of dead index entries, a cost production never pays."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in (
                "hookline_deliveries",
                "hookline_attempts",
                "hookline_events",
                "hookline_subscriptions",
            ):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


def trim_backlog(app: Flask, fleet: Fleet, keep_events: int) -> None:
    """Keep only the fleet's first `keep_events` events, with their deliveries and attempts."""
    with app.app_context():
        cutoff = db.session.scalar(
            select(Event.id)
            .where(Event.tenant_id == fleet.tenant_id)
            .order_by(Event.id)
            .offset(keep_events)
            .limit(1)
        )
        if cutoff is not None:
            doomed = select(Event.id).where(Event.tenant_id == fleet.tenant_id, Event.id >= cutoff)
            deliveries = select(Delivery.id).where(Delivery.event_id.in_(doomed))
            db.session.execute(delete(Attempt).where(Attempt.delivery_id.in_(deliveries)))
            db.session.execute(delete(Delivery).where(Delivery.event_id.in_(doomed)))
            db.session.execute(delete(Event).where(Event.id.in_(doomed)))
            db.session.commit()
        db.session.remove()


def clear_history(app: Flask, tenant_id: str) -> None:
    """Delete the tenant's attempts, deliveries and events (its subscriptions stay)."""
    with app.app_context():
        for model in (Attempt, Delivery, Event):
            db.session.execute(delete(model).where(model.tenant_id == tenant_id))
        db.session.commit()
        db.session.remove()


def repoint(app: Flask, subscription_ids: list[str], url: str) -> None:
    """Send those subscriptions' deliveries to `url` from now on (workers started later see it)."""
    with app.app_context():
        db.session.execute(
            update(Subscription).where(Subscription.id.in_(subscription_ids)).values(url=url)
        )
        db.session.commit()
        db.session.remove()


def publish_paced(
    app: Flask, fleet: Fleet, rate: float, count: int, max_seconds: float = 60.0
) -> list[tuple[str, float, float]]:
    """Publish and commit one event at a time, `rate` per second, for at most `count` events
    or `max_seconds`; returns (event id, unix time just before its publish() call, unix time
    its commit returned). Falls behind, never bursts, when publishing is slower than the rate."""
    data = payload.padded_data()
    sent: list[tuple[str, float, float]] = []
    with app.app_context():
        start = time.monotonic()
        for i in range(count):
            if time.monotonic() - start > max_seconds:
                break
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            published_at = time.time()
            event = publish(fleet.types[i % len(fleet.types)], data, tenant_id=fleet.tenant_id)
            db.session.commit()
            sent.append((event.id, published_at, time.time()))
        db.session.remove()
    return sent


@dataclass
class Workers:
    """`flask worker` processes started with the bench environment."""

    env: dict[str, str]
    logdir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, count: int) -> list[int]:
        for _ in range(count):
            log = open(self.logdir / "workers.log", "a")  # noqa: SIM115 (closed with the process)
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "flask", "worker"],
                    cwd=ROOT,
                    env={**os.environ, **self.env},
                    stdout=log,
                    stderr=log,
                )
            )
        return [p.pid for p in self.processes]

    def wait_ready(self, redis_url: str, timeout: float = 60.0) -> None:
        """Block until every started worker has registered with RQ (imports done, listening)."""
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(redis_url)
        deadline = time.monotonic() + timeout
        while Worker.count(connection=connection) < len(self.processes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {timeout:g} s; see workers.log")
            time.sleep(0.1)

    def rss_mb(self) -> list[dict[str, float]]:
        """Each worker's resident memory (VmRSS), and the proportional memory (PSS) of it with
        its children: RQ forks its scheduler into a child that shares most pages with it."""
        sizes = []
        for process in self.processes:
            family = [process.pid, *child_pids(process.pid)]
            sizes.append(
                {
                    "worker": _proc_mb(f"/proc/{process.pid}/status", "VmRSS:"),
                    "with_children": sum(
                        _proc_mb(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in family
                    ),
                }
            )
        return sizes

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (RQ finishes the drain in hand), SIGKILL after `grace` seconds."""
        for process in self.processes:
            stop_process(process, timeout=grace)
        self.processes.clear()


def _proc_mb(path: str, field: str) -> float:
    """A "<field> <n> kB" line of a /proc file, in MiB (0 if the process is gone)."""
    try:
        lines = Path(path).read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    kb = next((int(line.split()[1]) for line in lines if line.startswith(field)), 0)
    return kb / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far: the waited-for children
    from /proc/<pid>/stat, the live ones (RQ's scheduler) from their own stat files."""
    total_ticks = 0
    for number in [pid, *child_pids(pid)]:
        try:
            stat = Path(f"/proc/{number}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
        total_ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total_ticks / os.sysconf("SC_CLK_TCK")


def set_rate_limit(app: Flask, subscription_ids: list[str], rate: int | None) -> None:
    """`Subscription.rate_limit` (deliveries per second), set on the rows directly."""
    with app.app_context():
        db.session.execute(
            update(Subscription)
            .where(Subscription.id.in_(subscription_ids))
            .values(rate_limit=rate)
        )
        db.session.commit()
        db.session.remove()


def status_counts(app: Flask, subscription_ids: list[str]) -> dict[str, int]:
    """Those subscriptions' deliveries by status, and their attempts (key "attempts")."""
    with app.app_context():
        scope = Delivery.subscription_id.in_(subscription_ids)
        counts = dict(
            db.session.execute(
                select(Delivery.status, func.count()).where(scope).group_by(Delivery.status)
            ).all()
        )
        counts["attempts"] = db.session.scalar(
            select(func.count(Attempt.id))
            .join(Delivery, Delivery.id == Attempt.delivery_id)
            .where(scope)
        )
        db.session.remove()
    return counts


def count_deliveries(app: Flask, subscription_ids: list[str]) -> int:
    """How many deliveries those subscriptions have."""
    with app.app_context():
        count = db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.subscription_id.in_(subscription_ids))
        )
        db.session.remove()
    return count


def settled_count(app: Flask, subscription_ids: list[str]) -> int:
    """How many of those subscriptions' deliveries are no longer pending."""
    return wait_until_settled(app, subscription_ids, 0, 0.0)


def wait_until_settled(
    app: Flask, subscription_ids: list[str], expected: int, timeout: float
) -> int:
    """Wait until `expected` deliveries to those subscriptions are no longer pending."""
    deadline = time.monotonic() + timeout
    settled = 0
    with app.app_context():
        while True:
            settled = db.session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.subscription_id.in_(subscription_ids), Delivery.status != "pending")
            )
            db.session.rollback()  # a fresh snapshot next time round
            if settled >= expected or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        db.session.remove()
    return settled


def delivered_throughput(
    app: Flask, subscription_ids: list[str], expected: int, strict: bool = True
) -> dict:
    """Deliveries/s from the first attempt's start to the last delivery's update.

    Asserts that every delivery succeeded on its first attempt and has its Attempt row; with
    `strict=False` it reports the statuses and attempts instead."""
    with app.app_context():
        scope = Delivery.subscription_id.in_(subscription_ids)
        statuses = dict(
            db.session.execute(
                select(Delivery.status, func.count()).where(scope).group_by(Delivery.status)
            ).all()
        )
        attempts, attempted, first = db.session.execute(
            select(
                func.count(Attempt.id),
                func.count(func.distinct(Attempt.delivery_id)),
                func.min(Attempt.started_at),
            )
            .join(Delivery, Delivery.id == Attempt.delivery_id)
            .where(scope)
        ).one()
        last = db.session.scalar(select(func.max(Delivery.updated_at)).where(scope))
        db.session.remove()
    if not strict:
        seconds = (last - first).total_seconds() if first and last else float("nan")
        return {"count": expected, "seconds": seconds, "per_second": expected / seconds,
                "statuses": statuses, "attempts": attempts}  # fmt: skip
    if statuses != {"succeeded": expected}:
        raise AssertionError(f"expected {expected} succeeded deliveries, found {statuses}")
    if attempts != expected or attempted != expected:
        raise AssertionError(f"{expected} deliveries but {attempts} attempts on {attempted}")
    seconds = (last - first).total_seconds()
    return {"count": expected, "seconds": seconds, "per_second": expected / seconds}
