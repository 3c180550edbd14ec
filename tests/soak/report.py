"""The soak's proof: what the database and the receivers say, checked, and written as Markdown.

The figures replace what sits between the soak markers in docs/reliability.md, so the prose
around them is written by hand and survives every run.
"""

from __future__ import annotations

import os
import platform
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

# One block per database, so a PostgreSQL run (DATABASE_URL) keeps the SQLite figures and back.
BEGIN = "<!-- soak:begin {database} (written by `make soak`; edit around it, not inside) -->"
END = "<!-- soak:end {database} -->"


@dataclass
class Result:
    """The checks (name, passed, detail), the figures, the timeline and the run's context."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    latency: list[tuple[str, int, float, float, float, float]] = field(default_factory=list)
    faults: list[tuple[str, float, float, float | None]] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    context: str = ""
    database: str = "SQLite"

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)


def _kind(url: str) -> str:
    return urlsplit(url).path.split("/")[1]


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def _resumed_after(samples, back: float) -> float | None:
    """Seconds from the end of a fault until another delivery finished."""
    base = next((finished for t, finished, _ in samples if t >= back), None)
    if base is None:
        return None
    for t, finished, _ in samples:
        if t > back and finished > base:
            return t - back
    return None


def _metric_totals(directory: Path) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    totals: dict[str, float] = defaultdict(float)
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "hookline_deliveries_total":
                totals[sample.labels["outcome"]] += sample.value
            elif sample.name == "hookline_attempt_duration_seconds_count":
                totals["attempts"] += sample.value
    return totals


def _verdicts(kind, last_answer, rows, attempts_by_delivery, requests_seen) -> tuple:
    """The deliveries to an endpoint `kind` that never succeeds, against the rule: `failed`
    after all 3 attempts (the last answer `last_answer`), or still `pending` after fewer (a
    circuit breaker defers them, and a deferral is not an attempt); either way every attempt
    counted on the delivery has its Attempt row (numbers 1..n) and reached the receiver.
    Returns the statuses, what broke the rule, the requests the receiver got and the attempts
    recorded."""
    statuses: Counter = Counter()
    wrong: list[tuple] = []
    requests = recorded = 0
    for delivery_id, status, attempt_count, last_status, event_id, url in rows:
        if _kind(url) != kind:
            continue
        statuses[status] += 1
        count, highest = attempts_by_delivery.get(delivery_id, (0, 0))
        seen = requests_seen.get((urlsplit(url).path, event_id), 0)
        requests += seen
        recorded += count
        ended = (status, attempt_count, last_status) == ("failed", 3, last_answer)
        waiting = status == "pending" and attempt_count < 3
        complete = count == attempt_count == highest and seen >= count
        if not ((ended or waiting) and complete):
            wrong.append((status, attempt_count, last_status, count, seen))
    return statuses, wrong, requests, recorded


def collect(app, plan, run, receivers, hang, workdir: Path, database_url: str) -> Result:
    """Check the run against the database and the receivers; gather the figures."""
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import Attempt, Delivery, Event, Subscription

    result = Result(timeline=run.timeline)
    stats = receivers.stats()
    answered_ok = {(p, i): n for p, i, n in stats["answered_ok"]}
    arrivals = {(p, i): n for p, i, n in stats["arrivals"]}
    hang_requests = Counter((path, webhook_id) for _, path, webhook_id in hang.requests())
    with app.app_context():
        full_rows = db.session.execute(
            select(
                Delivery.id,
                Delivery.status,
                Delivery.attempt_count,
                Delivery.last_response_status,
                Delivery.event_id,
                Subscription.url,
            ).join(Subscription, Subscription.id == Delivery.subscription_id)
        ).all()
        attempts_by_delivery = {
            delivery_id: (count, highest)
            for delivery_id, count, highest in db.session.execute(
                select(Attempt.delivery_id, func.count(), func.max(Attempt.number)).group_by(
                    Attempt.delivery_id
                )
            )
        }
        events = db.session.scalar(select(func.count()).select_from(Event))
        attempts = db.session.scalar(select(func.count()).select_from(Attempt))
        twice = db.session.scalar(
            select(func.count()).select_from(
                select(Attempt.delivery_id)
                .group_by(Attempt.delivery_id, Attempt.number)
                .having(func.count() > 1)
                .subquery()
            )
        )
        durations = db.session.execute(
            select(Attempt.duration_ms, Subscription.url)
            .join(Delivery, Delivery.id == Attempt.delivery_id)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
        ).all()
        db.session.remove()
    rows = [row[1:] for row in full_rows]
    fail_statuses, wrong_failures, fail_requests, fail_attempts = _verdicts(
        "fail", 500, full_rows, attempts_by_delivery, arrivals
    )
    hang_statuses, hang_wrong, hang_seen, hang_recorded = _verdicts(
        "hang", None, full_rows, attempts_by_delivery, hang_requests
    )

    by_kind: dict[str, Counter] = defaultdict(Counter)
    missing = 0
    healthy_ok_requests = healthy_unique = 0
    for status, _, _, event_id, url in rows:
        kind, path = _kind(url), urlsplit(url).path
        by_kind[kind][status] += 1
        if kind in ("ok", "slow") and status == "succeeded":
            seen = answered_ok.get((path, event_id), 0)
            missing += seen == 0
            healthy_ok_requests += seen
            healthy_unique += seen > 0
    statuses = Counter(status for status, *_ in rows)
    healthy = by_kind["ok"] + by_kind["slow"]
    healthy_total = sum(healthy.values())
    duplicates = healthy_ok_requests - healthy_unique
    redis_restarts = sum(1 for kind, *_ in run.fault_marks if kind == "redis")

    result.checks = [
        (
            "every delivery was created",
            len(rows) == plan.deliveries and events == plan.tenants * plan.events_per_tenant,
            f"{len(rows)} deliveries of {events} events (expected {plan.deliveries})",
        ),
        (
            "nothing pending or cancelled but to failing or hanging endpoints",
            statuses["pending"] == fail_statuses["pending"] + hang_statuses["pending"]
            and statuses["cancelled"] == 0,
            f"pending {statuses['pending'] - fail_statuses['pending'] - hang_statuses['pending']}"
            f", cancelled {statuses['cancelled']}",
        ),
        (
            "healthy and slow endpoints: every delivery succeeded",
            healthy["succeeded"] == healthy_total,
            f"{healthy['succeeded']} of {healthy_total} succeeded; other: "
            f"{dict(healthy - Counter(succeeded=healthy['succeeded'])) or 'none'}",
        ),
        (
            "failing endpoints: every delivery failed after 3 attempts (last answer 500), or "
            "is pending after fewer; every attempt counted is recorded and reached the receiver",
            not wrong_failures and fail_attempts > 0,
            f"{fail_statuses['failed']} failed, {fail_statuses['pending']} pending; wrong "
            "(status, attempts counted, last answer, recorded, requests seen): "
            f"{Counter(wrong_failures).most_common(3) or 'none'}",
        ),
        (
            "hanging endpoints: every delivery failed after 3 timeouts, or is pending after "
            "fewer; every attempt counted is recorded and reached the server",
            not hang_wrong and hang_recorded > 0,
            f"{hang_statuses['failed']} failed, {hang_statuses['pending']} pending; wrong "
            "(status, attempts counted, last answer, recorded, requests seen): "
            f"{Counter(hang_wrong).most_common(3) or 'none'}",
        ),
        (
            "receivers saw every succeeded delivery at least once",
            missing == 0,
            f"{healthy_unique} seen, {missing} missing",
        ),
        (
            "every request carried a valid signature",
            stats["bad_signatures"] == 0,
            f"{stats['bad_signatures']} bad signatures",
        ),
        ("no attempt recorded twice", twice == 0, f"{twice} (delivery, number) pairs repeated"),
        ("no errors, finished in time", not run.errors, "; ".join(run.errors) or "none"),
    ]

    drain_window = (run.finished_at or run.at()) - (run.publish_started or 0)
    publish_seconds = (run.publish_ended or 0) - (run.publish_started or 0)
    total_requests = sum(arrivals.values())
    metrics = _metric_totals(workdir / "metrics")
    result.figures = [
        (
            "deliveries",
            f"{len(rows):,} ({statuses['succeeded']:,} succeeded, {statuses['failed']:,} failed, "
            f"{statuses['pending']:,} pending)",
        ),
        (
            "endpoints (ok / slow 1–3 s / failing 500 / hanging)",
            f"{plan.endpoints - _count(rows, 'slow', 'fail', 'hang')} / {_count(rows, 'slow')} / "
            f"{_count(rows, 'fail')} / {_count(rows, 'hang')}",
        ),
        ("attempts recorded", f"{attempts:,}"),
        (
            "requests the receivers got",
            f"{total_requests:,} complete; {stats['incomplete']:,} cut off and "
            f"{stats['connection_errors']:,} answers unread (killed workers, timeouts)",
        ),
        (
            "duplicate deliveries (2xx answered more than once)",
            f"{duplicates:,} = {duplicates / max(1, healthy_unique):.2%} of succeeded ones",
        ),
        (
            "failing endpoints: requests vs attempts recorded",
            f"{fail_requests:,} vs {fail_attempts:,} "
            f"({fail_requests - fail_attempts:+,} unrecorded, made by killed workers)",
        ),
        (
            "failing / hanging endpoints: failed, and still pending at the end",
            f"{fail_statuses['failed']:,} and {fail_statuses['pending']:,} / "
            f"{hang_statuses['failed']:,} and {hang_statuses['pending']:,} (the run waited "
            f"{run.waited_on_failing:.0f} s for them once the rest was done, at most "
            f"{run.failing_settle_seconds} s)",
        ),
        (
            "hanging endpoints: requests read vs attempts recorded",
            f"{hang_seen:,} vs {hang_recorded:,} ({hang_seen - hang_recorded:+,} unrecorded, "
            "cut off by killed or stopped workers)",
        ),
        ("workers SIGKILLed / Redis restarts", f"{run.kills} / {redis_restarts}"),
        ("publishing", f"{run.published:,} events in {publish_seconds:.1f} s"),
        (
            "first publish → last delivery finished (but to hanging endpoints)",
            f"{drain_window:.1f} s ({len(rows) / max(drain_window, 0.001):.0f} deliveries/s)",
        ),
        ("whole run (setup, soak, checks)", f"{run.at():.1f} s"),
        (
            "worker metrics (hookline_deliveries_total)",
            ", ".join(f"{k} {int(v):,}" for k, v in sorted(metrics.items()) if k != "attempts")
            + f"; {int(metrics['attempts']):,} attempts timed",
        ),
    ]
    grouped: dict[str, list[int]] = defaultdict(list)
    for duration, url in durations:
        grouped[_kind(url)].append(duration)
    result.latency = [
        (
            kind,
            len(values),
            _percentile(values, 0.5),
            _percentile(values, 0.95),
            _percentile(values, 0.99),
            float(max(values)),
        )
        for kind, values in sorted(grouped.items())
    ]
    result.faults = [
        (kind, start, back, _resumed_after(run.samples, back))
        for kind, start, back in run.fault_marks
    ]
    database = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    loads = run.loads or [0.0]
    result.database = database
    result.context = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs (load average "
        f"{sum(loads) / len(loads):.1f} mean, {max(loads):.1f} max: other work shared them), "
        f"Python {platform.python_version()}, {database}, Redis on its own port, 3 `flask worker` "
        f"processes ({app.config['HOOKLINE_WORKER_CONCURRENCY']} sending threads each), retry schedule 1 s, 2 s, delivery timeout "
        f"{run.delivery_timeout} s; "
        f"{'quick' if plan.deliveries < 20000 else 'full'} plan: {plan.tenants} tenants × "
        f"{plan.endpoints_per_tenant} endpoints × {plan.events_per_tenant} events"
    )
    return result


def _count(rows, *kinds: str) -> int:
    return len({url for *_, url in rows if _kind(url) in kinds})


def render(result: Result, quick: bool) -> str:
    """The Markdown section for docs/reliability.md."""
    verdict = "PASS" if result.passed else "FAIL"
    lines = [
        f"### Latest run on {result.database}: {verdict}{' (quick plan)' if quick else ''}",
        "",
        f"{result.context}.",
        "",
        "| check | result | detail |",
        "|---|---|---|",
        *(
            f"| {name} | {'pass' if ok else '**FAIL**'} | {detail} |"
            for name, ok, detail in result.checks
        ),
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in result.figures),
        "",
        "Attempt durations by endpoint kind (ms, from the attempts table):",
        "",
        "| endpoints | attempts | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
        *(
            f"| {kind} | {n:,} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {top:.0f} |"
            for kind, n, p50, p95, p99, top in result.latency
        ),
        "",
        "Faults (seconds since the soak started; *resumed* is how long after the fault ended "
        "the next delivery finished):",
        "",
        "| fault | at | over at | resumed after |",
        "|---|---|---|---|",
        *(
            f"| {'worker SIGKILL + restart' if kind == 'kill' else 'Redis SIGKILL + restart'} | "
            f"{start:.1f} | {back:.1f} | {'—' if resumed is None else f'{resumed:.1f} s'} |"
            for kind, start, back, resumed in result.faults
        ),
        "",
        "<details><summary>Timeline</summary>",
        "",
        "```",
        *(f"{at:7.1f}s  {text}" for at, text in result.timeline),
        "```",
        "",
        "</details>",
    ]
    return "\n".join(lines)


def write(path: Path, section: str, database: str) -> None:
    """Replace this database's figures between their markers in `path` (append if absent)."""
    begin, end = BEGIN.format(database=database), END.format(database=database)
    text = path.read_text() if path.exists() else "# Reliability\n"
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
