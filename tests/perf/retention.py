"""Retention at scale on PostgreSQL: prune rate idle and beside a delivering worker, the
delivery p99 it costs, the intake it keeps up with, and whether deleted space is reused.

A database of its own (the bench's scratch database name + `_retention`, recreated, dropped
at the end) is filled in SQL (`INSERT … SELECT generate_series`, foreign-key triggers off, the
secondary indexes built after the rows) with expired history: events of 1 KiB, one delivery
each, 4 attempts per delivery with the headers a real attempt records, spread over the 30
days before the cutoff. Then, in order:

1. one `flask worker` (its own maintenance sweeps off, HOOKLINE_SWEEP_INTERVAL=3600) delivers
   paced events to nginx at LOAD_RATE/s: publish → arrival latency in runs without pruning
   and, alternating with them, runs with a second process running `maintenance.prune()`
   sweeps back to back (a sweep every HOOKLINE_SWEEP_INTERVAL is the production case: this is
   its worst case, pruning all the time instead of at most a third of it); the rows that
   process pruned per second;
2. the rest of the history pruned with nothing else running: rows/s;
3. VACUUM twice (what autovacuum does over time; the server this bench ran on has it off),
   then a second fill of half as many rows: the tables' size after it beside before it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import Index, text
from sqlalchemy.engine import make_url

from dispatcher import maintenance
from portal.extensions import db
from portal.models import Attempt, Delivery, Event
from portal.services import accounts
from portal.services import subscriptions as subscription_service
from tests.perf import delivery, infra, latency, payload, system
from tests.perf.context import Context

log = logging.getLogger("bench")

TABLES = ("attempts", "deliveries", "events")  # the figures' names for them
TABLE_NAMES = {"attempts": "hookline_attempts", "deliveries": "hookline_deliveries",
               "events": "hookline_events"}  # fmt: skip
ATTEMPTS_PER_DELIVERY = 4  # every delivery retried to the end of the default schedule: the worst
INTAKE_DELIVERIES = 100.0  # per second: issue 15's production volume, 8.6 M attempts a day
LOAD_RATE = 100.0  # events per second published (one delivery each) during the latency runs
RETENTION_DAYS = 30
SWEEP_INTERVAL = 15  # HOOKLINE_SWEEP_INTERVAL's default
# The pruner beside the worker runs sweeps this long, so SIGTERM stops it within a second of
# the latency run's end; each new sweep starts its walk over again, so this costs it a little.
PRUNER_SWEEP_SECONDS = 1.0
REQUEST_HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "Hookline/0.1.0",
    "webhook-id": "evt_01JE5RW8ZJ3Q9V6M2B7N4K8H1C",
    "webhook-timestamp": "1733140800",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    "X-Webhook-Event-Id": "evt_01JE5RW8ZJ3Q9V6M2B7N4K8H1C",
    "X-Webhook-Event-Type": "invoice.created",
    "X-Webhook-Timestamp": "1733140800",
    "X-Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    "X-Webhook-Attempt": "1",
}
RESPONSE_HEADERS = {"Server": "nginx", "Content-Type": "text/plain", "Content-Length": "2"}


def _sizes(quick: bool) -> dict[str, float]:
    """Events per fill (one delivery and 4 attempts each), the seconds of each latency run and
    how many runs with pruning there are (each between two without)."""
    if quick:
        return {"events": 20_000, "load_seconds": 4.0, "pairs": 1}
    return {"events": 400_000, "load_seconds": 10.0, "pairs": 2}


_EVENTS = """
INSERT INTO hookline_events (id, tenant_id, type, data, idempotency_key, fingerprint, created_at)
SELECT 'evt_' || :tag || lpad(g::text, 25, '0'), :tenant, 'invoice.created',
       CAST(:data AS json), NULL, repeat('0', 64), :start + make_interval(secs => g * :step)
FROM generate_series(1, :n) AS g
"""
_DELIVERIES = """
INSERT INTO hookline_deliveries (id, tenant_id, event_id, subscription_id, event_type, status,
    priority, is_test, attempt_count, next_trigger, next_attempt_at, lease_expires_at,
    last_response_status, last_attempt_at, created_at, updated_at)
SELECT 'dlv_' || :tag || lpad(g::text, 25, '0'), :tenant, 'evt_' || :tag || lpad(g::text, 25, '0'),
       :subscription, 'invoice.created', CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
       false, false, :attempts, 'auto', NULL, NULL, 200, at, at, at
