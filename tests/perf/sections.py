"""The per-figure sections of docs/performance.md, and the number formatting they share."""

from __future__ import annotations

from collections.abc import Callable


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def spread_cell(s: dict | None, digits: int = 1) -> tuple[str, str]:
    if not s:
        return "—", "—"
    return fmt(s["median"], digits), f"{fmt(s['min'], digits)}–{fmt(s['max'], digits)}"


def _latency_rows(label: str, figure: dict | None) -> list[str]:
    if not figure:
        return []
    cells = [spread_cell(figure.get(k)) for k in ("p50", "p95", "p99")]
    return [f"| {label} | " + " | ".join(f"{m} ({s})" for m, s in cells) + " |"]


def _latency_section(results: dict) -> list[str]:
    f = results["figures"]
    figure = f.get("latency")
    if not figure:
        return []
    achieved, achieved_span = spread_cell(figure["achieved_rate"])
    return [
        "## End-to-end latency, publish → receiver (ms)",
        "",
        f"Paced publisher: one event per commit at half the 1-worker maximum "
        f"({fmt(figure['target_rate'], 0)}/s asked, {achieved}/s achieved, {achieved_span}), "
        f"about {figure['events_per_run']:,} events per run, 1 `flask worker`, 50 endpoints. "
        "From just before `publish()` to nginx's `$msec` for the request's `webhook-id`.",
        "",
        "| from | p50 median (min–max) | p95 | p99 |",
        "|---|---:|---:|---:|",
        *_latency_rows("`publish()` called", figure),
        *_latency_rows("its commit returned", figure.get("from_commit")),
        "",
    ]


def _slow_section(results: dict) -> list[str]:
    figure = results["figures"].get("slow")
    if not figure:
        return []
    fast, fast_span = spread_cell(figure["fast_per_second"])
    solo, solo_span = spread_cell(figure.get("solo_per_second"))
    return [
        "## Slow receivers: 10% of endpoints answer after 2 s",
        "",
        f"Throughput: the first {figure.get('backlog_events', 0):,} events of the throughput "
        "backlog with 5 of its 50 "
        "endpoints pointed at a threaded Python server that sleeps 2 s, 1 worker; the rate "
        f"counts the 45 fast endpoints' {figure.get('fast_deliveries_per_run', 0):,} "
        "deliveries only. Solo: the full backlog, all endpoints fast (the 1-worker figure).",
        "",
        "| what | median | spread |",
        "|---|---:|---:|",
        f"| fast endpoints, 10% slow beside them (deliveries/s) | {fast} | {fast_span} |",
        f"| fast endpoints, solo (deliveries/s) | {solo} | {solo_span} |",
        f"| ratio | {fmt(figure.get('throughput_ratio'), 2)} | |",
        "",
        f"Latency of the fast endpoints at the same paced half load "
        f"({fmt(figure['latency_rate'], 0)}/s asked), ms:",
        "",
        "| what (from the commit's return) | p50 median (min–max) | p95 | p99 |",
        "|---|---:|---:|---:|",
        *_latency_rows("10% of endpoints slow", figure["latency"].get("from_commit")),
        *_latency_rows(
            "solo (no slow endpoint)", (figure.get("solo_latency") or {}).get("from_commit")
        ),
        "",
    ]


