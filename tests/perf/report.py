"""docs/performance.md from the results document: a table per figure, ratios, goals met or not."""

from __future__ import annotations

from collections.abc import Callable

COMMAND = "make bench   # = .venv/bin/python -m tests.perf.bench"
NOTES_START = "<!-- analysis: kept by make bench -->"
NOTES_END = "<!-- end of analysis -->"
NOTES_PLACEHOLDER = (
    "(What the profile shows, what each change bought, and what would close the goals not met.)"
)


def kept_analysis(previous: str) -> str:
    """The hand-written analysis block of an earlier performance.md, which a rerun keeps."""
    start, end = previous.find(NOTES_START), previous.find(NOTES_END)
    if start < 0 or end < start:
        return NOTES_PLACEHOLDER
    return previous[start + len(NOTES_START) : end].strip() or NOTES_PLACEHOLDER


def _median(figures: dict, name: str, key: str = "per_second") -> float | None:
    figure = figures.get(name)
    return figure[key]["median"] if figure and key in figure else None


def _get(figures: dict, *path: str) -> float | None:
    node = figures
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def goals(results: dict) -> list[dict]:
    """Each goal of issue 6 with its measured value (None when the figure was not run)."""
    f = results["figures"]
    ceiling = _median(f, "ceiling")
    one, two = _median(f, "throughput_1"), _median(f, "throughput_2")
    rows: list[tuple[str, float | None, str, Callable[[float], bool]]] = [
        (
            "1 worker / raw ceiling",
            one / ceiling if one and ceiling else None,
            "≥ 0.60",
            lambda v: v >= 0.60,
        ),
        ("2 workers / 1 worker", two / one if one and two else None, "≥ 1.50", lambda v: v >= 1.50),
        (
            "end-to-end p50 at half load (ms)",
            _get(f, "latency", "p50", "median"),
            "≤ 15",
            lambda v: v <= 15,
        ),
        (
            "end-to-end p99 at half load (ms)",
            _get(f, "latency", "p99", "median"),
            "≤ 100",
            lambda v: v <= 100,
        ),
    ]
    for db_name in ("sqlite", "postgresql"):
        rows.append(
            (
                f"publish p50, fan-out 1, {db_name} (ms)",
                _get(f, "publish", db_name, "1", "p50", "median"),
                "≤ 2",
                lambda v: v <= 2,
            )
        )
        rows.append(
            (
                f"publish p50, fan-out 100, {db_name} (ms)",
                _get(f, "publish", db_name, "100", "p50", "median"),
                "≤ 15",
                lambda v: v <= 15,
            )
        )
    rows.append(
        (
            "fast endpoints' throughput with 10% slow / solo",
            _get(f, "slow", "throughput_ratio"),
            "≥ 0.70",
            lambda v: v >= 0.70,
        )
    )
    for name, page in (_get(f, "delivery_log", "pages") or {}).items():
        rows.append(
            (f"delivery log: {name}, p95 (ms)", page["p95"]["median"], "≤ 50", lambda v: v <= 50)
        )
    rows.append(
        (
            "worker RSS after the throughput runs, largest (MiB)",
            max(
                (f[n]["rss_mb"]["max"] for n in ("throughput_1", "throughput_2") if n in f),
                default=None,
            ),
            "≤ 120",
            lambda v: v <= 120,
        )
    )
    return [
        {"goal": goal, "measured": value, "target": target,
         "met": None if value is None else bool(check(value))}
        for goal, value, target, check in rows
    ]  # fmt: skip


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def _spread_cell(s: dict | None, digits: int = 1) -> tuple[str, str]:
    if not s:
        return "—", "—"
    return _fmt(s["median"], digits), f"{_fmt(s['min'], digits)}–{_fmt(s['max'], digits)}"


def _machine(results: dict) -> list[str]:
    e = results["environment"]
    pk = e.get("packages", {})
    load = ", ".join(f"{x:.2f}" for x in e.get("load_before", ()))
    load_after = ", ".join(f"{x:.2f}" for x in e.get("load_after", ()))
    return [
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {e['cpu_model']}, nproc = {e['nproc']} |",
        f"| memory | {e['memory_gib']} GiB |",
        f"| kernel | {e['kernel']} |",
        f"| load average before / after (1, 5, 15 min) | {load} / {load_after} |",
        f"| CPU pressure (PSI some avg60) before / after | {_pct(e.get('cpu_pressure_before'))} "
        f"/ {_pct(e.get('cpu_pressure_after'))} |",
        f"| commit | {e['commit']} |",
        f"| Python | {e.get('python', '?')} |",
        f"| Redis | {e.get('redis', '?')} (its own server, no persistence) |",
        f"| SQLite | {e.get('sqlite', '?')} (WAL, synchronous=NORMAL) |",
        f"| PostgreSQL | {e.get('postgresql', '?')} (scratch database) |",
        f"| receiver | {e.get('receiver', '?')} |",
        f"| delivery figures' database | {e.get('database_for_delivery', '?')} |",
        "| packages | " + ", ".join(f"{k} {v}" for k, v in pk.items()) + " |",
        "",
    ]


