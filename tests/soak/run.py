"""`make soak`: 20,000 deliveries while workers are SIGKILLed and Redis restarts, then a proof.

200 endpoints across 10 tenants (10% always answer 500, 5% take 1–3 s, 5% hang: they read the
request and never answer, the rest answer at once) receive 100 events each, published at a
steady pace by this process while three `flask worker` processes deliver. Faults fire as the run
passes fixed fractions of the work: a worker or two killed with SIGKILL and replaced, and the
soak's own Redis killed (losing every queued and scheduled job) and restarted, twice. Afterwards
the database and the receivers must agree that every delivery succeeded, or failed after its
three attempts on a failing endpoint, and that the receivers got every succeeded one. A failing
or hanging endpoint's delivery must have failed after its three attempts (the last a 500, or a
timeout), or still be pending after fewer with every attempt it made recorded: a circuit breaker
may keep deferring it, and a deferral is not an attempt. The run ends when every delivery to the
healthy endpoints is finished and the failing and hanging ones have had FAILING_SETTLE_SECONDS
more (or are finished too). The figures go to docs/reliability.md.

    python -m tests.soak.run            # the full soak, bounded to 15 minutes
    SOAK_QUICK=1 python -m tests.soak.run   # 2,000 deliveries, figures printed only

The database is a fresh SQLite file, or DATABASE_URL (emptied and migrated!) when it is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from tests.servers import HangServer, RedisServer
from tests.soak.processes import ROOT, Receivers, Workers

DEADLINE_SECONDS = 15 * 60
VERIFY_RESERVE = 90  # seconds kept back from the deadline to check and report
WORKERS = 3
RETRY_SCHEDULE = "1,2"  # three attempts: a failing endpoint's delivery ends `failed` in ~3 s
REDIS_DOWN_SECONDS = 3
DELIVERY_TIMEOUT = "5"  # seconds; a slow endpoint takes up to 3 s, a hanging one all of it
# The longest the run waits on failing and hanging endpoints' deliveries once every other one
# is finished (a circuit breaker may defer them for minutes).
FAILING_SETTLE_SECONDS = 30
EVENT_TYPE = "invoice.paid"
# (fraction of all deliveries finished, fault, worker slots)
FAULTS: list[tuple[float, str, tuple[int, ...]]] = [
    (0.05, "kill", (0,)),
    (0.15, "kill", (1,)),
    (0.25, "redis", ()),
    (0.40, "kill", (0, 2)),
    (0.55, "kill", (1,)),
    (0.65, "redis", ()),
    (0.80, "kill", (2,)),
]


@dataclass(frozen=True)
class Plan:
    """The size of a run."""

    tenants: int
    endpoints_per_tenant: int
    events_per_tenant: int
    publish_seconds: float

    @property
    def endpoints(self) -> int:
        return self.tenants * self.endpoints_per_tenant

    @property
    def deliveries(self) -> int:
        return self.endpoints * self.events_per_tenant


FULL = Plan(tenants=10, endpoints_per_tenant=20, events_per_tenant=100, publish_seconds=60)
QUICK = Plan(tenants=4, endpoints_per_tenant=10, events_per_tenant=50, publish_seconds=10)


def endpoint_kind(n: int) -> str:
    """Endpoint n's behaviour: 2 in 20 fail (10%), 1 in 20 is slow (5%), 1 in 20 hangs (5%),
    the rest are fine."""
    remainder = n % 20
    if remainder in (0, 10):
        return "fail"
    return {5: "slow", 15: "hang"}.get(remainder, "ok")


@dataclass
class Run:
    """What happened, as it happened: the timeline, progress samples and any error."""

    started: float = field(default_factory=time.monotonic)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    samples: list[tuple[float, int, dict[str, int]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    published: int = 0
    kills: int = 0
    loads: list[float] = field(default_factory=list)  # 1-minute load average, sampled
    publish_started: float | None = None
    publish_ended: float | None = None
    finished_at: float | None = None  # every delivery to a healthy endpoint finished
    fault_marks: list[tuple[str, float, float]] = field(default_factory=list)
    failing_subscriptions: list[str] = field(default_factory=list)  # failing and hanging ones
    waited_on_failing: float = 0.0
    delivery_timeout: str = DELIVERY_TIMEOUT
    failing_settle_seconds: int = FAILING_SETTLE_SECONDS

    def at(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        self.timeline.append((self.at(), text))
        print(f"[soak {self.at():7.1f}s] {text}", flush=True)


def _environment(workdir: Path, redis_url: str) -> tuple[dict[str, str], str]:
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'soak.db'}"
    env = {
        **os.environ,
        "HOOKLINE_ENV": "development",
        "SECRET_KEY": "soak-secret-key",
        "HOOKLINE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HOOKLINE_RETRY_SCHEDULE": RETRY_SCHEDULE,
        "HOOKLINE_SWEEP_INTERVAL": "2",
        "HOOKLINE_DELIVERY_TIMEOUT": DELIVERY_TIMEOUT,
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
        "HOOKLINE_QUEUE_PREFIX": "hookline-soak",
    }
    return env, database_url


def _publisher(app, tenant_ids: list[str], plan: Plan, run: Run, stop: threading.Event) -> None:
    """Publish one event per tenant per round, rounds evenly spread over publish_seconds."""
    from dispatcher import publish
    from portal.extensions import db

    with app.app_context():
        run.publish_started = run.at()
        pace = plan.publish_seconds / plan.events_per_tenant
        begin = time.monotonic()
        try:
            for round_ in range(plan.events_per_tenant):
                if stop.is_set():
                    return
                for t, tenant_id in enumerate(tenant_ids):
                    data = {"invoice_id": f"inv_{t}_{round_}", "amount_paid": 100 + round_}
                    publish(EVENT_TYPE, data, tenant_id=tenant_id)
                db.session.commit()  # the outbox: the commit publishes, the kick may fail
                run.published += len(tenant_ids)
                time.sleep(max(0.0, begin + (round_ + 1) * pace - time.monotonic()))
        except Exception as exc:  # the soak reports it and fails instead of hanging
            run.errors.append(f"publishing failed: {exc!r}")
            db.session.rollback()
        finally:
            run.publish_ended = run.at()
            db.session.remove()


def _status_counts(failing_subscriptions: list[str]) -> dict[str, int]:
    """Deliveries by status, and (key "failing_pending") how many of the pending ones are to
    failing or hanging endpoints."""
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import Delivery

    counts = dict(
        db.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    )
    counts["failing_pending"] = db.session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.status == "pending", Delivery.subscription_id.in_(failing_subscriptions))
    )
    db.session.rollback()
    return counts


def _fault(kind: str, slots: tuple[int, ...], redis_server, workers: Workers, run: Run) -> None:
    started = run.at()
    if kind == "kill":
        pids = [workers.kill(slot) for slot in slots]
        run.kills += len(pids)
        run.note(f"SIGKILL worker(s) {', '.join(map(str, pids))} (slots {slots})")
        time.sleep(1)
        new = [workers.start(slot) for slot in slots]
        run.note(f"restarted worker(s) as {', '.join(map(str, new))}")
    else:
        redis_server.kill()
        run.note("SIGKILL Redis: every queued and scheduled job is lost")
        time.sleep(REDIS_DOWN_SECONDS)
        redis_server.start()
        run.note(f"Redis back (empty) after {REDIS_DOWN_SECONDS} s")
    run.fault_marks.append((kind, started, run.at()))


def _drive(plan: Plan, app, redis_server, workers: Workers, run: Run, deadline: float) -> None:
    """Watch progress, fire each fault at its fraction, stop when nothing is pending."""
    from portal.extensions import db

    pending_faults = list(FAULTS)
    last_print = 0.0
    with app.app_context():
        while True:
            counts = _status_counts(run.failing_subscriptions)
            failing_pending = counts.pop("failing_pending")
            finished = sum(n for status, n in counts.items() if status != "pending")
            run.samples.append((run.at(), finished, counts))
            run.loads.append(os.getloadavg()[0])
            if pending_faults and finished >= pending_faults[0][0] * plan.deliveries:
                fraction, kind, slots = pending_faults.pop(0)
                run.note(f"{finished} of {plan.deliveries} finished ({fraction:.0%}): fault")
                _fault(kind, slots, redis_server, workers, run)
                continue
            for slot in workers.dead():
                run.errors.append(f"worker in slot {slot} exited by itself")
                run.note(f"worker in slot {slot} exited by itself; starting another")
                workers.start(slot)
            done = run.publish_ended is not None and run.published == plan.tenants * (
                plan.events_per_tenant
            )
            if done and run.finished_at is None and finished + failing_pending == plan.deliveries:
                run.finished_at = run.at()
                run.note(
                    f"{finished} deliveries finished, {failing_pending} to failing or hanging "
                    f"endpoints pending; waiting at most {FAILING_SETTLE_SECONDS} s for those"
                )
            if run.finished_at is not None:
                run.waited_on_failing = run.at() - run.finished_at
                if not failing_pending or run.waited_on_failing >= FAILING_SETTLE_SECONDS:
                    run.note(f"{finished} finished; {failing_pending} pending (failing, hanging)")
                    break
            if run.errors and run.publish_ended is not None and not done:
                run.note("publishing failed; stopping")
                break
            if time.monotonic() > deadline:
                run.errors.append(f"deadline reached with {counts} ({finished} finished)")
                run.note("deadline reached; stopping")
                break
            if run.at() - last_print >= 10:
                last_print = run.at()
                run.note(f"progress: {finished} finished, {counts}, {run.published} events")
            time.sleep(0.5)
        db.session.remove()


def _setup(
    plan: Plan,
    env: dict[str, str],
    database_url: str,
    receivers: Receivers,
    hang: HangServer,
    run: Run,
):
    """Migrate a fresh database, create tenants and endpoints; returns (app, tenant ids)."""
    os.environ.update({k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"})
    from flask_migrate import upgrade
    from sqlalchemy import text

    from dispatcher import signing
    from portal import create_app
    from portal.extensions import db
    from portal.services import accounts
    from portal.services import subscriptions as subscription_service
    from portal.services.event_types import sync_standard_types

    app = create_app()
    secrets = {}
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=str(ROOT / "portal" / "migrations"))
        sync_standard_types()
        db.session.commit()
        tenant_ids, endpoints = [], []
        for t in range(plan.tenants):
            tenant_ids.append(accounts.create_tenant(f"Soak tenant {t}").id)
            for e in range(plan.endpoints_per_tenant):
                n = t * plan.endpoints_per_tenant + e
                path = f"/{endpoint_kind(n)}/{n}"
                secrets[path] = signing.generate_secret()
                endpoints.append((tenant_ids[-1], path))
        receivers.secrets_file.write_text(json.dumps(secrets))
        receivers.start()
        failing = []
        for tenant_id, path in endpoints:
            hangs = path.startswith("/hang/")
            subscription, _ = subscription_service.create(
                tenant_id,
                url=hang.url(path) if hangs else receivers.url(path),
                events=[EVENT_TYPE],
                secret=secrets[path],
            )
            if path.startswith(("/hang/", "/fail/")):
                failing.append(subscription)
        db.session.commit()
        run.failing_subscriptions = [subscription.id for subscription in failing]
        db.session.remove()
    run.note(
        f"{plan.tenants} tenants, {plan.endpoints} endpoints on {database_url.split(':')[0]}; "
        f"receivers on port {receivers.port}, the hanging ones on port {hang.port}"
    )
    return app, tenant_ids


def main() -> int:
    """Run the soak; exit 0 only if every check passed."""
    from tests.soak import report

    quick = os.environ.get("SOAK_QUICK", "").strip() not in ("", "0")
    plan = QUICK if quick else FULL
    run = Run()
    deadline = time.monotonic() + DEADLINE_SECONDS - VERIFY_RESERVE
    workdir = Path(tempfile.mkdtemp(prefix="hookline-soak-"))
    mode = "quick" if quick else "full"
    run.note(f"{mode} soak: {plan.deliveries} deliveries; files in {workdir}; t0={time.time():.3f}")
    redis_server = RedisServer(workdir)
    redis_server.start()
    env, database_url = _environment(workdir, redis_server.url)
    worker_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")}
    (workdir / "metrics").mkdir()
    receivers = Receivers(workdir / "secrets.json", workdir)
    hang = HangServer(workdir / "hang.log", lifetime=DEADLINE_SECONDS + 120)
    workers = Workers(worker_env, workdir)
    stop = threading.Event()
    result = None
    try:
        hang.start()
        app, tenant_ids = _setup(plan, env, database_url, receivers, hang, run)
        for slot in range(WORKERS):
            workers.start(slot)
        run.note(f"{WORKERS} workers started; publishing {plan.tenants * plan.events_per_tenant}"
                 f" events over {plan.publish_seconds:g} s")  # fmt: skip
        publisher = threading.Thread(
            target=_publisher, args=(app, tenant_ids, plan, run, stop), daemon=True
        )
        publisher.start()
        _drive(plan, app, redis_server, workers, run, deadline)
        stop.set()
        publisher.join(30)
        workers.stop_all()
        result = report.collect(app, plan, run, receivers, hang, workdir, database_url)
    finally:
        stop.set()
        workers.stop_all()
        receivers.stop()
        hang.stop()
        redis_server.kill()
    text = report.render(result, quick)
    print(text)
    if not quick or os.environ.get("SOAK_WRITE_DOCS"):
        report.write(ROOT / "docs" / "reliability.md", text, result.database)
        print("figures written to docs/reliability.md", flush=True)
    if result.passed and not os.environ.get("SOAK_KEEP"):
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    else:
        print(f"run files kept in {workdir}", flush=True)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
