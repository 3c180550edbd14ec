"""Endpoints that ask to be sent less: a receiver answering 429 + Retry-After, and a
`rate_limit` that holds a worker back (and what the waiting costs it in CPU).

- throttle_429: every 50th request to one endpoint is answered `429` with `Retry-After: 3`.
  For each 429, the gap until the next request reached that receiver; requests that arrived
  within IN_FLIGHT_SECONDS of the 429 were on the wire before the worker read it, and are
  counted apart. Every delivery must still succeed (a short retry schedule for this run).
- capped_cpu: one endpoint with `Subscription.rate_limit` set, and the same number of
  deliveries to nginx free-flowing. The worker's CPU (utime + stime from /proc, its children
  included) per delivery in each, and while it is idle, in the same worker.
"""

from __future__ import annotations

import logging
import time

from tests.perf import delivery, infra, system
from tests.perf.context import Context

log = logging.getLogger("bench")

THROTTLE_EVERY = 50
RETRY_AFTER = 3  # seconds
# The schedule's longest delay caps how long a Retry-After may hold a delivery back, so it
# must be at least RETRY_AFTER; six retries so a delivery throttled twice still succeeds.
THROTTLE_SCHEDULE = "1,1,1,1,1,5"
IN_FLIGHT_SECONDS = 0.1
THROTTLE_LIMIT = 90.0  # seconds the throttled backlog may take before the run is cut off
RATE_LIMIT = 20  # deliveries per second
IDLE_SECONDS = 3.0


def _gaps(requests: list[infra.Request]) -> list[dict]:
    """For each 429: seconds to the next request after the in-flight window, and how many
    requests arrived inside that window."""
    ordered = sorted(requests, key=lambda r: r.at)
    found = []
    for i, request in enumerate(ordered):
        if request.status != 429:
            continue
        later = ordered[i + 1 :]
        in_flight = sum(1 for r in later if r.at - request.at <= IN_FLIGHT_SECONDS)
        after = next((r for r in later if r.at - request.at > IN_FLIGHT_SECONDS), None)
        seen_before = {r.webhook_id for r in ordered[: ordered.index(after)]} if after else set()
        found.append(
            {
                "at": request.at,
                "gap_seconds": after.at - request.at if after else None,
                "in_flight": in_flight,
                # the next request was a retry: nothing else was left to send
                "next_is_retry": bool(after) and after.webhook_id in seen_before,
            }
        )
    return found


def throttle_429(ctx: Context) -> dict:
    """A backlog to an endpoint that throttles now and then with Retry-After."""
    server = infra.start_python_receiver(
        ctx.workdir,
        name=f"throttle-{ctx.database}",
        throttle_every=THROTTLE_EVERY,
        retry_after=RETRY_AFTER,
    )
    events = ctx.settings.throttle_events
    try:
        fleet = system.seed_fleet(ctx.app, "throttle", [server.url])
        system.publish_backlog(ctx.app, fleet, events)
        schedule = {"HOOKLINE_RETRY_SCHEDULE": THROTTLE_SCHEDULE}
        with delivery.running_workers(ctx, 1, env=schedule):
            started = time.monotonic()
            system.reset_backlog(ctx.app, fleet)
            settled = system.wait_until_settled(
                ctx.app, fleet.subscription_ids, events, THROTTLE_LIMIT
            )
            seconds = time.monotonic() - started
        requests = server.requests()
        statuses = system.status_counts(ctx.app, fleet.subscription_ids)
    finally:
        server.stop()
    gaps = _gaps(requests)
    measured = [g["gap_seconds"] for g in gaps if g["gap_seconds"] is not None]
    result = {
        "events": events,
        "every": THROTTLE_EVERY,
        "retry_after_seconds": RETRY_AFTER,
        "retry_schedule": THROTTLE_SCHEDULE,
        "in_flight_window_seconds": IN_FLIGHT_SECONDS,
        "throttled": len(gaps),
        "requests": len(requests),
        "gaps": gaps,
        "gap_min_seconds": min(measured, default=None),
        "gap_max_seconds": max(measured, default=None),
        "in_flight_after_429": sum(g["in_flight"] for g in gaps),
        "no_request_after": sum(1 for g in gaps if g["gap_seconds"] is None),
        "statuses": statuses,
        "all_succeeded": statuses.get("succeeded", 0) == events and settled >= events,
        "seconds": seconds,
    }
    log.info(
        "429 on %s: %d throttled, gaps %s s, %d in flight, %s",
        ctx.database,
        len(gaps),
        [round(g, 2) for g in measured],
        result["in_flight_after_429"],
        statuses,
    )
    return result