def _throughput_section(results: dict) -> list[str]:
    f = results["figures"]
    lines = [
        "## Delivery throughput (deliveries/s)",
        "",
        "| what | runs × size | median | spread (min–max) | vs raw ceiling |",
        "|---|---|---:|---:|---:|",
    ]
    ceiling = _median(f, "ceiling")
    rows = [
        ("raw ceiling: one process, kept-alive requests.Session, no queue, no DB", "ceiling",
         "requests_per_run"),
        ("naive: one RQ job per delivery doing requests.post, default forking `rq worker`",
         "naive", "jobs_per_run"),
        ("Hookline, 1 `flask worker`, every attempt logged", "throughput_1", "deliveries_per_run"),
        ("Hookline, 2 `flask worker`s, every attempt logged", "throughput_2", "deliveries_per_run"),
    ]  # fmt: skip
    for label, name, size_key in rows:
        figure = f.get(name)
        if not figure:
            continue
        median, span = _spread_cell(figure["per_second"])
        ratio = figure["per_second"]["median"] / ceiling if ceiling else None
        runs = len(figure["per_second"]["runs"])
        lines.append(f"| {label} | {runs} × {figure[size_key]:,} | {median} | {span} | "
                     f"{_fmt(ratio, 2)} |")  # fmt: skip
    lines.append("")
    return lines


def markdown(results: dict, analysis: str = NOTES_PLACEHOLDER) -> str:
    """The whole of docs/performance.md; `analysis` is the hand-written block it keeps."""
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (tests/perf/): rerun it rather than editing the figures. Only",
        "the analysis between the two HTML comments below is hand-written; a rerun keeps it.",
        "Figures are medians over repeated runs with the spread (min–max) beside them.",
        "",
        f"Command: `{COMMAND}` — took {results['total_seconds'] / 60:.1f} min.",
        "",
    ]
    if results.get("notes"):
        lines += ["Notes:", "", *[f"- {note}" for note in results["notes"]], ""]
    lines += ["## Analysis", "", NOTES_START, "", analysis, "", NOTES_END, ""]
    lines += _machine(results)
    lines += ["## Goals (issue 6)", "", "| goal | measured | target | met |", "|---|---:|---:|---|"]
    for goal in goals(results):
        met = {True: "met", False: "**not met**", None: "not measured"}[goal["met"]]
        lines.append(f"| {goal['goal']} | {_fmt(goal['measured'], 2)} | {goal['target']} | {met} |")
    lines.append("")
    lines += _throughput_section(results)
    for section in SECTIONS:
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"


def summary(results: dict) -> str:
    """A few lines for the terminal."""
    out = []
    for goal in goals(results):
        met = {True: "met", False: "NOT MET", None: "not measured"}[goal["met"]]
        out.append(f"{goal['goal']:<55} {_fmt(goal['measured'], 2):>10} {goal['target']:>7}  {met}")
    return "\n".join(out)


def _latency_rows(label: str, figure: dict | None) -> list[str]:
    if not figure:
        return []
    cells = [_spread_cell(figure.get(k)) for k in ("p50", "p95", "p99")]
    return [f"| {label} | " + " | ".join(f"{m} ({s})" for m, s in cells) + " |"]


