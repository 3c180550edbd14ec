"""Receivers that are not nginx: a busy endpoint, dead endpoints beside healthy ones, and a
noisy neighbour's backlog beside another tenant's fresh events.

Each is measured black-box, from what the receivers logged and what the database says at the
end, so the same figure means the same thing for any delivery engine:

- busy: one endpoint on the threaded Python receiver answering after 50 ms, one worker at its
  default settings, a backlog replayed as in the throughput figure. Its ceilings, measured in
  the same run: the worker's sending slots ÷ the receiver's measured latency, and a plain
  client with as many threads (one requests.Session each).
- dead: 100 endpoints, 30 of them on a server that reads each request and never answers, 40
  events (one commit each, fanned out to all 100) with HOOKLINE_DELIVERY_TIMEOUT=5. The 70
  healthy endpoints' deliveries/s and publish → arrival delays, beside a run of 70 healthy
  endpoints alone. The run ends when every healthy delivery has arrived (or at its limit); the
  dead endpoints' deliveries may still be pending then, and the worker is stopped after 3 s.
- neighbour: tenant A's one endpoint has a backlog draining (an outage's worth, published
  with the workers stopped) while tenant B publishes a few events, paced, to its idle
  endpoint: B's publish → arrival latency.
"""

from __future__ import annotations

import logging
import time

from tests.perf import baselines, delivery, infra, system
from tests.perf.context import Context
from tests.perf.payload import TYPE_NAMES
from tests.perf.stats import latency_summary, spread
from tests.servers import HangServer

log = logging.getLogger("bench")

BUSY_DELAY = 0.05  # seconds the busy receiver takes to answer
LATENCY_SAMPLES = 30
DEAD_ENDPOINTS, DEAD_EVERY_TEN = 100, 3  # endpoints i with i % 10 < 3 never answer: 30 of 100
DEAD_TIMEOUT = "5"  # HOOKLINE_DELIVERY_TIMEOUT for the dead runs' workers
DEAD_STOP_GRACE = 3.0
WAITING_CPU_SECONDS = 3.0  # the worker's CPU is sampled this long once only dead work remains
RECORD_GRACE = 10.0  # seconds the database may take to show arrived deliveries as succeeded
NEIGHBOUR_RATE = 4.0  # tenant B's events per second
NEIGHBOUR_HEAD_START = 0.05  # share of A's backlog delivered before B starts publishing
NEIGHBOUR_LIMIT = 120.0  # seconds B's events may take before the run is cut off
FAN_OUT_TYPE = TYPE_NAMES[0]


def busy(ctx: Context) -> dict:
    """A backlog to one endpoint that answers after 50 ms, beside its two ceilings."""
    server = infra.start_python_receiver(ctx.workdir, delay=BUSY_DELAY, name=f"busy-{ctx.database}")
    try:
        fleet = system.seed_fleet(ctx.app, "busy", [server.url])
        system.publish_backlog(ctx.app, fleet, ctx.settings.busy_events)
        threads = ctx.app.config["HOOKLINE_WORKER_CONCURRENCY"]
        runs = []
        with delivery.running_workers(ctx, 1):
            for _ in range(ctx.settings.reps):
                measured = baselines.run_latency(server.url, LATENCY_SAMPLES)["median_seconds"]
                raw = baselines.run_concurrent(server.url, ctx.settings.busy_events, threads)
                run = delivery.replay(ctx, fleet)
                run.update(
                    latency_ms=measured * 1000,
                    ceiling_per_second=threads / measured,
                    raw_per_second=raw["per_second"],
                )
                runs.append(run)
    finally:
        server.stop()
    result = {
        "events": ctx.settings.busy_events,
        "receiver_delay_ms": BUSY_DELAY * 1000,
        "worker_concurrency": threads,
        "per_second": spread([r["per_second"] for r in runs]),
        "receiver_latency_ms": spread([r["latency_ms"] for r in runs]),
        "ceiling_per_second": spread([r["ceiling_per_second"] for r in runs]),
        "raw_concurrent_per_second": spread([r["raw_per_second"] for r in runs]),
        "vs_ceiling": spread([r["per_second"] / r["ceiling_per_second"] for r in runs]),
        "vs_raw_concurrent": spread([r["per_second"] / r["raw_per_second"] for r in runs]),
    }
    log.info(
        "busy endpoint on %s: %s/s, ceiling %s/s, raw %s threads %s/s",
        ctx.database,
        [round(r["per_second"]) for r in runs],
        [round(r["ceiling_per_second"]) for r in runs],
        threads,
        [round(r["raw_per_second"]) for r in runs],
    )
    return result