def _publish_section(results: dict) -> list[str]:
    figure = results["figures"].get("publish")
    if not figure:
        return []
    lines = [
        "## `publish()` latency: publish + commit, in-process (ms)",
        "",
        f"`{figure['event_type']}` with its catalog example (JSON Schema validated), "
        f"{figure['samples_per_run']} publishes per run after a warm-up, each one its own "
        "transaction. The commit's kick finds either a drain job already waiting (one Redis "
        "SET: what nearly every publish pays while workers are busy) or none (it also enqueues "
        "an RQ job: the first publish after a drain starts, or into an idle system).",
        "",
        "| database | drain job waiting | fan-out | p50 median (min–max) | p95 | p99 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for db_name in ("sqlite", "postgresql"):
        for key, waiting in ((db_name, "yes"), (f"{db_name}_no_drain_waiting", "no")):
            for fanout, row in (figure.get(key) or {}).items():
                cells = [spread_cell(row[k], 2) for k in ("p50", "p95", "p99")]
                lines.append(
                    f"| {db_name} | {waiting} | {fanout} | "
                    + " | ".join(f"{m} ({s})" for m, s in cells)
                    + " |"
                )
    profile = figure.get("profile_fanout_1_sqlite")
    if profile:
        lines += [
            "",
            "Where a publish's time goes (cProfile of 100 publishes, fan-out 1, SQLite, no drain "
            "waiting; share of the total including what each function calls):",
            "",
            "| function | % |",
            "|---|---:|",
            *[f"| `{row['function']}` | {row['percent']} |" for row in profile],
        ]
    return [*lines, ""]


def _log_section(results: dict) -> list[str]:
    figure = results["figures"].get("delivery_log")
    if not figure:
        return []
    lines = [
        "## Delivery log, first page (ms)",
        "",
        f"{figure['deliveries']:,} deliveries × 4 attempts of one tenant (80% succeeded, 15% "
        "failed, 5% pending, 10 endpoints), bulk-inserted; first page via Flask's test client "
        "(API `limit=50`, portal page of 25), each timed "
        "over the requests of a run after 3 warm-ups.",
        "",
        "| database | page | p50 median (min–max) | p95 median (min–max) |",
        "|---|---|---:|---:|",
    ]
    for db_name in ("postgresql", "sqlite"):
        data = figure.get(db_name)
        if not data:
            continue
        for page, row in data["pages"].items():
            (p50, s50), (p95, s95) = spread_cell(row["p50"]), spread_cell(row["p95"])
            lines.append(f"| {db_name} | {page} | {p50} ({s50}) | {p95} ({s95}) |")
    fills = ", ".join(
        f"{n}: {figure[n]['attempts']:,} attempts in {figure[n]['fill_seconds']:.0f} s"
        for n in ("postgresql", "sqlite")
        if n in figure
    )
    return [*lines, "", f"Bulk insert: {fills}.", ""]


def _sizes_cell(sizes: dict) -> str:
    """attempts / deliveries / events, total MiB (heap + indexes) each."""
    return " / ".join(f"{sizes[t]['total']:,}" for t in ("attempts", "deliveries", "events"))


def _retention_section(results: dict) -> list[str]:
    figure = results["figures"].get("retention")
    if not figure or "idle" not in figure:
        return []
    seeded, load = figure["seeded"], figure["under_load"]
    idle = figure["idle"]["rows_per_second"] if figure["idle"]["rows"] else None
    runs = lambda values: ", ".join(fmt(v, 0) for v in values)  # noqa: E731
    intake = "; ".join(
        f"{fmt(row['rows_per_second'], 0)} rows/s with {row['attempts_per_delivery']} "
        f"attempt{'s' if row['attempts_per_delivery'] > 1 else ''} each: "
        f"{fmt(row['vs_intake'], 0)}×"
        for row in figure["intake"]
    )
    return [
        "## Retention at scale (PostgreSQL)",
        "",
        f"{sum(seeded.values()):,} expired rows ({seeded['attempts']:,} attempts, "
        f"{seeded['deliveries']:,} deliveries, {seeded['events']:,} events of 1 KiB) filled in SQL "
        f"in {figure['fill_seconds']:.0f} s into a database of the figure's own, then VACUUMed "
        "(month-old rows have been). One `flask worker` (its own sweeps off) delivers "
        f"{fmt(figure['load_rate'], 0)} events/s, paced, to nginx, in runs of "
        f"{fmt(figure['load_seconds'], 0)} s; in every other run a second process runs "
        "`maintenance.prune()` sweeps back to back beside it (production runs one sweep of at "
        f"most {fmt(figure['prune_seconds_per_sweep'], 0)} s every "
        f"{figure['sweep_interval']} s: this is its worst case). Timings on a shared 2-core "
        "machine are noisy.",
        "",
        "| what | measured | judged against |",
        "|---|---:|---|",
        f"| prune rate, nothing else running (rows/s) | {fmt(idle, 0)} | "
        f"{figure['idle']['rows']:,} rows left after the runs beside the worker |",
        f"| prune rate beside the delivering worker (rows/s) | {fmt(load['rows_per_second'], 0)} "
        f"| {load['rows']:,} rows in {load['seconds']:.0f} s |",
        f"| what sweeps keep up with: {fmt(figure['prune_seconds_per_sweep'], 0)} s of every "
        f"{figure['sweep_interval']} s at the rate beside the worker (rows/s) | "
        f"{fmt(figure['sustained_rows_per_second'], 0)} | intake at "
        f"{fmt(figure['intake_deliveries_per_second'], 0)} deliveries/s: {intake}; goal ≥ 5× |",
        f"| delivery p99, publish → receiver, runs without pruning (ms) | "
        f"{runs(figure['p99_without_ms'])} | |",
        f"| delivery p99, runs with pruning back to back, between those (ms) | "
        f"{runs(figure['p99_with_ms'])} | median with − median without: "
        f"{fmt(figure['p99_added_ms'], 0)} ms; goal ≤ +100 ms |",
        f"| delivery p50 without / with pruning (ms) | {runs(figure['p50_without_ms'])} / "
        f"{runs(figure['p50_with_ms'])} | |",
        f"| table sizes after the fill, MiB (attempts / deliveries / events) | "
        f"{_sizes_cell(figure['size_mib_full'])} | |",
        f"| … after pruning all of it and VACUUM (twice) | "
        f"{_sizes_cell(figure['size_mib_vacuumed'])} | deletes free space, they do not shrink |",
        f"| … after a second fill of half as many rows | "
        f"{_sizes_cell(figure['size_mib_refilled_half'])} | "
        f"{fmt(figure['refilled_vs_emptied'], 2)} × the emptied tables; goal ≤ 1.05 (the "
        "space is reused) |",
        "",
        "The bench's PostgreSQL server has autovacuum off, so the figure runs VACUUM where "
        "autovacuum would; with autovacuum on, a table is vacuumed once its dead rows pass "
        "`autovacuum_vacuum_scale_factor` (0.2) of it, so it stays within about that above its "
        "live rows.",
        "",
    ]


def _profile_section(results: dict) -> list[str]:
    figure = results["figures"].get("profile")
    if not figure or not figure.get("available"):
        return []
    lines = [
        "## Profile of one worker under load",
        "",
        "`py-spy record --nonblocking --gil --format raw --rate 250 --pid <worker>` during an "
        f"extra 1-worker backlog run ({fmt(figure['per_second_while_profiled'], 0)} "
        f"deliveries/s while profiled, {figure['samples']:,} samples holding the GIL).",
        "",
        "Top functions by own time (share of GIL-holding samples):",
        "",
        "| # | function | % |",
        "|---:|---|---:|",
    ]
    lines += [
        f"| {i} | `{row['function']}` | {row['percent']} |"
        for i, row in enumerate(figure["self"], 1)
    ]
    lines += ["", "Own time by package:", "", "| package | % |", "|---|---:|"]
    lines += [f"| {row['package']} | {row['percent']} |" for row in figure["packages"]]
    lines += ["", "Dispatcher functions including what they call:", "", "| function | % |"]
    lines += ["|---|---:|"]
    lines += [
        f"| `{row['function']}` | {row['percent']} |" for row in figure["dispatcher_inclusive"]
    ]
    return [*lines, ""]


def _method_section(results: dict) -> list[str]:
    s = results.get("settings", {})
    return [
        "## How each figure is made",
        "",
        "- Every server is the bench's own: nginx (`return 200`, keep-alive, access log off) on "
        "a free 127.0.0.1 port, a second nginx port that logs `$msec $http_webhook_id "
        "$request_uri` for latency, the threaded Python receiver (tests/perf/receiver.py, "
        "TCP_NODELAY) for the slow, busy and throttling endpoints, a server that never answers "
        "(tests/servers.py `HangServer`) for the dead ones, `redis-server` without persistence, "
        "a fresh SQLite file, and a scratch PostgreSQL database (recreated each run; the test "
        "database is untouched). Only 127.0.0.1 receives traffic.",
        "- Workers are `flask worker` subprocesses with DATABASE_URL/REDIS_URL set and every "
        "HOOKLINE_* setting at its default (HOOKLINE_SWEEP_INTERVAL included), except where a "
        "section names one (the dead endpoints' delivery timeout, the 429 run's schedule).",
        "- Per database: the throughput, busy, dead, neighbour, 429 and rate_limit figures run "
        "on SQLite and on PostgreSQL, figure by figure, so each pair is measured minutes apart "
        "on the same machine. The yardsticks, the profile, the half-load latency and the slow "
        "receivers run once, on the database in the machine table; publish latency and the "
        "delivery log measure both databases themselves.",
        f"- Throughput: {s.get('backlog_events', '?'):,} events (1 KiB bodies) published with "
        "`publish()` in transactions of 100 across 50 (or 10) endpoints, workers stopped. The "
        "workers start once per figure and serve every run; each run puts the same deliveries "
        "back to `pending` as publish wrote them and kicks a drain as the publishing commit "
        "does (a backlog, as after a bulk publish or an outage, with one drain job queued). The "
        "rate runs from the first attempt's `started_at` to the last delivery's `updated_at`; "
        "every delivery must end `succeeded` with exactly one Attempt row, or the bench fails.",
        "- Raw ceiling: `python -m tests.perf.baselines ceiling URL N` in its own process, "
        "`requests.Session` with `trust_env = False`, signing each request like Hookline; "
        "`baselines concurrent URL N THREADS` is the same from THREADS threads at once and "
        "`baselines latency URL N` times single requests in sequence.",
        "- Naive: N jobs `tests.perf.baselines.deliver` (sign, `requests.post`), one "
        "`rq worker --burst` (RQ's default forking Worker); rate from the first job's start to "
        "the last job's end. Nothing is logged to a database.",
        "- Repetitions: "
        f"{s.get('reps', '?')} per figure for the throughput, busy, latency and log figures, "
        "one for the dead, neighbour, 429 and rate_limit scenarios; medians with min–max. The "
        "load average of the machine at the start of each figure is in performance.json "
        "(`load_at_start`): other work on the machine moves every figure.",
        "- Options: `BENCH_QUICK=1` (small sizes, one repetition, results under "
        "/tmp/hookline-bench-results), `BENCH_ONLY=busy,dead,…` (figure names as in "
        "performance.json), `BENCH_DATABASES=sqlite` (the per-database figures on fewer "
        "databases), `BENCH_DATABASE=postgres` (the single-database figures on PostgreSQL), "
        "`BENCH_REPS`, `BENCH_EVENTS`, `BENCH_POSTGRES_URL` (a scratch database, recreated), "
        "`BENCH_KEEP=1` (keep the run's directory: receiver, Redis and worker logs, py-spy "
        "output), `BENCH_OUT=dir`.",
        "",
    ]


SECTIONS: list[Callable[[dict], list[str]]] = [
    _latency_section,
    _slow_section,
    _publish_section,
    _log_section,
    _retention_section,
    _profile_section,
    _method_section,
]
