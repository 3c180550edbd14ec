"""End-to-end latency (publish → receiver) at half load, and slow receivers beside fast ones.

Receive times come from nginx's access log on a second port (`$msec $http_webhook_id`, flushed
every 200 ms and read after the run), so the receiver stays nginx; the publish time is taken
just before `publish()` is called, so the figure includes publish, commit and the enqueue.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from tests.perf import delivery, infra, system
from tests.perf.context import Context
from tests.perf.stats import combine, latency_summary, spread

log = logging.getLogger("bench")

HALF = 0.5
SLOW_SHARE = 0.10
SLOW_DELAY = 2.0  # seconds before a slow endpoint answers
WARMUP_EVENTS = 20
# Events kept of the throughput backlog for the slow runs: the fast 90% of them take a while
# to get through while slow endpoints hold sending slots, and three runs must fit the budget.
SLOW_BACKLOG_EVENTS = 2000
MAX_EVENTS = 20_000
LATENCY_KEYS = ("p50", "p95", "p99", "max")


def half_load_rate(ctx: Context) -> float:
    """Half of the measured 1-worker maximum (BENCH_LATENCY_RATE when that was not measured)."""
    one = ctx.figures.get("throughput_1")
    if one:
        return HALF * one["per_second"]["median"]
    return float(os.environ.get("BENCH_LATENCY_RATE", "100"))


def latency_fleet(ctx: Context) -> system.Fleet:
    """50 subscriptions on nginx's logged port, seeded once."""
    if "latency" not in ctx.fleets:
        urls = [ctx.receiver.logged_url] * ctx.settings.subscriptions
        ctx.fleets["latency"] = system.seed_fleet(ctx.app, "latency", urls)
    return ctx.fleets["latency"]


def _warm_up(ctx: Context, fleet: system.Fleet, fast: list[int]) -> None:
    """A few deliveries to fast endpoints first, so connections and caches are warm."""
    warm = system.Fleet(
        fleet.tenant_id,
        [fleet.subscription_ids[i] for i in fast],
        [fleet.types[i] for i in fast],
        [fleet.urls[i] for i in fast],
    )
    system.publish_paced(ctx.app, warm, rate=50, count=WARMUP_EVENTS)
    system.wait_until_settled(ctx.app, warm.subscription_ids, WARMUP_EVENTS, 60)


def paced_run(ctx: Context, fleet: system.Fleet, rate: float, fast: list[int]) -> dict:
    """One paced run through the running worker; latency of the deliveries to `fast` endpoints.

    Starts from an empty history, so the worker must be idle (everything earlier settled)."""
    system.clear_history(ctx.app, fleet.tenant_id)
    _warm_up(ctx, fleet, fast)
    ctx.receiver.clear_arrivals()
    count = max(50, min(MAX_EVENTS, int(rate * ctx.settings.latency_seconds)))
    limit = 1.5 * ctx.settings.latency_seconds
    sent = system.publish_paced(ctx.app, fleet, rate, count, max_seconds=limit)
    fast_set = set(fast)
    measured = [row for i, row in enumerate(sent) if i % len(fleet.types) in fast_set]
    fast_ids = [fleet.subscription_ids[i] for i in fast]
    expected = WARMUP_EVENTS + len(measured)
    system.wait_until_settled(ctx.app, fast_ids, expected, delivery.SETTLE_TIMEOUT)
    system.delivered_throughput(ctx.app, fast_ids, expected)  # asserts all succeeded, logged
    arrivals = ctx.receiver.arrivals()
    missing = [eid for eid, _, _ in measured if eid not in arrivals]
    if missing:
        raise AssertionError(f"{len(missing)} deliveries never reached the receiver's log")
    summary = latency_summary([(arrivals[eid] - called) * 1000 for eid, called, _ in measured])
    summary["from_commit"] = latency_summary(
        [(arrivals[eid] - committed) * 1000 for eid, _, committed in measured]
    )
    summary["achieved_rate"] = len(sent) / max(1e-9, sent[-1][1] - sent[0][1])
    return summary


def _summarise(runs: list[dict]) -> dict:
    """Medians over runs, from the publish() call and from the commit's return."""
    return {
        **combine(runs, LATENCY_KEYS),
        "from_commit": combine([r["from_commit"] for r in runs], LATENCY_KEYS),
    }