FROM generate_series(1, :n) AS g, LATERAL (SELECT :start + make_interval(secs => g * :step)) t(at)
"""
_ATTEMPTS = """
INSERT INTO hookline_attempts (id, tenant_id, delivery_id, number, trigger, started_at, duration_ms,
    request_headers, response_status, response_headers, response_body, response_truncated, error)
SELECT 'att_' || :tag || lpad((g * 10 + k)::text, 25, '0'), :tenant,
       'dlv_' || :tag || lpad(g::text, 25, '0'), k, 'auto',
       :start + make_interval(secs => g * :step + k * 60), 3, CAST(:request AS json),
       CASE WHEN k = :attempts THEN 200 ELSE 500 END, CAST(:response AS json), 'ok', false, NULL
FROM generate_series(1, :n) AS g, generate_series(1, :attempts) AS k
"""


def _secondary_indexes() -> list[Index]:
    """The three tables' indexes other than their primary keys (as the migrations made them)."""
    return [index for model in (Attempt, Delivery, Event) for index in model.__table__.indexes]


def fill(app: Flask, tag: str, events: int, rebuild_indexes: bool) -> float:
    """Expired history in SQL, spread over the 30 days before the cutoff; returns its seconds.

    Foreign-key triggers are off for the fill (the rows are consistent by construction). With
    `rebuild_indexes` the secondary indexes are dropped and built after the rows, which is
    several times quicker; without, rows go in as the application would add them, into
    whatever free space the tables have (the reuse check)."""
    started = time.monotonic()
    with app.app_context():
        tenant = accounts.create_tenant(f"retention {tag}")
        subscription, _ = subscription_service.create(
            tenant.id, url="http://127.0.0.1:9/retention", events=["*"]
        )
        db.session.commit()
        start = datetime.now(UTC) - timedelta(days=2 * RETENTION_DAYS + 1)
        params = {
            "tag": tag, "tenant": tenant.id, "subscription": subscription.id, "n": events,
            "attempts": ATTEMPTS_PER_DELIVERY, "start": start,
            "step": (RETENTION_DAYS - 1) * 86400 / events,
            "data": json.dumps(payload.padded_data()),
            "request": json.dumps(REQUEST_HEADERS), "response": json.dumps(RESPONSE_HEADERS),
        }  # fmt: skip
        indexes = _secondary_indexes() if rebuild_indexes else []
        with db.engine.begin() as connection:
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            for index in indexes:
                index.drop(connection)
            for statement in (_EVENTS, _DELIVERIES, _ATTEMPTS):
                connection.execute(text(statement), params)
            for index in indexes:
                index.create(connection)
        db.session.remove()
    return time.monotonic() - started


def _sql(app: Flask, statement: str, autocommit: bool = False):
    """One statement's scalar result, or None (VACUUM needs `autocommit`)."""
    with app.app_context(), db.engine.connect() as connection:
        if autocommit:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        result = connection.execute(text(statement))
        value = result.scalar() if result.returns_rows else None
        connection.commit()
        return value


def table_sizes(app: Flask) -> dict[str, dict[str, int]]:
    """Each table's pg_total_relation_size, and of it the heap and the indexes, in MiB."""
    parts = {"total": "pg_total_relation_size", "heap": "pg_relation_size",
             "indexes": "pg_indexes_size"}  # fmt: skip
    return {
        table: {
            name: _sql(app, f"SELECT {f}('{TABLE_NAMES[table]}')") // 2**20
            for name, f in parts.items()
        }
        for table in TABLES
    }


def vacuum(app: Flask) -> float:
    """VACUUM (ANALYZE) the three tables, as autovacuum would; returns its seconds."""
    started = time.monotonic()
    _sql(app, f"VACUUM (ANALYZE) {', '.join(TABLE_NAMES.values())}", autocommit=True)
    return time.monotonic() - started


def prune_for(
    app: Flask,
    until_empty: bool,
    budget: float | None = None,
    stop: Callable[[], bool] | None = None,
    on_start: Callable[[], None] | None = None,
) -> dict:
    """`maintenance.prune()` sweeps back to back (each of `budget` seconds, default its own)
    until a sweep finds nothing left (`until_empty`) or `stop()` says so.

    Rows are counted before and after (expired rows left), so those a delivery took with it
    by ON DELETE CASCADE count too; the rate is over the time spent in sweeps that found
    something (not the waits once nothing is left)."""
    before = _expired_left(app)
    sweeps, busy = [], 0.0
    if on_start:
        on_start()
    with app.app_context():
        while not (stop and stop()):
            started = time.monotonic()
            pruned = maintenance.prune(budget)
            sweeps.append(round(time.monotonic() - started, 2))
            if any(pruned):
                busy += sweeps[-1]
            elif until_empty:
                break
            else:
                time.sleep(0.5)  # nothing left: wait, as the next sweep would
        db.session.remove()
    rows = before - _expired_left(app)
    return {"rows": rows, "seconds": busy, "rows_per_second": rows / busy if busy else 0.0,
            "sweep_seconds": sweeps, "expired_before": before}  # fmt: skip