def _is_dead(i: int) -> bool:
    return i % 10 < DEAD_EVERY_TEN


def dead(ctx: Context) -> dict:
    """70 healthy endpoints beside 30 that never answer, and the same 70 alone."""
    events, limit = ctx.settings.dead_events, ctx.settings.dead_seconds
    hang = HangServer(ctx.workdir / f"hang-{ctx.database}.log", lifetime=3 * limit + 120)
    hang.start()
    tenants = []
    try:
        healthy = [i for i in range(DEAD_ENDPOINTS) if not _is_dead(i)]
        solo = system.seed_fleet(
            ctx.app,
            "dead-solo",
            [f"{ctx.receiver.logged_url}?solo={i}" for i in healthy],
            events=[FAN_OUT_TYPE],
        )
        tenants.append(solo.tenant_id)
        mixed = system.seed_fleet(
            ctx.app,
            "dead-mixed",
            [
                hang.url(f"/hang?e={i}") if _is_dead(i) else f"{ctx.receiver.logged_url}?e={i}"
                for i in range(DEAD_ENDPOINTS)
            ],
            events=[FAN_OUT_TYPE],
        )
        tenants.append(mixed.tenant_id)
        dead_ids = [s for i, s in enumerate(mixed.subscription_ids) if _is_dead(i)]
        alone = _fan_out_run(ctx, solo, solo.subscription_ids, events, limit)
        beside = _fan_out_run(ctx, mixed, [s for s in mixed.subscription_ids if s not in dead_ids],
                              events, limit, waiting_cpu=True)  # fmt: skip
        beside["dead"] = system.status_counts(ctx.app, dead_ids)
        beside["dead"]["requests_received"] = len(hang.requests())
    finally:
        hang.stop()
        for tenant_id in tenants:  # nothing of theirs may be swept into a later figure
            system.clear_history(ctx.app, tenant_id)
    result = {
        "endpoints": DEAD_ENDPOINTS,
        "dead_endpoints": len(dead_ids),
        "events": events,
        "delivery_timeout_seconds": int(DEAD_TIMEOUT),
        "limit_seconds": limit,
        "solo": alone,
        "with_dead": beside,
        "throughput_ratio": beside["per_second"] / alone["per_second"],
        "p99_over_solo_ms": beside["delay_ms"]["p99"] - alone["delay_ms"]["p99"],
    }
    log.info(
        "dead endpoints on %s: healthy %.0f/s (solo %.0f/s), p99 %.0f ms (solo %.0f ms), "
        "last healthy arrival after %.1f s, %d of %d arrived",
        ctx.database,
        beside["per_second"],
        alone["per_second"],
        beside["delay_ms"]["p99"],
        alone["delay_ms"]["p99"],
        beside["last_arrival_seconds"],
        beside["arrived"],
        beside["expected"],
    )
    return result


def _fan_out_run(
    ctx: Context,
    fleet: system.Fleet,
    healthy_ids: list[str],
    events: int,
    limit: float,
    waiting_cpu: bool = False,
) -> dict:
    """Publish `events` events back to back (each fans out to every endpoint of the fleet) to
    a fresh worker; measure the healthy endpoints' arrivals."""
    urls = {s: u for s, u in zip(fleet.subscription_ids, fleet.urls, strict=True)}
    healthy_paths = {"/" + urls[s].split("/", 3)[3] for s in healthy_ids}
    publisher = system.Fleet(fleet.tenant_id, fleet.subscription_ids, [FAN_OUT_TYPE], fleet.urls)
    timeout = {"HOOKLINE_DELIVERY_TIMEOUT": DEAD_TIMEOUT}
    with delivery.running_workers(ctx, 1, grace=DEAD_STOP_GRACE, env=timeout) as workers:
        ctx.receiver.clear_arrivals()
        sent = system.publish_paced(ctx.app, publisher, rate=1e6, count=events)
        published = {event_id: called for event_id, called, _ in sent}
        expected = len(healthy_ids) * len(sent)
        arrivals = _wait_for_arrivals(ctx, healthy_paths, published, expected, limit)
        waited_until = time.time()
        # What the database says a moment later (the arrivals are the figure; this is a check).
        settled = system.wait_until_settled(ctx.app, healthy_ids, expected, RECORD_GRACE)
        cpu_while_waiting = None
        if waiting_cpu:  # only the dead endpoints' deliveries are left (or the limit was hit)
            pid = workers.processes[0].pid
            before = system.cpu_seconds(pid)
            time.sleep(WAITING_CPU_SECONDS)
            cpu_while_waiting = (system.cpu_seconds(pid) - before) / WAITING_CPU_SECONDS
    statuses = system.status_counts(ctx.app, healthy_ids)
    first = min(published.values())
    # A delivery that never arrived counts as arriving when the run was cut off: a lower bound.
    delays = [(at - published[event_id]) * 1000 for (event_id, _), at in arrivals.items()]
    missing = expected - len(arrivals)
    delays += [(waited_until - first) * 1000] * missing
    last = waited_until if missing else max(arrivals.values())
    return {
        "expected": expected,
        "arrived": len(arrivals),
        "settled_in_db": settled,
        "complete": missing == 0,
        "healthy_statuses": statuses,
        "per_second": len(arrivals) / max(1e-9, last - first),
        "delay_ms": latency_summary(delays),
        "last_arrival_seconds": last - first,
        "publish_seconds": max(published.values()) - first,
        "worker_cpu_while_waiting": cpu_while_waiting,
    }


