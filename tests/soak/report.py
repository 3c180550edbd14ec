"""The soak's proof: what the database and the receivers say, checked, and written as Markdown.

The figures replace what sits between the soak markers in docs/reliability.md, so the prose
around them is written by hand and survives every run.
"""

from __future__ import annotations

import bisect
import itertools
import os
import platform
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

# One block per database, so a PostgreSQL run keeps the SQLite figures and back.
BEGIN = "<!-- soak:begin {database} (written by `make soak`; edit around it, not inside) -->"
END = "<!-- soak:end {database} -->"


FAULT_NAMES = {
    "kill": "worker SIGKILL + restart",
    "redis": "Redis SIGKILL + restart",
    "rolling": "rolling restart: SIGTERM, replace, 2 s, × 3",
    "postgres": "PostgreSQL `pg_ctl -m immediate`, 5 s down, start",
}
AROUND_BEFORE = 5.0  # a delivery published this long before a fault began is "around" it
BASELINE_SECONDS = 10.0  # the window just before that, for comparison


@dataclass
class FaultFigures:
    """One fault: when (seconds since the start), how deliveries went through it."""

    kind: str
    start: float
    back: float
    resumed: float | None  # from the end of the fault to the next delivery finished
    gap: float | None  # the longest pause between 2xx answers from its start to 5 s after it
    delay_ok: float | None  # the longest commit → first-2xx delay of deliveries published
    delay_slow: float | None  # ... from AROUND_BEFORE s before it began until it ended
    baseline_ok: float | None  # the same for those published in the BASELINE_SECONDS before


@dataclass
class Result:
    """The checks (name, passed, detail), the figures, the timeline and the run's context."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    latency: list[tuple[str, int, float, float, float, float]] = field(default_factory=list)
    faults: list[FaultFigures] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
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


def _first_answers(log_path: Path) -> dict[tuple[str, str], float]:
    """(path, webhook-id) -> unix time of the first 2xx answer, from the receivers' log."""
    first: dict[tuple[str, str], float] = {}
    if not log_path.exists():
        return first
    for line in log_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "1":
            key = (parts[1], parts[2])
            at = float(parts[0])
            if key not in first or at < first[key]:
                first[key] = at
    return first


def _longest(values) -> float | None:
    values = list(values)
    return max(values) if values else None


def _longest_gap(times: list[float], begin: float, end: float) -> float | None:
    """The longest pause between 2xx answers (sorted `times`) from `begin` to `end`, counting
    from `begin` to the first answer and to the first answer after `end`."""
    i = bisect.bisect_left(times, begin)
    j = bisect.bisect_right(times, end)
    points = [begin, *times[i : j + 1]]  # up to the first answer after `end`, if there is one
    if len(points) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(points))


def _fault_figures(run, delays: dict[str, list[tuple[float, float]]], times: list[float]):
    """Per fault: resumption, the longest pause in answers, the longest delays around it."""
    figures = []
    for kind, start, back in run.fault_marks:
        begin, end = run.wall_started + start, run.wall_started + back

        def longest(endpoint_kind: str, low: float, high: float) -> float | None:
            return _longest(d for at, d in delays[endpoint_kind] if low <= at <= high)

        figures.append(
            FaultFigures(
                kind,
                start,
                back,
                _resumed_after(run.samples, back),
                _longest_gap(times, begin, end + 5),
                longest("ok", begin - AROUND_BEFORE, end),
                longest("slow", begin - AROUND_BEFORE, end),
                longest("ok", begin - AROUND_BEFORE - BASELINE_SECONDS, begin - AROUND_BEFORE),
            )
        )
    return figures


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    pick = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99)]
    return f"p50 {pick[0]:.1f} s, p99 {pick[1]:.1f} s, max {ordered[-1]:.1f} s"


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


