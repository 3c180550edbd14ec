"""`make bench`: start the real system, measure every figure, write docs/performance.{md,json}.

    python -m tests.perf.bench              # the full run (< 15 min), rewrites docs/
    BENCH_QUICK=1 python -m tests.perf.bench  # smoke run: small sizes, one repetition

BENCH_ONLY=ceiling,busy runs some figures only (names as in performance.json). The delivery
figures (PER_DATABASE) run on every database of BENCH_DATABASES (default sqlite,postgresql),
figure by figure, so each pair is measured minutes apart; the others run once, on
BENCH_DATABASE (default sqlite). BENCH_OUT=dir writes the results there instead. Quick and
partial runs never overwrite docs/ unless BENCH_OUT says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from tests.perf import (
    delivery,
    deliverylog,
    endpoints,
    environment,
    infra,
    latency,
    profiling,
    publishing,
    report,
    retention,
    throttling,
)
from tests.perf.context import Context, Settings

log = logging.getLogger("bench")

Measure = Callable[[Context], dict]
# Figure name → how to measure it, in order: first BEFORE once, then PER_DATABASE on each
# database, then AFTER once (latency runs at half the 1-worker maximum measured before it).
BEFORE: dict[str, Measure] = {
    "ceiling": delivery.ceiling,
    "naive": delivery.naive,
}
PER_DATABASE: dict[str, Measure] = {
    "throughput_1": lambda ctx: delivery.throughput(ctx, 1),
    "throughput_1_10_endpoints": lambda ctx: delivery.throughput(ctx, 1, 10),
    "throughput_2": lambda ctx: delivery.throughput(ctx, 2),
    "busy": endpoints.busy,
    "dead": endpoints.dead,
    "neighbour": endpoints.neighbour,
    "throttle_429": throttling.throttle_429,
    "capped_cpu": throttling.capped_cpu,
}
AFTER: dict[str, Measure] = {
    "profile": profiling.profile,
    "latency": latency.end_to_end,
    "slow": latency.slow_receivers,
    "publish": publishing.publish_latency,
    "delivery_log": deliverylog.delivery_log,
    "retention": retention.retention,  # last: it fills and prunes a database of its own
}
FIGURES: dict[str, Measure] = {**BEFORE, **PER_DATABASE, **AFTER}


def _worker_env(redis_url: str, database_url: str) -> dict[str, str]:
    return {
        "HOOKLINE_ENV": "development",
        "SECRET_KEY": "bench-" + os.urandom(8).hex(),
        "HOOKLINE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
        "HOOKLINE_QUEUE_PREFIX": "bench",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
    }


def _start(settings: Settings, workdir: Path, stack: contextlib.ExitStack) -> Context:
    notes: list[str] = []
    nginx = infra.nginx_binary(install=True)
    if nginx:
        receiver = infra.start_nginx(nginx, workdir)
    else:
        receiver = infra.start_python_receiver(workdir, name="fast")
        notes.append("nginx could not be installed: the receiver is the threaded Python one.")
    stack.callback(receiver.stop)
    redis_server = infra.start_redis(workdir)
    stack.callback(redis_server.stop)

    postgres_uri = infra.scratch_postgres(settings.postgres_url)
    if postgres_uri is None:
        notes.append(f"PostgreSQL at {settings.postgres_url} was unreachable: no figures for it.")
    if settings.database == "postgresql" and postgres_uri:
        database_uri = postgres_uri
    else:
        database_uri = f"sqlite:///{workdir / 'bench.db'}"
    env = _worker_env(redis_server.url, database_uri)
    for name in [n for n in os.environ if n.startswith("HOOKLINE_")]:
        del os.environ[name]  # every other setting at its default
    os.environ.update(env)

    from tests.perf import system  # imported once the environment is set

    app = system.make_app(database_uri)
    system.migrate(app)
    return Context(
        settings, workdir, receiver, redis_server, env, app, database_uri, postgres_uri, notes
    )


def _database_contexts(ctx: Context) -> dict[str, Context]:
    """A context per database of BENCH_DATABASES: the main one for its own database, copies
    with their own app, worker environment and fleets for the others."""
    from tests.perf import system

    contexts: dict[str, Context] = {}
    for name in ctx.settings.databases:
        if name == ctx.database:
            contexts[name] = ctx
            continue
        if name == "postgresql" and ctx.postgres_uri is None:
            continue  # the note is made already
        uri = ctx.postgres_uri if name == "postgresql" else f"sqlite:///{ctx.workdir / 'per.db'}"
        app = system.make_app(uri)
        system.migrate(app)
        contexts[name] = dataclasses.replace(
            ctx,
            app=app,
            database_uri=uri,
            env={**ctx.env, "DATABASE_URL": uri},
            fleets={},
            figures={},
        )
    return contexts


def _measure(name: str, measure: Measure, ctx: Context) -> dict:
    """One figure; one that fails is kept as its error, and the bench goes on to the next (a
    full run is 20 minutes: a failure late in it must not lose the rest)."""
    log.info("measuring %s on %s", name, ctx.database)
    figure_started, load = time.monotonic(), os.getloadavg()[0]
    try:
        figure = measure(ctx)
    except Exception as exc:
        log.exception("%s on %s failed", name, ctx.database)
        ctx.notes.append(f"{name} on {ctx.database} failed: {exc!r}")
        figure = {"error": repr(exc)}
    figure["bench_seconds"] = round(time.monotonic() - figure_started, 1)
    figure["load_at_start"] = round(load, 2)
    figure["cpu_pressure_at_end"] = environment.cpu_pressure()
    if "error" not in figure:
        ctx.figures[name] = figure
    return figure


def run(settings: Settings) -> dict:
    """Measure every wanted figure; returns the results document."""
    workdir = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    log.info("servers, logs and databases in %s (BENCH_KEEP=1 keeps it)", workdir)
    started = time.monotonic()
    results: dict = {"figures": {}, "databases": {}, "environment": environment.describe()}
    with contextlib.ExitStack() as stack:
        ctx = _start(settings, workdir, stack)
        results["environment"].update(environment.versions(ctx))
        for name, measure in BEFORE.items():
            if settings.wants(name):
                results["figures"][name] = _measure(name, measure, ctx)
        contexts = _database_contexts(ctx)
        if any(settings.wants(name) for name in PER_DATABASE):
            results["environment"]["delivery_databases"] = list(contexts)
        for name, measure in PER_DATABASE.items():
            if settings.wants(name):
                for database, context in contexts.items():
                    figure = _measure(name, measure, context)
                    results["databases"].setdefault(database, {})[name] = figure
        for name, measure in AFTER.items():
            if settings.wants(name):
                results["figures"][name] = _measure(name, measure, ctx)
        results["notes"] = ctx.notes
    results["environment"]["load_after"] = os.getloadavg()
    results["environment"]["cpu_pressure_after"] = environment.cpu_pressure()
    results["total_seconds"] = time.monotonic() - started
    results["settings"] = {k: v for k, v in vars(settings).items() if k != "only"}
    results["settings"]["only"] = sorted(settings.only)
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> int:
    # Its own handler: Alembic's logging config replaces the root logger's when a figure migrates.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s bench: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    settings = Settings.from_env()
    results = run(settings)
    out = os.environ.get("BENCH_OUT")
    if out:
        target = Path(out)
    elif settings.quick or settings.only:
        target = Path(tempfile.gettempdir()) / "hookline-bench-results"
    else:
        target = infra.ROOT / "docs"
    target.mkdir(parents=True, exist_ok=True)
    (target / "performance.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = target / "performance.md"
    previous = markdown.read_text() if markdown.exists() else ""
    markdown.write_text(report.markdown(results, report.kept_analysis(previous)))
    log.info("wrote %s and %s", target / "performance.md", target / "performance.json")
    print(report.summary(results))
    failed = [
        name
        for figures in [results["figures"], *results["databases"].values()]
        for name, figure in figures.items()
        if "error" in figure
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