def _wait_for_arrivals(
    ctx: Context,
    paths: set[str],
    published: dict[str, float],
    expected: int,
    limit: float,
) -> dict[tuple[str, str], float]:
    """(webhook-id, path) → first arrival at the logged receiver of the published events on
    those paths, once all `expected` have arrived or `limit` seconds have passed."""
    deadline = time.monotonic() + limit
    while True:
        arrivals: dict[tuple[str, str], float] = {}
        for request in ctx.receiver.requests():  # flushes nginx's log buffer first
            if request.path in paths and request.webhook_id in published:
                arrivals.setdefault((request.webhook_id, request.path), request.at)
        if len(arrivals) >= expected or time.monotonic() >= deadline:
            return arrivals
        time.sleep(0.1)


def neighbour(ctx: Context) -> dict:
    """Tenant B's fresh events while tenant A's backlog drains."""
    backlog, count = ctx.settings.neighbour_backlog, ctx.settings.neighbour_events
    a = system.seed_fleet(ctx.app, "neighbour-a", [ctx.receiver.url])
    b = system.seed_fleet(ctx.app, "neighbour-b", [f"{ctx.receiver.logged_url}?tenant=b"])
    system.publish_backlog(ctx.app, a, backlog)  # the workers are stopped: an outage's backlog
    try:
        with delivery.running_workers(ctx, 1):
            ctx.receiver.clear_arrivals()
            system.reset_backlog(ctx.app, a)  # kicks the drain, as the publishing commits did
            drain_started = time.monotonic()
            system.wait_until_settled(
                ctx.app, a.subscription_ids, int(NEIGHBOUR_HEAD_START * backlog), 60
            )
            head_start = time.monotonic() - drain_started
            sent = system.publish_paced(
                ctx.app, b, NEIGHBOUR_RATE, count, max_seconds=2 * count / NEIGHBOUR_RATE
            )
            a_left = backlog - system.settled_count(ctx.app, a.subscription_ids)
            published = {event_id: called for event_id, called, _ in sent}
            b_path = "/" + b.urls[0].split("/", 3)[3]
            found = _wait_for_arrivals(ctx, {b_path}, published, len(sent), NEIGHBOUR_LIMIT)
            cut_off = time.time()
            a_done = system.wait_until_settled(
                ctx.app, a.subscription_ids, backlog, NEIGHBOUR_LIMIT
            )
            a_seconds = time.monotonic() - drain_started
    finally:
        for fleet in (a, b):
            system.clear_history(ctx.app, fleet.tenant_id)
    arrivals = {event_id: at for (event_id, _), at in found.items()}
    missing = [event_id for event_id, _, _ in sent if event_id not in arrivals]
    delays = [(arrivals.get(event_id, cut_off) - called) * 1000 for event_id, called, _ in sent]
    result = {
        "backlog": backlog,
        "events": len(sent),
        "rate": NEIGHBOUR_RATE,
        "latency_ms": latency_summary(delays),
        "missing": len(missing),
        "a_left_when_b_done": a_left,
        "a_head_start_seconds": head_start,
        "a_per_second": a_done / max(1e-9, a_seconds),
        "a_delivered": a_done,
        "valid": a_left > 0,
    }
    log.info(
        "neighbour on %s: B's p50 %.0f ms, p99 %.0f ms, max %.0f ms; A had %d left",
        ctx.database,
        result["latency_ms"]["p50"],
        result["latency_ms"]["p99"],
        result["latency_ms"]["max"],
        a_left,
    )
    return result
