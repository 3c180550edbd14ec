"""`make soak`: 20,000 deliveries while workers are SIGKILLed and SIGTERMed, Redis restarts and
PostgreSQL crashes, then a proof.

200 endpoints across 10 tenants (10% always answer 500, 5% take 1–3 s, 5% hang: they read the
request and never answer, the rest answer at once) receive 100 events each, published at a
steady pace by this process while three `flask worker` processes deliver. Faults fire as the run
passes fixed fractions of the work: a worker or two killed with SIGKILL and replaced; the
soak's own Redis killed (losing every queued and scheduled job) and restarted, twice; a rolling
restart (each worker SIGTERMed in turn, which hands its slow sends back, and replaced, 2 s
apart); and, on PostgreSQL, the soak's own server stopped with `pg_ctl -m immediate` mid-burst
and started again a few seconds later. The publisher retries a round whose publish or commit
failed, with an idempotency key per event, so a retried commit that had in fact succeeded is a
replay and never a second event. Afterwards
the database and the receivers must agree that every delivery succeeded, or failed after its
three attempts on a failing endpoint, and that the receivers got every succeeded one. A failing
or hanging endpoint's delivery must have failed after its three attempts (the last a 500, or a
timeout), or still be pending after fewer with every attempt it made recorded: a circuit breaker
may keep deferring it, and a deferral is not an attempt. The run ends when every delivery to the
healthy endpoints is finished and the failing and hanging ones have had FAILING_SETTLE_SECONDS
more (or are finished too). The figures go to docs/reliability.md.

    python -m tests.soak.run            # the full soak, bounded to 15 minutes
    SOAK_QUICK=1 python -m tests.soak.run   # 2,000 deliveries, figures printed only
    SOAK_DATABASE=postgresql python -m tests.soak.run   # on a PostgreSQL server of its own

The database is a fresh SQLite file; with SOAK_DATABASE=postgresql, a PostgreSQL cluster the soak
creates (initdb in a temporary directory, a free port: never a shared server) and may crash; or
else DATABASE_URL (emptied and migrated!) when it is set, where the PostgreSQL restart is skipped
(the soak restarts only a server it owns).
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
from sqlalchemy.exc import SQLAlchemyError

from tests.servers import HangServer, PostgresServer, RedisServer, postgres_bin
from tests.soak.processes import ROOT, Receivers, Workers

DEADLINE_SECONDS = 15 * 60
VERIFY_RESERVE = 90  # seconds kept back from the deadline to check and report
WORKERS = 3
RETRY_SCHEDULE = "1,2"  # three attempts: a failing endpoint's delivery ends `failed` in ~3 s
REDIS_DOWN_SECONDS = 3
POSTGRES_DOWN_SECONDS = 5  # from `pg_ctl -m immediate stop` returning to `pg_ctl start` starting
ROLLING_PAUSE_SECONDS = 2  # from one replacement listening on its queues to the next SIGTERM
TERM_TIMEOUT = 30  # a SIGTERMed worker that outlives this is SIGKILLed, and the soak fails
READY_TIMEOUT = 60  # a worker not listening on its queues this long after its start fails it
PUBLISH_RETRY_SECONDS = 0.5  # between tries of a round whose publish or commit failed
PUBLISH_GIVE_UP_SECONDS = 60  # a round still failing after this long fails the soak
OUTAGE_GRACE_SECONDS = 5  # publishing may still fail this long after the database is back
DELIVERY_TIMEOUT = "5"  # seconds; a slow endpoint takes up to 3 s, a hanging one all of it
# The longest the run waits on failing and hanging endpoints' deliveries once every other one
# is finished (a circuit breaker may defer them for minutes).
FAILING_SETTLE_SECONDS = 30
EVENT_TYPE = "invoice.paid"
# (fraction of all deliveries finished, fault, worker slots). The PostgreSQL restart and the
# rolling restart come first, mid-burst and before any SIGKILL: a SIGKILLed worker's claims
# wait out their lease (2 × delivery timeout + 10 s = 20 s), and the delays measured around
# those two faults should be theirs. The most a run finishes while failing and hanging
# endpoints' deliveries wait behind their breakers is 85%, so no fault is set later than 80%.
FAULTS: list[tuple[float, str, tuple[int, ...]]] = [
    (0.08, "postgres", ()),
    (0.20, "rolling", (0, 1, 2)),
    (0.44, "kill", (0,)),
    (0.52, "redis", ()),
    (0.60, "kill", (1,)),
    (0.67, "kill", (0, 2)),
    (0.73, "redis", ()),
    (0.80, "kill", (1,)),
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
# Publishing lasts long enough that the rolling and PostgreSQL restarts fall mid-burst.
QUICK = Plan(tenants=4, endpoints_per_tenant=10, events_per_tenant=50, publish_seconds=30)


def endpoint_kind(n: int) -> str:
    """Endpoint n's behaviour: 2 in 20 fail (10%), 1 in 20 is slow (5%), 1 in 20 hangs (5%),
    the rest are fine."""
    remainder = n % 20
    if remainder in (0, 10):
        return "fail"
    return {5: "slow", 15: "hang"}.get(remainder, "ok")


@dataclass
class Database:
    """Where the run's rows live, and the server the soak may crash (only one it started)."""

    url: str
    label: str  # for the report: which engine, whose server
    server: PostgresServer | None = None
    no_restart: str = ""  # why the PostgreSQL restart is skipped, when it is

    @property
    def engine(self) -> str:
        return "PostgreSQL" if self.url.startswith("postgres") else "SQLite"


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
    wall_started: float = field(default_factory=time.time)  # `started`, as a unix time
    publish_started: float | None = None
    publish_ended: float | None = None
    finished_at: float | None = None  # every delivery to a healthy endpoint finished
    fault_marks: list[tuple[str, float, float]] = field(default_factory=list)
    failing_subscriptions: list[str] = field(default_factory=list)  # failing and hanging ones
    published_at: dict[str, float] = field(default_factory=dict)  # event id -> unix commit time
    publish_failures: list[tuple[float, str, str]] = field(default_factory=list)  # at, stage, error
    rounds_retried: int = 0  # rounds published again after a failure
    replays: int = 0  # events a retry found committed already (the failed commit had succeeded)
    terms: list[tuple[int, float, int | None]] = field(default_factory=list)  # pid, exit s, code
    handed_back: int = 0  # in-flight sends SIGTERMed workers gave back (from their logs)
    skipped: list[str] = field(default_factory=list)  # faults not injected, and why
    waited_on_failing: float = 0.0
    delivery_timeout: str = DELIVERY_TIMEOUT
    failing_settle_seconds: int = FAILING_SETTLE_SECONDS
    outage_grace: float = OUTAGE_GRACE_SECONDS

    def at(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        self.timeline.append((self.at(), text))
        print(f"[soak {self.at():7.1f}s] {text}", flush=True)


def _database(workdir: Path) -> Database:
    """SOAK_DATABASE=postgresql: a PostgreSQL server of the soak's own, started here; else
    DATABASE_URL if set (a server the soak must not restart); else a fresh SQLite file."""
    wanted = os.environ.get("SOAK_DATABASE", "").strip().lower()
    if wanted in ("postgres", "postgresql", "pg"):
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise SystemExit("SOAK_DATABASE=postgresql needs PostgreSQL's initdb and pg_ctl")
        server = PostgresServer(bin_dir)
        server.init()
        server.start()
        label = (
            f"PostgreSQL {server.version()} (a server of the soak's own: initdb in a temporary "
            f"directory, port {server.port}, fsync off)"
        )
        return Database(server.url, label, server)
    if wanted not in ("", "sqlite"):
        raise SystemExit(f"SOAK_DATABASE={wanted!r}: use sqlite or postgresql")
    url = os.environ.get("DATABASE_URL") if not wanted else None
    if url:
        engine = "PostgreSQL" if url.startswith("postgres") else "the database"
        return Database(
            url,
            f"{engine} of DATABASE_URL (not the soak's own server)",
            no_restart="the database is DATABASE_URL's, not a server this soak started, and the "
            "soak restarts only its own (SOAK_DATABASE=postgresql)",
        )
    return Database(
        f"sqlite:///{workdir / 'soak.db'}",
        "SQLite (a fresh file)",
        no_restart="SQLite has no server to restart (SOAK_DATABASE=postgresql runs it)",
    )


def _environment(redis_url: str, database: Database) -> dict[str, str]:
    database_url = database.url
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
    return env


def _publish_round(tenant_ids: list[str], round_: int, run: Run, stop: threading.Event) -> None:
    """Publish one event per tenant in one transaction, retrying the round while the database
    is unreachable. Each event has an idempotency key, so when a commit that reported failure
    had in fact succeeded (the server died after committing, before answering), the retry
    finds the events and returns them: a replay, never a second event."""
    from dispatcher import publish
    from portal.extensions import db

    first_failure: float | None = None
    uncertain: dict[str, float] = {}  # ids of a round whose commit failed -> when it was tried
    while True:
        stage, ids = "publish", []
        try:
            for t, tenant_id in enumerate(tenant_ids):
                data = {"invoice_id": f"inv_{t}_{round_}", "amount_paid": 100 + round_}
                key = f"soak-{t}-{round_}"
                ids.append(publish(EVENT_TYPE, data, tenant_id=tenant_id, idempotency_key=key).id)
            stage = "commit"
            tried = time.time()
            db.session.commit()  # the outbox: the commit publishes, the kick may fail
        except SQLAlchemyError as exc:  # the database is away: roll back and try again
            with contextlib.suppress(SQLAlchemyError):
                db.session.rollback()
            run.publish_failures.append((run.at(), stage, type(exc).__name__))
            if stage == "commit":
                uncertain.update(dict.fromkeys(ids, tried))
            now = time.monotonic()
            if first_failure is None:
                first_failure = now
                run.note(f"round {round_}: {stage} failed ({type(exc).__name__}); retrying")
            elif now - first_failure > PUBLISH_GIVE_UP_SECONDS or stop.is_set():
                raise
            time.sleep(PUBLISH_RETRY_SECONDS)
            continue
        committed = time.time()
        replayed = [event_id for event_id in ids if event_id in uncertain]
        run.replays += len(replayed)
        for event_id in ids:
            run.published_at[event_id] = uncertain.get(event_id, committed)
        if first_failure is not None:
            run.rounds_retried += 1
            run.note(
                f"round {round_} published after {time.monotonic() - first_failure:.1f} s of "
                f"retries ({len(replayed)} events were replays of a commit that had succeeded)"
            )
        run.published += len(tenant_ids)
        return


def _publisher(app, tenant_ids: list[str], plan: Plan, run: Run, stop: threading.Event) -> None:
    """Publish one event per tenant per round, rounds evenly spread over publish_seconds (a
    round delayed by an outage is followed by the ones it held up, at once: a burst)."""
    from portal.extensions import db

    with app.app_context():
        run.publish_started = run.at()
        pace = plan.publish_seconds / plan.events_per_tenant
        begin = time.monotonic()
        try:
            for round_ in range(plan.events_per_tenant):
                if stop.is_set():
                    return
                _publish_round(tenant_ids, round_, run, stop)
                time.sleep(max(0.0, begin + (round_ + 1) * pace - time.monotonic()))
        except Exception as exc:  # the soak reports it and fails instead of hanging
            run.errors.append(f"publishing failed: {exc!r}")
            with contextlib.suppress(SQLAlchemyError):
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


def _fault(
    kind: str, slots: tuple[int, ...], redis_server, database: Database, workers: Workers, run: Run
) -> None:
    started = run.at()
    if kind == "postgres":
        if database.server is None:
            run.skipped.append(f"PostgreSQL restart: skipped, {database.no_restart}")
            run.note(f"PostgreSQL restart skipped: {database.no_restart}")
            return
        database.server.stop("immediate")
        run.note(
            "PostgreSQL stopped with `pg_ctl -m immediate`: every connection cut, no checkpoint"
        )
        time.sleep(POSTGRES_DOWN_SECONDS)
        database.server.start()
        run.note(f"PostgreSQL back after {run.at() - started:.1f} s (crash recovery done)")
    elif kind == "rolling":
        # As a deploy does it: one worker at a time, the next only once the replacement
        # listens on its queues and ROLLING_PAUSE_SECONDS have passed.
        for i, slot in enumerate(slots):
            if i:
                time.sleep(ROLLING_PAUSE_SECONDS)
            if workers.wait_ready(slot, READY_TIMEOUT) is None:
                run.errors.append(f"the worker in slot {slot} never listened on its queues")
            pid, took, code = workers.terminate(slot, TERM_TIMEOUT)
            run.terms.append((pid, took, code))
            if code is None:
                run.errors.append(f"worker {pid} still ran {TERM_TIMEOUT} s after its SIGTERM")
            new = workers.start(slot)
            ready = workers.wait_ready(slot, READY_TIMEOUT)
            run.note(
                f"SIGTERM worker {pid} (slot {slot}): exited in {took:.1f} s with code {code}; "
                f"replaced by {new}, listening {'—' if ready is None else f'{ready:.1f}'} s later"
            )
    elif kind == "kill":
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


def _drive(
    plan: Plan, app, redis_server, database: Database, workers: Workers, run: Run, deadline: float
) -> None:
    """Watch progress, fire each fault at its fraction, stop when nothing is pending."""
    from portal.extensions import db

    pending_faults = list(FAULTS)
    last_print = 0.0
    with app.app_context():
        while True:
            try:
                counts = _status_counts(run.failing_subscriptions)
            except SQLAlchemyError as exc:  # just after a database restart, at most
                run.note(f"progress query failed ({type(exc).__name__}); trying again")
                with contextlib.suppress(SQLAlchemyError):
                    db.session.rollback()
                if time.monotonic() > deadline:
                    run.errors.append(f"deadline reached with the database unreachable: {exc!r}")
                    break
                time.sleep(0.5)
                continue
            failing_pending = counts.pop("failing_pending")
            finished = sum(n for status, n in counts.items() if status != "pending")
            run.samples.append((run.at(), finished, counts))
            run.loads.append(os.getloadavg()[0])
            if pending_faults and finished >= pending_faults[0][0] * plan.deliveries:
                fraction, kind, slots = pending_faults.pop(0)
                run.note(f"{finished} of {plan.deliveries} finished ({fraction:.0%}): fault")
                _fault(kind, slots, redis_server, database, workers, run)
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
    database: Database,
    receivers: Receivers,
    hang: HangServer,
    run: Run,
):
    """Migrate a fresh database, create tenants and endpoints; returns (app, tenant ids)."""
    os.environ.update({k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"})
    from sqlalchemy import text

    from dispatcher import signing
    from portal import create_app
    from portal.extensions import db
    from portal.schema import upgrade
    from portal.services import accounts
    from portal.services import subscriptions as subscription_service
    from portal.services.event_types import sync_standard_types

    app = create_app()
    secrets = {}
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            for table in ("hookline_alembic_version", "alembic_version"):
                connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        upgrade()
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
        f"{plan.tenants} tenants, {plan.endpoints} endpoints on {database.label}; "
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
    try:
        database = _database(workdir)
    except BaseException:
        redis_server.kill()
        raise
    run.note(f"database: {database.label}")
    env = _environment(redis_server.url, database)
    worker_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")}
    (workdir / "metrics").mkdir()
    receivers = Receivers(workdir / "secrets.json", workdir)
    hang = HangServer(workdir / "hang.log", lifetime=DEADLINE_SECONDS + 120)
    workers = Workers(worker_env, workdir)
    stop = threading.Event()
    result = None
    try:
        hang.start()
        app, tenant_ids = _setup(plan, env, database, receivers, hang, run)
        for slot in range(WORKERS):
            workers.start(slot)
        run.note(f"{WORKERS} workers started; publishing {plan.tenants * plan.events_per_tenant}"
                 f" events over {plan.publish_seconds:g} s")  # fmt: skip
        publisher = threading.Thread(
            target=_publisher, args=(app, tenant_ids, plan, run, stop), daemon=True
        )
        publisher.start()
        _drive(plan, app, redis_server, database, workers, run, deadline)
        stop.set()
        publisher.join(30)
        workers.stop_all()
        run.handed_back = workers.handed_back()
        result = report.collect(app, plan, run, receivers, hang, workdir, database)
    finally:
        stop.set()
        workers.stop_all()
        receivers.stop()
        hang.stop()
        redis_server.kill()
        if database.server is not None:
            keep = result is None or not result.passed or bool(os.environ.get("SOAK_KEEP"))
            database.server.destroy(keep=keep)
            if keep:
                print(f"PostgreSQL cluster kept in {database.server.root}", flush=True)
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