def _pruner(ctx: Context, uri: str) -> subprocess.Popen:
    """A process pruning back to back until SIGTERM, once it has started (imports done, the
    rows counted); it prints its figure as one JSON line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.retention", uri],
        cwd=infra.ROOT,
        env={**os.environ, **ctx.env, "DATABASE_URL": uri},
        stdout=subprocess.PIPE,
        stderr=open(ctx.workdir / "pruner.log", "w"),  # noqa: SIM115 (closed with the process)
        text=True,
    )
    if process.stdout.readline().strip() != "started":
        raise AssertionError(f"the pruner exited {process.wait()}; see pruner.log")
    return process


def _stop_pruner(process: subprocess.Popen) -> dict:
    infra.stop_process(process, timeout=30.0)
    output = process.stdout.read()
    process.stdout.close()
    if process.returncode != 0 or not output.strip():
        raise AssertionError(f"the pruner exited {process.returncode}; see pruner.log")
    return json.loads(output.strip().splitlines()[-1])


def _own_database(postgres_uri: str) -> str:
    """The bench's scratch database with `_retention` appended: a database of this figure's."""
    url = make_url(postgres_uri)
    return url.set(database=f"{url.database}_retention").render_as_string(hide_password=False)


def _drop_database(uri: str) -> None:
    """Drop this figure's database (a few GiB) once measured; BENCH_KEEP=1 keeps it."""
    if os.environ.get("BENCH_KEEP") == "1":
        return
    import psycopg

    url = make_url(uri)
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def _pg_context(ctx: Context, app: Flask, uri: str, seconds: float) -> Context:
    """The bench context on this figure's database, its worker's own maintenance sweeps off."""
    return dataclasses.replace(
        ctx,
        settings=dataclasses.replace(ctx.settings, latency_seconds=seconds),
        app=app,
        database_uri=uri,
        env={**ctx.env, "DATABASE_URL": uri, "HOOKLINE_SWEEP_INTERVAL": "3600"},
        fleets={},
        figures={},
    )


def under_load(ctx: Context, app: Flask, uri: str, seconds: float, pairs: int) -> dict:
    """Paced delivery through one worker, in runs without pruning and with a pruner beside
    it, alternating (without, with, …, without): this machine drifts from minute to minute,
    so each run with pruning has runs without on either side."""
    pg = _pg_context(ctx, app, uri, seconds)
    fleet = latency.latency_fleet(pg)
    everyone = list(range(len(fleet.subscription_ids)))
    without, during, pruned = [], [], []
    with delivery.running_workers(pg, 1):
        without.append(latency.paced_run(pg, fleet, LOAD_RATE, everyone))
        for _ in range(pairs):
            pruner = _pruner(ctx, uri)
            try:
                during.append(latency.paced_run(pg, fleet, LOAD_RATE, everyone))
            finally:
                pruned.append(_stop_pruner(pruner))
            without.append(latency.paced_run(pg, fleet, LOAD_RATE, everyone))
    return {"without": without, "with": during, "pruned": pruned}


def _expired_left(app: Flask) -> int:
    """Rows still older than the retention (0 once pruning has caught up)."""
    cutoff = f"now() - interval '{RETENTION_DAYS} days'"
    return sum(
        _sql(app, f"SELECT count(*) FROM {TABLE_NAMES[table]} WHERE {column} < {cutoff}")
        for table, column in (
            ("attempts", "started_at"),
            ("deliveries", "created_at"),
            ("events", "created_at"),
        )
    )