def end_to_end(ctx: Context) -> dict:
    """Publish → receiver latency at half of the 1-worker maximum, one event per commit."""
    fleet = latency_fleet(ctx)
    rate = half_load_rate(ctx)
    everyone = list(range(len(fleet.subscription_ids)))
    with delivery.running_workers(ctx, 1):
        runs = [paced_run(ctx, fleet, rate, everyone) for _ in range(ctx.settings.reps)]
    log.info("end-to-end at %.0f/s: p50 %s", rate, [round(r["p50"], 1) for r in runs])
    return {
        "target_rate": rate,
        "achieved_rate": spread([r["achieved_rate"] for r in runs]),
        "events_per_run": runs[0]["count"],
        **_summarise(runs),
    }


def _slow_indices(count: int) -> list[int]:
    return list(range(max(1, round(count * SLOW_SHARE))))


def slow_receivers(ctx: Context) -> dict:
    """10% of endpoints answer after 2 s: the other 90%'s throughput and latency."""
    slow_server = infra.start_python_receiver(ctx.workdir, delay=SLOW_DELAY, name="slow")
    try:
        throughput_runs = _slow_throughput(ctx, slow_server.url)
        latency_runs = _slow_latency(ctx, slow_server.url)
    finally:
        slow_server.stop()
    solo = ctx.figures.get("throughput_1")
    fast = spread([r["per_second"] for r in throughput_runs])
    result = {
        "slow_share": SLOW_SHARE,
        "slow_delay_seconds": SLOW_DELAY,
        "fast_per_second": fast,
        "fast_deliveries_per_run": throughput_runs[0]["count"],
        "backlog_events": min(SLOW_BACKLOG_EVENTS, ctx.settings.backlog_events),
        "solo_per_second": solo["per_second"] if solo else None,
        "throughput_ratio": fast["median"] / solo["per_second"]["median"] if solo else None,
        "latency": _summarise(latency_runs),
        "latency_rate": half_load_rate(ctx),
    }
    solo_latency = ctx.figures.get("latency")
    if solo_latency:
        result["solo_latency"] = {k: solo_latency[k] for k in (*LATENCY_KEYS, "from_commit")}
    log.info("slow receivers: fast endpoints at %.0f/s", fast["median"])
    return result


def _fresh_worker(ctx: Context, run: Callable[[], dict]) -> dict:
    """`run` with a worker of its own: the slow endpoints leave deliveries in flight, which a
    worker would keep sending for its whole drain budget; it is killed after 3 s instead."""
    with delivery.running_workers(ctx, 1, grace=3.0):
        return run()


def _slow_throughput(ctx: Context, slow_url: str) -> list[dict]:
    """The throughput backlog with its first 10% of subscriptions pointed at the slow server."""
    fleet = delivery.backlog_fleet(ctx)
    system.trim_backlog(ctx.app, fleet, SLOW_BACKLOG_EVENTS)  # the last figure to replay it
    slow = _slow_indices(len(fleet.subscription_ids))
    slow_ids = [fleet.subscription_ids[i] for i in slow]
    fast_ids = [s for s in fleet.subscription_ids if s not in slow_ids]
    system.repoint(ctx.app, slow_ids, slow_url)
    try:
        return [
            _fresh_worker(ctx, lambda: delivery.replay(ctx, fleet, fast_ids))
            for _ in range(ctx.settings.reps)
        ]
    finally:
        system.repoint(ctx.app, slow_ids, ctx.receiver.url)


def _slow_latency(ctx: Context, slow_url: str) -> list[dict]:
    """The paced half-load run with 10% of its endpoints slow; latency of the others."""
    fleet = latency_fleet(ctx)
    slow = _slow_indices(len(fleet.subscription_ids))
    fast = [i for i in range(len(fleet.subscription_ids)) if i not in slow]
    slow_ids = [fleet.subscription_ids[i] for i in slow]
    system.repoint(ctx.app, slow_ids, slow_url)
    try:
        rate = half_load_rate(ctx)
        return [
            _fresh_worker(ctx, lambda: paced_run(ctx, fleet, rate, fast))
            for _ in range(ctx.settings.reps)
        ]
    finally:
        system.repoint(ctx.app, slow_ids, ctx.receiver.logged_url)
