"""Delivery figures: raw ceiling, naive RQ, Hookline throughput with 1 and 2 workers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from tests.perf import baselines, system
from tests.perf.context import Context
from tests.perf.stats import spread

log = logging.getLogger("bench")

SETTLE_TIMEOUT = 300.0  # seconds; a backlog that takes longer is a failure, not a figure


def ceiling(ctx: Context) -> dict:
    """One plain process, one kept-alive requests.Session, sequential POSTs."""
    runs = [
        baselines.run_ceiling(ctx.receiver.url, ctx.settings.ceiling_requests)
        for _ in range(ctx.settings.reps)
    ]
    log.info("raw ceiling: %s", [round(r["per_second"]) for r in runs])
    return {
        "requests_per_run": ctx.settings.ceiling_requests,
        "per_second": spread([r["per_second"] for r in runs]),
    }


def naive(ctx: Context) -> dict:
    """One RQ job per delivery doing requests.post, one default forking `rq worker`."""
    runs = [
        baselines.run_naive(ctx.redis.url, ctx.receiver.url, ctx.settings.naive_jobs, ctx.workdir)
        for _ in range(ctx.settings.reps)
    ]
    log.info("naive RQ: %s", [round(r["per_second"], 1) for r in runs])
    return {
        "jobs_per_run": ctx.settings.naive_jobs,
        "per_second": spread([r["per_second"] for r in runs]),
    }


def backlog_fleet(ctx: Context, subscriptions: int | None = None) -> system.Fleet:
    """A throughput fleet (50 subscriptions on the fast receiver unless told otherwise) and its
    published backlog, made once per bench run and database."""
    count = subscriptions or ctx.settings.subscriptions
    name = "throughput" if count == ctx.settings.subscriptions else f"throughput-{count}"
    if name not in ctx.fleets:
        fleet = system.seed_fleet(ctx.app, name, [ctx.receiver.url] * count)
        system.publish_backlog(ctx.app, fleet, ctx.settings.backlog_events)
        ctx.fleets[name] = fleet
    return ctx.fleets[name]


@contextlib.contextmanager
def running_workers(
    ctx: Context,
    count: int,
    grace: float = 20.0,
    on_running: Callable[[list[int]], None] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[system.Workers]:
    """`count` fresh `flask worker` processes, ready (registered with RQ) on entry, stopped on
    exit (SIGTERM, SIGKILL after `grace` seconds). `env` adds settings for these workers only."""
    ctx.redis.client().flushdb()
    workers = system.Workers({**ctx.env, **(env or {})}, ctx.workdir)
    try:
        pids = workers.start(count)
        workers.wait_ready(ctx.redis.url)
        if on_running is not None:
            on_running(pids)
        yield workers
    finally:
        workers.stop(grace)


def replay(ctx: Context, fleet: system.Fleet, measured: list[str] | None = None) -> dict:
    """Put the backlog back and let the running workers deliver it; time and check the
    deliveries to the `measured` subscriptions (all of the fleet's by default)."""
    measured = measured or fleet.subscription_ids
    system.reset_backlog(ctx.app, fleet)
    count = system.count_deliveries(ctx.app, measured)
    settled = system.wait_until_settled(ctx.app, measured, count, SETTLE_TIMEOUT)
    if settled < count:
        raise AssertionError(f"only {settled} of {count} deliveries settled")
    return system.delivered_throughput(ctx.app, measured, count)


def throughput(ctx: Context, workers: int, subscriptions: int | None = None) -> dict:
    """Hookline's sustained delivery rate through a backlog, every attempt logged.

    The same worker processes serve every repetition (started once, warm after the first), so
    their memory after the last one is the figure for a worker that has been busy a while.

    Each repetition is paired with a raw-ceiling run just before it (the workers idle then):
    this machine's speed drifts by 10–15% between minutes, and a ratio of two runs made side
    by side is what the goals compare."""
    fleet = backlog_fleet(ctx, subscriptions)
    runs = []
    with running_workers(ctx, workers) as processes:
        for _ in range(ctx.settings.reps):
            beside = baselines.run_ceiling(ctx.receiver.url, ctx.settings.ceiling_requests)
            runs.append(replay(ctx, fleet))
            runs[-1]["rss_mb"] = processes.rss_mb()
            runs[-1]["ceiling_per_second"] = beside["per_second"]
    log.info(
        "hookline %d worker(s), %d endpoints, %s: %s, paired ceiling %s",
        workers,
        len(fleet.subscription_ids),
        ctx.database,
        [round(r["per_second"]) for r in runs],
        [round(r["ceiling_per_second"]) for r in runs],
    )
    return {
        "workers": workers,
        "deliveries_per_run": runs[0]["count"],
        "subscriptions": len(fleet.subscription_ids),
        "per_second": spread([r["per_second"] for r in runs]),
        "paired_ceiling_per_second": spread([r["ceiling_per_second"] for r in runs]),
        "vs_paired_ceiling": spread([r["per_second"] / r["ceiling_per_second"] for r in runs]),
        "rss_mb": spread([max(size["worker"] for size in r["rss_mb"]) for r in runs]),
        "pss_with_children_mb": spread(
            [max(size["with_children"] for size in r["rss_mb"]) for r in runs]
        ),
    }