def _measure(ctx: Context, app: Flask, uri: str) -> dict:
    sizes = _sizes(ctx.settings.quick)
    events = int(sizes["events"])
    result: dict = {"seeded": {"events": events, "deliveries": events,
                               "attempts": events * ATTEMPTS_PER_DELIVERY}}  # fmt: skip
    result["fill_seconds"] = fill(app, "a", events, rebuild_indexes=True)
    result["vacuum_after_fill_seconds"] = vacuum(app)  # month-old rows have been vacuumed
    result["size_mib_full"] = table_sizes(app)
    log.info("retention: %s rows in %.0f s", sum(result["seeded"].values()), result["fill_seconds"])
    load = under_load(ctx, app, uri, sizes["load_seconds"], int(sizes["pairs"]))
    result["idle"] = prune_for(app, until_empty=True)
    result["expired_left"] = _expired_left(app)
    result["size_mib_pruned"] = table_sizes(app)
    # The first VACUUM makes the heap's space free; B-tree pages it empties are recycled by
    # the next one (no snapshot may still see them): two runs, as autovacuum makes over time.
    result["vacuum_seconds"] = [vacuum(app), vacuum(app)]
    result["size_mib_vacuumed"] = table_sizes(app)
    result["refill_seconds"] = fill(app, "b", events // 2, rebuild_indexes=False)
    result["size_mib_refilled_half"] = table_sizes(app)
    return {**result, "load_seconds": sizes["load_seconds"], **_summarise_load(load)}


def _summarise_load(load: dict) -> dict:
    """p50/p99 of each run, the median p99 with pruning over the median without, and the
    pruners' rows/s over all their runs."""
    without = [run["p99"] for run in load["without"]]
    during = [run["p99"] for run in load["with"]]
    rows = sum(p["rows"] for p in load["pruned"])
    seconds = sum(p["seconds"] for p in load["pruned"])
    return {
        "load_rate": LOAD_RATE,
        "p99_without_ms": without,
        "p99_with_ms": during,
        "p50_without_ms": [run["p50"] for run in load["without"]],
        "p50_with_ms": [run["p50"] for run in load["with"]],
        "p99_added_ms": statistics.median(during) - statistics.median(without),
        "achieved_rate_with": [run["achieved_rate"] for run in load["with"]],
        "under_load": {
            "rows": rows,
            "seconds": seconds,
            "rows_per_second": rows / seconds,
            "runs": load["pruned"],
        },
    }


def retention(ctx: Context) -> dict:
    """The retention figure (PostgreSQL only: it is the production database)."""
    if ctx.postgres_uri is None:
        return {"skipped": "PostgreSQL unreachable"}
    uri = infra.scratch_postgres(_own_database(ctx.postgres_uri))
    app = system.make_app(uri)
    system.migrate(app)
    try:
        result = _measure(ctx, app, uri)
    finally:
        with app.app_context():
            db.engine.dispose()
        _drop_database(uri)
    result.update(_keeping_up(result))
    log.info(
        "retention: prune %.0f rows/s idle, %.0f under load; p99 %s ms with, %s without",
        result["idle"]["rows_per_second"],
        result["under_load"]["rows_per_second"],
        [round(v) for v in result["p99_with_ms"]],
        [round(v) for v in result["p99_without_ms"]],
    )
    return result


def _keeping_up(result: dict) -> dict:
    """What a sweep every HOOKLINE_SWEEP_INTERVAL s, pruning at most PRUNE_SECONDS of it, keeps
    up with at the rate measured beside the worker, against INTAKE_DELIVERIES/s with 1 and with
    4 attempts per delivery (each delivery also brings an event and itself)."""
    duty = maintenance.PRUNE_SECONDS / SWEEP_INTERVAL
    sustained = duty * result["under_load"]["rows_per_second"]
    intake = [
        {"attempts_per_delivery": n, "rows_per_second": rows, "vs_intake": sustained / rows}
        for n in (1, ATTEMPTS_PER_DELIVERY)
        for rows in [INTAKE_DELIVERIES * (2 + n)]
    ]
    emptied, refilled = result["size_mib_vacuumed"], result["size_mib_refilled_half"]
    return {
        "sweep_interval": SWEEP_INTERVAL,
        "prune_seconds_per_sweep": maintenance.PRUNE_SECONDS,
        "intake_deliveries_per_second": INTAKE_DELIVERIES,
        "sustained_rows_per_second": sustained,
        "intake": intake,
        "vs_worst_intake": min(row["vs_intake"] for row in intake),
        "refilled_vs_emptied": sum(refilled[t]["total"] for t in TABLES)
        / sum(emptied[t]["total"] for t in TABLES),
    }


def main() -> None:
    """The pruner process: sweeps of PRUNER_SWEEP_SECONDS back to back until SIGTERM, then
    its figure as one JSON line."""
    app = system.make_app(sys.argv[1])
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    figure = prune_for(
        app, False, PRUNER_SWEEP_SECONDS, stopped.is_set, lambda: print("started", flush=True)
    )
    print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