def _latency_section(results: dict) -> list[str]:
    f = results["figures"]
    figure = f.get("latency")
    if not figure:
        return []
    achieved, achieved_span = _spread_cell(figure["achieved_rate"])
    return [
        "## End-to-end latency, publish → receiver (ms)",
        "",
        f"Paced publisher: one event per commit at half the 1-worker maximum "
        f"({_fmt(figure['target_rate'], 0)}/s asked, {achieved}/s achieved, {achieved_span}), "
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
    fast, fast_span = _spread_cell(figure["fast_per_second"])
    solo, solo_span = _spread_cell(figure.get("solo_per_second"))
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
        f"| ratio | {_fmt(figure.get('throughput_ratio'), 2)} | |",
        "",
        f"Latency of the fast endpoints at the same paced half load "
        f"({_fmt(figure['latency_rate'], 0)}/s asked), ms:",
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
        "transaction; each commit enqueues a drain job in Redis.",
        "",
        "| database | fan-out | p50 median (min–max) | p95 | p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for db_name in ("sqlite", "postgresql"):
        for fanout, row in (figure.get(db_name) or {}).items():
            cells = [_spread_cell(row[k], 2) for k in ("p50", "p95", "p99")]
            lines.append(
                f"| {db_name} | {fanout} | " + " | ".join(f"{m} ({s})" for m, s in cells) + " |"
            )
    profile = figure.get("profile_fanout_1_sqlite")
    if profile:
        lines += [
            "",
            "Where a publish's time goes (cProfile of 100 publishes, fan-out 1, SQLite; share of "
            "the total including what each function calls):",
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
            (p50, s50), (p95, s95) = _spread_cell(row["p50"]), _spread_cell(row["p95"])
            lines.append(f"| {db_name} | {page} | {p50} ({s50}) | {p95} ({s95}) |")
    fills = ", ".join(
        f"{n}: {figure[n]['attempts']:,} attempts in {figure[n]['fill_seconds']:.0f} s"
        for n in ("postgresql", "sqlite")
        if n in figure
    )
    return [*lines, "", f"Bulk insert: {fills}.", ""]


def _memory_section(results: dict) -> list[str]:
    rows = []
    for name in ("throughput_1", "throughput_2"):
        figure = results["figures"].get(name)
        if figure:
            m, s = _spread_cell(figure["rss_mb"])
            mc, sc = _spread_cell(figure["pss_with_children_mb"])
            rows.append(f"| {figure['workers']} worker(s) | {m} ({s}) | {mc} ({sc}) |")
    if not rows:
        return []
    return [
        "## Worker memory after the throughput run (MiB)",
        "",
        "VmRSS from /proc/<pid>/status of the `flask worker` process (the largest when there are "
        "two) after the last repetition, and the PSS (/proc/<pid>/smaps_rollup) of it and its "
        "children together: RQ forks its scheduler into a child that shares most of its pages.",
        "",
        "| run | worker VmRSS | worker + scheduler child, PSS |",
        "|---|---:|---:|",
        *rows,
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
        f"extra 1-worker backlog run ({_fmt(figure['per_second_while_profiled'], 0)} "
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
        "a free 127.0.0.1 port, a second nginx port that logs `$msec $http_webhook_id` for "
        "latency, `redis-server` without persistence, a fresh SQLite file, and a scratch "
        "PostgreSQL database (recreated each run; the test database is untouched).",
        "- Workers are `flask worker` subprocesses with DATABASE_URL/REDIS_URL set and every "
        "HOOKLINE_* setting at its default (HOOKLINE_SWEEP_INTERVAL included).",
        f"- Throughput: {s.get('backlog_events', '?'):,} events (1 KiB bodies) published with "
        "`publish()` in transactions of 100 across 50 endpoints, workers stopped. The workers "
        "start once per figure and serve every run; each run puts the same deliveries back to "
        "`pending` as publish wrote them and kicks a drain as the publishing commit does (a "
        "backlog, as after a bulk publish or an outage, with one drain job queued). The rate "
        "runs from the first attempt's `started_at` to the last delivery's `updated_at`; every "
        "delivery must end `succeeded` with exactly one Attempt row, or the bench fails.",
        "- Raw ceiling: `python -m tests.perf.baselines ceiling URL N` in its own process, "
        "`requests.Session` with `trust_env = False`, signing each request like Hookline.",
        "- Naive: N jobs `tests.perf.baselines.deliver` (sign, `requests.post`), one "
        "`rq worker --burst` (RQ's default forking Worker); rate from the first job's start to "
        "the last job's end. Nothing is logged to a database.",
        "- Repetitions: "
        f"{s.get('reps', '?')} per figure; medians with min–max. The load average of the "
        "machine at the start of each figure is in performance.json (`load_at_start`): "
        "other work on the machine moves every figure.",
        "",
    ]


SECTIONS: list[Callable[[dict], list[str]]] = [
    _latency_section,
    _slow_section,
    _publish_section,
    _log_section,
    _memory_section,
    _profile_section,
    _method_section,
]