def _cpu_run(ctx: Context, pid: int, fleet: system.Fleet, timeout: float, replay: bool) -> dict:
    """Deliver the fleet's backlog through the running worker: replay the one published
    already, or publish it now. The worker's CPU seconds meanwhile."""
    before = system.cpu_seconds(pid)
    if replay:
        system.reset_backlog(ctx.app, fleet)
    else:
        system.publish_backlog(ctx.app, fleet, ctx.settings.capped_events)
    count = system.count_deliveries(ctx.app, fleet.subscription_ids)
    settled = system.wait_until_settled(ctx.app, fleet.subscription_ids, count, timeout)
    cpu = system.cpu_seconds(pid) - before
    run = system.delivered_throughput(ctx.app, fleet.subscription_ids, count, strict=False)
    run.update(settled=settled, cpu_seconds=cpu, cpu_ms_per_delivery=1000 * cpu / count)
    return run


def capped_cpu(ctx: Context) -> dict:
    """CPU per delivery to an endpoint held at its rate_limit, beside free flow and idle.

    Only one of the two backlogs is ever pending: the free one is published with the worker
    stopped and replayed, the capped one is published once the free one is delivered (a
    drain takes whatever is due, so a capped backlog waiting beside would be sent with it)."""
    events = ctx.settings.capped_events
    free = system.seed_fleet(ctx.app, "free-flow", [ctx.receiver.url])
    capped = system.seed_fleet(ctx.app, "capped", [ctx.receiver.url])
    system.set_rate_limit(ctx.app, capped.subscription_ids, RATE_LIMIT)
    system.publish_backlog(ctx.app, free, events)
    with delivery.running_workers(ctx, 1) as workers:
        pid = workers.processes[0].pid
        time.sleep(1.0)  # past the start's last work (the scheduler's first rounds)
        before = system.cpu_seconds(pid)
        time.sleep(IDLE_SECONDS)
        idle = (system.cpu_seconds(pid) - before) / IDLE_SECONDS
        free_run = _cpu_run(ctx, pid, free, delivery.SETTLE_TIMEOUT, replay=True)
        capped_run = _cpu_run(ctx, pid, capped, 3 * events / RATE_LIMIT + 60, replay=False)
    result = {
        "events": events,
        "rate_limit": RATE_LIMIT,
        "idle_cpu_ms_per_second": 1000 * idle,
        "free": free_run,
        "capped": capped_run,
        "capped_vs_free": capped_run["cpu_ms_per_delivery"] / free_run["cpu_ms_per_delivery"],
        "capped_idle_share_ms": 1000 * idle * capped_run["seconds"] / events,
        "rate_held": capped_run["per_second"] <= 1.1 * RATE_LIMIT,
    }
    log.info(
        "capped on %s: %.2f ms CPU/delivery at %.1f/s (limit %d), free flow %.2f ms at %.0f/s, "
        "idle %.1f ms/s; attempts %d and %d for %d each",
        ctx.database,
        capped_run["cpu_ms_per_delivery"],
        capped_run["per_second"],
        RATE_LIMIT,
        free_run["cpu_ms_per_delivery"],
        free_run["per_second"],
        result["idle_cpu_ms_per_second"],
        capped_run["attempts"],
        free_run["attempts"],
        events,
    )
    return result