def collect(app, plan, run, receivers, hang, workdir: Path, database) -> Result:
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
        published = db.session.execute(select(Event.id, Event.idempotency_key, Event.data)).all()
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
    faults_done = Counter(kind for kind, *_ in run.fault_marks)
    keys = {key for _, key, _ in published}
    invoices = {(data or {}).get("invoice_id") for _, _, data in published}
    expected_events = plan.tenants * plan.events_per_tenant
    outages = [
        (start, back + run.outage_grace)
        for kind, start, back in run.fault_marks
        if kind == "postgres"
    ]
    stray_failures = [
        (round(at, 1), stage, error)
        for at, stage, error in run.publish_failures
        if not any(low <= at <= high for low, high in outages)
    ]
    commit_failures = sum(1 for _, stage, _ in run.publish_failures if stage == "commit")

    # Delays: from the commit that published an event to its endpoint's first 2xx answer.
    first_ok = _first_answers(workdir / "arrivals.log")
    delays: dict[str, list[tuple[float, float]]] = defaultdict(list)  # kind -> (published, s)
    for status, _, _, event_id, url in rows:
        kind = _kind(url)
        answered = first_ok.get((urlsplit(url).path, event_id))
        committed = run.published_at.get(event_id)
        if kind in ("ok", "slow") and status == "succeeded" and answered and committed:
            delays[kind].append((committed, answered - committed))
    answer_times = sorted(first_ok.values())
    result.faults = _fault_figures(run, delays, answer_times)
    result.skipped = list(run.skipped)

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
        (
            "every event published exactly once, however often its round was retried",
            events == len(keys) == len(invoices) == expected_events,
            f"{events} events, {len(keys)} idempotency keys, {len(invoices)} invoice ids "
            f"(expected {expected_events}); {run.rounds_retried} rounds retried, "
            f"{run.replays} events replayed",
        ),
        (
            "publishing failed only while the database was down (to "
            f"{run.outage_grace:g} s after it was back)",
            not stray_failures,
            f"{len(run.publish_failures)} failed tries, "
            f"{len(run.publish_failures) - len(stray_failures)} during an outage; other: "
            f"{stray_failures[:3] or 'none'}",
        ),
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
        (
            "workers SIGKILLed / SIGTERMed (rolling restart) / Redis restarts / PostgreSQL "
            "restarts",
            f"{run.kills} / {len(run.terms)} / {faults_done['redis']} / {faults_done['postgres']}",
        ),
        (
            "rolling restart: SIGTERM → exit, per worker",
            (
                ", ".join(
                    f"{took:.1f} s" + ("" if code == 0 else f" (exit code {code})")
                    for _, took, code in run.terms
                )
                + f"; {run.handed_back} in-flight sends handed back (worker logs)"
            )
            if run.terms
            else "none",
        ),
        (
            "publishing",
            f"{run.published:,} events in {publish_seconds:.1f} s; {len(run.publish_failures)} "
            f"failed tries ({commit_failures} at the commit) in {run.rounds_retried} rounds of "
            f"{plan.tenants} events, each retried until it committed; {run.replays} events were "
            "replays (a failed commit that had succeeded)",
        ),
        (
            "delivery delay, commit → first 2xx (ok endpoints; slow ones)",
            f"{_percentiles([d for _, d in delays['ok']])}; "
            f"{_percentiles([d for _, d in delays['slow']])}",
        ),
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
    loads = run.loads or [0.0]
    result.database = database.engine
    result.context = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs (load average "
        f"{sum(loads) / len(loads):.1f} mean, {max(loads):.1f} max: other work shared them), "
        f"Python {platform.python_version()}, {database.label}, Redis on its own port, "
        f"3 `flask worker` processes ({app.config['HOOKLINE_WORKER_CONCURRENCY']} sending "
        "slots each, on one asyncio loop), retry schedule 1 s, 2 s, delivery timeout "
        f"{run.delivery_timeout} s; "
        f"{'quick' if plan.deliveries < 20000 else 'full'} plan: {plan.tenants} tenants × "
        f"{plan.endpoints_per_tenant} endpoints × {plan.events_per_tenant} events"
    )
    return result


def _count(rows, *kinds: str) -> int:
    return len({url for *_, url in rows if _kind(url) in kinds})


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


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
        "Faults (seconds since the soak started). *Resumed* is how long after the fault ended "
        "the next delivery finished; *pause* the longest stretch without a 2xx answer from the "
        "fault's start to 5 s after its end; *delay* the longest from an event's commit to its "
        f"endpoint's first 2xx answer, for events committed from {AROUND_BEFORE:g} s before the "
        f"fault until its end (ok endpoints / slow ones), and for the {BASELINE_SECONDS:g} s "
        "before that (ok endpoints), which may include an earlier fault or the backlog of a "
        "burst:",
        "",
        "| fault | at | over at | resumed after | pause | delay (ok / slow) | delay before |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {FAULT_NAMES[f.kind]} | {f.start:.1f} | {f.back:.1f} | {_s(f.resumed)} | "
            f"{_s(f.gap)} | {_s(f.delay_ok)} / {_s(f.delay_slow)} | {_s(f.baseline_ok)} |"
            for f in result.faults
        ),
        *(["", *(f"- {line}" for line in result.skipped)] if result.skipped else []),
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
