"""`make bench`: start the real system, measure every figure, write docs/performance.{md,json}.

    python -m tests.perf.bench              # the full run (< 15 min), rewrites docs/
    BENCH_QUICK=1 python -m tests.perf.bench  # smoke run: small sizes, one repetition

BENCH_ONLY=ceiling,throughput runs some figures only; BENCH_DATABASE=postgres runs the delivery
figures on PostgreSQL instead of SQLite; BENCH_OUT=dir writes the results there instead. Quick and
partial runs never overwrite docs/ unless BENCH_OUT says so.
"""

from __future__ import annotations

import contextlib
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
    environment,
    infra,
    latency,
    profiling,
    publishing,
    report,
)
from tests.perf.context import Context, Settings

log = logging.getLogger("bench")

# Figure name → how to measure it. Order matters: latency runs at half the 1-worker maximum.
FIGURES: dict[str, Callable[[Context], dict]] = {
    "ceiling": delivery.ceiling,
    "naive": delivery.naive,
    "throughput_1": lambda ctx: delivery.throughput(ctx, 1),
    "throughput_2": lambda ctx: delivery.throughput(ctx, 2),
    "profile": profiling.profile,
    "latency": latency.end_to_end,
    "slow": latency.slow_receivers,
    "publish": publishing.publish_latency,
    "delivery_log": deliverylog.delivery_log,
}


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
    if settings.database == "postgres" and postgres_uri:
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


def run(settings: Settings) -> dict:
    """Measure every wanted figure; returns the results document."""
    workdir = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    log.info("servers, logs and databases in %s (BENCH_KEEP=1 keeps it)", workdir)
    started = time.monotonic()
    results: dict = {"figures": {}, "environment": environment.describe()}
    with contextlib.ExitStack() as stack:
        ctx = _start(settings, workdir, stack)
        results["environment"].update(environment.versions(ctx))
        for name, measure in FIGURES.items():
            if settings.wants(name):
                log.info("measuring %s", name)
                figure_started, load = time.monotonic(), os.getloadavg()[0]
                figure = measure(ctx)
                figure["bench_seconds"] = round(time.monotonic() - figure_started, 1)
                figure["load_at_start"] = round(load, 2)
                figure["cpu_pressure_at_end"] = environment.cpu_pressure()
                results["figures"][name] = ctx.figures[name] = figure
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
