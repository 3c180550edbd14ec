"""The per-database sections of docs/performance.md and the goals they are judged by.

Each delivery figure runs on SQLite and on PostgreSQL in the same bench run; each section is one
table with a column per database, the goal, and whether each database met it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.perf.sections import fmt, spread_cell

DATABASE_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
Figures = dict[str, dict]  # one database's figures, by name


def _get(node, *path):
    for part in path:
        if not isinstance(node, dict) or part not in node or node[part] is None:
            return None
        node = node[part]
    return node


def _median(figs: Figures, name: str, key: str) -> float | None:
    return _get(figs, name, key, "median")


def _two_over_one(figs: Figures) -> float | None:
    one = _median(figs, "throughput_1", "vs_paired_ceiling")
    two = _median(figs, "throughput_2", "vs_paired_ceiling")
    return two / one if one and two else None


def _throttle_succeeded(figs: Figures) -> float | None:
    figure = figs.get("throttle_429")
    if not figure:
        return None
    return figure["statuses"].get("succeeded", 0) / figure["events"]


def _neighbour_p99(figs: Figures) -> float | None:
    """Tenant B's p99, when A's backlog was still draining as B published (else no figure)."""
    figure = figs.get("neighbour")
    return figure["latency_ms"]["p99"] if figure and figure["valid"] else None


def _capped_ratio(figs: Figures) -> float | None:
    """CPU per capped delivery / per free-flowing one; only when the cap held (an engine that
    ignores rate_limit sends the capped backlog as free flow, which says nothing of waiting)."""
    figure = figs.get("capped_cpu")
    return figure["capped_vs_free"] if figure and figure["rate_held"] else None


def _capped_rate(figs: Figures) -> float | None:
    figure = figs.get("capped_cpu")
    return figure["capped"]["per_second"] / figure["rate_limit"] if figure else None


@dataclass(frozen=True)
class Goal:
    """A goal measured on each database: its figure, a label, the value and the target."""

    figure: str
    label: str
    value: Callable[[Figures], float | None]
    target: str
    check: Callable[[float], bool]


GOALS: list[Goal] = [
    Goal("throughput_1", "1 worker / raw ceiling run beside it, 50 endpoints",
         lambda f: _median(f, "throughput_1", "vs_paired_ceiling"), "≥ 0.70", lambda v: v >= 0.70),
    Goal("throughput_1_10_endpoints", "1 worker / raw ceiling run beside it, 10 endpoints",
         lambda f: _median(f, "throughput_1_10_endpoints", "vs_paired_ceiling"), "≥ 0.70",
         lambda v: v >= 0.70),
    Goal("throughput_2", "2 workers / 1 worker, each against its ceiling", _two_over_one,
         "≥ 1.50", lambda v: v >= 1.50),
    Goal("busy", "busy endpoint (50 ms): deliveries/s ÷ (sending slots ÷ latency)",
         lambda f: _median(f, "busy", "vs_ceiling"), "≥ 0.50", lambda v: v >= 0.50),
    Goal("dead", "30% of endpoints dead: healthy throughput / solo",
         lambda f: _get(f, "dead", "throughput_ratio"), "≥ 0.70", lambda v: v >= 0.70),
    Goal("dead", "30% of endpoints dead: healthy p99 delay − solo p99 (s)",
         lambda f: _ms_to_s(_get(f, "dead", "p99_over_solo_ms")), "≤ 2", lambda v: v <= 2),
    Goal("neighbour", "noisy neighbour: fresh event's p99 (ms) beside a backlog",
         lambda f: _neighbour_p99(f), "≤ 500", lambda v: v <= 500),
    Goal("throttle_429", "429 + Retry-After 3: shortest gap to the next request (s)",
         lambda f: _get(f, "throttle_429", "gap_min_seconds"), "≥ 2", lambda v: v >= 2),
    Goal("throttle_429", "429 + Retry-After 3: longest gap to the next request (s)",
         lambda f: _get(f, "throttle_429", "gap_max_seconds"), "≤ 4", lambda v: v <= 4),
    Goal("throttle_429", "429 + Retry-After 3: share of deliveries that succeeded",
         _throttle_succeeded, "= 1.00", lambda v: v == 1.0),
    Goal("capped_cpu", "rate_limit 20/s: rate achieved / limit", _capped_rate, "≤ 1.10",
         lambda v: v <= 1.10),
    Goal("capped_cpu", "rate_limit 20/s: CPU per delivery / free flow's", _capped_ratio,
         "≤ 2.0", lambda v: v <= 2.0),
]  # fmt: skip


def _ms_to_s(value: float | None) -> float | None:
    return None if value is None else value / 1000


def goal_rows(results: dict) -> list[dict]:
    """Every per-database goal, once per database that ran its figure (a figure that failed
    gives no value and `failed`)."""
    rows = []
    for goal in GOALS:
        for database, figs in results.get("databases", {}).items():
            if goal.figure not in figs:
                continue
            failed = "error" in figs[goal.figure]
            value = None if failed else goal.value(figs)
            rows.append(
                {
                    "goal": f"{goal.label} ({DATABASE_LABELS.get(database, database)})",
                    "measured": value,
                    "target": goal.target,
                    "met": None if value is None else bool(goal.check(value)),
                    "failed": failed,
                }
            )
    return rows


# A row of a section's table: label, figure → cell text, and the goal it is checked against.
Row = tuple[str, Callable[[Figures], str], Goal | None]


def _verdict(goal: Goal, figs: Figures) -> str:
    value = goal.value(figs)
    if value is None:
        return "—"
    return "met" if goal.check(value) else "**not met**"


def _table(results: dict, title: str, intro: list[str], rows: list[Row], figure: str) -> list[str]:
    databases = [d for d, figs in results.get("databases", {}).items() if figure in figs]
    if not databases:
        return []
    labels = [DATABASE_LABELS.get(d, d) for d in databases]
    judged = any(goal for _, _, goal in rows)
    lines = [f"## {title}", "", *intro, ""] if intro else [f"## {title}", ""]
    head = f"| what | {' | '.join(labels)} |"
    rule = "|---|" + "---:|" * len(databases)
    if judged:
        head += f" goal | met? ({' / '.join(labels)}) |"
        rule += "---:|---|"
    lines += [head, rule]
    for label, cell, goal in rows:
        cells = []
        for database in databases:
            try:
                cells.append(cell(results["databases"][database]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("—")
        line = f"| {label} | {' | '.join(cells)} |"
        if judged:
            target = goal.target if goal else ""
            figs = [results["databases"][d] for d in databases]
            verdict = " / ".join(_verdict(goal, f) for f in figs) if goal else ""
            line += f" {target} | {verdict} |"
        lines.append(line)
    return [*lines, ""]


def _spread(name: str, *key: str, digits: int = 1) -> Callable[[Figures], str]:
    """The median of a figure's runs, with min–max beside it when there were several."""

    def cell(figs: Figures) -> str:
        found = _get(figs, name, *key)
        median, span = spread_cell(found, digits)
        return f"{median} ({span})" if found and len(found.get("runs", ())) > 1 else median

    return cell


def _value(name: str, *key: str, digits: int = 1, scale: float = 1.0) -> Callable[[Figures], str]:
    def cell(figs: Figures) -> str:
        value = _get(figs, name, *key)
        return "—" if value is None else fmt(value * scale, digits)

    return cell


def _goal_cell(goal: Goal, digits: int = 2) -> Callable[[Figures], str]:
    return lambda figs: fmt(goal.value(figs), digits)


def _goal(figure: str, index: int = 0) -> Goal:
    return [g for g in GOALS if g.figure == figure][index]


def throughput_section(results: dict) -> list[str]:
    """Hookline through a backlog to nginx, 1 and 2 workers, 50 and 10 endpoints."""
    rows: list[Row] = []
    for name, what in (
        ("throughput_1", "1 worker, 50 endpoints"),
        ("throughput_1_10_endpoints", "1 worker, 10 endpoints"),
        ("throughput_2", "2 workers, 50 endpoints"),
    ):
        rows += [
            (f"{what}: deliveries/s", _spread(name, "per_second"), None),
            (f"{what}: raw ceiling run beside each (requests/s)",
             _spread(name, "paired_ceiling_per_second"), None),
            (f"{what}: / ceiling beside it", _spread(name, "vs_paired_ceiling", digits=2),
             _goal(name) if name != "throughput_2" else None),
        ]  # fmt: skip
    rows.append(("2 workers / 1 worker", _goal_cell(_goal("throughput_2")), _goal("throughput_2")))
    intro = [
        "A backlog of the throughput events (1 KiB bodies) replayed through fresh workers, "
        "every attempt logged; each run paired with a raw-ceiling run (one process, one "
        "kept-alive requests.Session, nginx) made just before it with the workers idle. "
        "Medians of the runs (min–max)."
    ]
    return _table(results, "Delivery throughput by database", intro, rows, "throughput_1")


def busy_section(results: dict) -> list[str]:
    """One endpoint answering after 50 ms."""
    goal = _goal("busy")
    rows: list[Row] = [
        ("Hookline, 1 worker (deliveries/s)", _spread("busy", "per_second"), None),
        ("receiver's measured latency, one client in sequence (ms)",
         _spread("busy", "receiver_latency_ms"), None),
        ("ceiling: sending slots ÷ latency (/s)", _spread("busy", "ceiling_per_second"), None),
        ("raw client, as many threads, one requests.Session each (/s)",
         _spread("busy", "raw_concurrent_per_second"), None),
        ("Hookline / raw client", _spread("busy", "vs_raw_concurrent", digits=2), None),
        ("Hookline / ceiling", _spread("busy", "vs_ceiling", digits=2), goal),
    ]  # fmt: skip
    figure = _first(results, "busy")
    intro = [
        f"{figure.get('events', 0):,} events to one endpoint on the threaded Python receiver "
        f"(tests/perf/receiver.py) answering after {fmt(figure.get('receiver_delay_ms'), 0)} ms, "
        f"1 `flask worker` at its defaults ({figure.get('worker_concurrency')} sending "
        "threads); the backlog is replayed per run, with the latency and the raw client "
        "measured just before each."
    ] if figure else []  # fmt: skip
    return _table(results, "Busy endpoint: one receiver answering after 50 ms", intro, rows, "busy")


def _first(results: dict, figure: str) -> dict:
    return next((f[figure] for f in results.get("databases", {}).values() if figure in f), {})


def _arrived(part: str) -> Callable[[Figures], str]:
    def cell(figs: Figures) -> str:
        run = figs["dead"][part]
        return f"{run['arrived']:,} of {run['expected']:,}" + ("" if run["complete"] else " (cut)")

    return cell


def _dead_endpoints(figs: Figures) -> str:
    dead = figs["dead"]["with_dead"]["dead"]
    return (
        f"{dead['requests_received']:,} requests; {dead['attempts']:,} attempts recorded; "
        f"{dead.get('pending', 0):,} pending, {dead.get('failed', 0):,} failed"
    )


def dead_section(results: dict) -> list[str]:
    """70 healthy endpoints beside 30 that never answer."""
    rows: list[Row] = [
        ("healthy endpoints alone: deliveries/s", _value("dead", "solo", "per_second", digits=0),
         None),
        ("healthy beside the dead: deliveries/s",
         _value("dead", "with_dead", "per_second", digits=0), None),
        ("ratio", _goal_cell(_goal("dead")), _goal("dead")),
        ("delay p50, alone / beside (ms)", lambda f: (
            f"{fmt(f['dead']['solo']['delay_ms']['p50'], 0)} / "
            f"{fmt(f['dead']['with_dead']['delay_ms']['p50'], 0)}"), None),
        ("delay p99, alone (ms)", _value("dead", "solo", "delay_ms", "p99", digits=0), None),
        ("delay p99, beside the dead (ms)",
         _value("dead", "with_dead", "delay_ms", "p99", digits=0), None),
        ("p99 beside − alone (s)", _goal_cell(_goal("dead", 1)), _goal("dead", 1)),
        ("last healthy arrival after the first publish, alone / beside (s)", lambda f: (
            f"{fmt(f['dead']['solo']['last_arrival_seconds'])} / "
            f"{fmt(f['dead']['with_dead']['last_arrival_seconds'])}"), None),
        ("healthy deliveries arrived, alone", _arrived("solo"), None),
        ("healthy deliveries arrived, beside the dead", _arrived("with_dead"), None),
        ("dead endpoints at the end", _dead_endpoints, None),
        ("worker CPU once only dead work was left, or at the cut-off (ms/s)",
         _value("dead", "with_dead", "worker_cpu_while_waiting", digits=0, scale=1000), None),
    ]  # fmt: skip
    figure = _first(results, "dead")
    intro = [
        f"{figure.get('endpoints')} endpoints of one tenant, {figure.get('dead_endpoints')} "
        "of them (every 10th, 1st to 3rd) on a server that reads each request and never "
        f"answers (tests/servers.py `HangServer`), HOOKLINE_DELIVERY_TIMEOUT="
        f"{figure.get('delivery_timeout_seconds')} for the worker; {figure.get('events')} events "
        "published back to back, one commit each, each fanned out to every endpoint; 1 fresh "
        "`flask worker`. Delay: from just before `publish()` to nginx's `$msec` for that "
        "endpoint. Alone: the same 70 healthy endpoints with no dead ones, in another tenant. "
        f"A run is cut off after {fmt(figure.get('limit_seconds'), 0)} s (deliveries not "
        "arrived by then count as arriving then, so a cut run's figures are bounds); the dead "
        "endpoints' deliveries may stay pending, and the worker is stopped after 3 s."
    ] if figure else []  # fmt: skip
    return _table(results, "Dead endpoints: 30% never answer", intro, rows, "dead")


def neighbour_section(results: dict) -> list[str]:
    """Tenant B's fresh events while tenant A's backlog drains."""
    rows: list[Row] = [
        ("B's latency p50 (ms)", _value("neighbour", "latency_ms", "p50", digits=0), None),
        ("B's latency p99 (ms)", _value("neighbour", "latency_ms", "p99", digits=0),
         _goal("neighbour")),
        ("B's latency max (ms)", _value("neighbour", "latency_ms", "max", digits=0), None),
        ("A's backlog left when B's last event was published",
         _value("neighbour", "a_left_when_b_done", digits=0), None),
        ("A's drain, whole backlog (deliveries/s)", _value("neighbour", "a_per_second", digits=0),
         None),
    ]  # fmt: skip
    figure = _first(results, "neighbour")
    intro = [
        f"Tenant A: one endpoint (nginx) with a backlog of {figure.get('backlog', 0):,} "
        "deliveries, published while the worker was stopped, then drained by 1 `flask worker`. "
        f"Once 5% of it is delivered, tenant B publishes {figure.get('events')} events, "
        f"{fmt(figure.get('rate'), 0)} per second, one commit each, to its own idle endpoint; "
        "latency from just before `publish()` to nginx's `$msec`. If A's backlog was gone before "
        "B's last event, the scenario did not happen: the row \"A's backlog left\" says 0 and "
        "the goal is not judged."
    ] if figure else []  # fmt: skip
    return _table(results, "Noisy neighbour: a fresh event beside a backlog", intro, rows,
                  "neighbour")  # fmt: skip


def throttle_section(results: dict) -> list[str]:
    """An endpoint answering 429 with Retry-After now and then."""
    rows: list[Row] = [
        ("429s answered / requests received", lambda f: (
            f"{f['throttle_429']['throttled']} / {f['throttle_429']['requests']:,}"), None),
        ("gap from a 429 to the next request, shortest (s)",
         _value("throttle_429", "gap_min_seconds", digits=2), _goal("throttle_429")),
        ("gap from a 429 to the next request, longest (s)",
         _value("throttle_429", "gap_max_seconds", digits=2), _goal("throttle_429", 1)),
        ("requests within 100 ms after a 429 (sent before it was read)",
         _value("throttle_429", "in_flight_after_429", digits=0), None),
        ("429s after which the next request was a retry (nothing else was left)",
         lambda f: str(sum(g["next_is_retry"] for g in f["throttle_429"]["gaps"])), None),
        ("deliveries succeeded", lambda f: (
            f"{f['throttle_429']['statuses'].get('succeeded', 0):,} of "
            f"{f['throttle_429']['events']:,}"), _goal("throttle_429", 2)),
        ("attempts recorded", _value("throttle_429", "statuses", "attempts", digits=0), None),
        ("backlog delivered in (s)", _value("throttle_429", "seconds"), None),
    ]  # fmt: skip
    figure = _first(results, "throttle_429")
    intro = [
        f"{figure.get('events')} events to one endpoint on the Python receiver, which answers "
        f"every {figure.get('every')}th request `429` with `Retry-After: "
        f"{figure.get('retry_after_seconds')}`; 1 `flask worker` with "
        f"HOOKLINE_RETRY_SCHEDULE={figure.get('retry_schedule')} (its longest delay caps a "
        "Retry-After, so it must be ≥ 3 s). For each 429, the gap from the moment it was "
        "answered to the next request that reached the receiver, not counting requests that "
        f"arrived within {fmt(figure.get('in_flight_window_seconds', 0) * 1000, 0)} ms of it "
        "(already on the wire; counted in their own row)."
    ] if figure else []  # fmt: skip
    return _table(results, "Throttling: 429 with Retry-After", intro, rows, "throttle_429")


def capped_section(results: dict) -> list[str]:
    """CPU a worker spends per delivery while held at a rate_limit."""
    rows: list[Row] = [
        ("free flow to nginx: CPU per delivery (ms)",
         _value("capped_cpu", "free", "cpu_ms_per_delivery", digits=2), None),
        ("free flow: deliveries/s", _value("capped_cpu", "free", "per_second", digits=0), None),
        ("rate_limit 20/s: CPU per delivery (ms)",
         _value("capped_cpu", "capped", "cpu_ms_per_delivery", digits=2), None),
        ("rate_limit 20/s: deliveries/s", _value("capped_cpu", "capped", "per_second"), None),
        ("rate achieved / limit", _goal_cell(_goal("capped_cpu")), _goal("capped_cpu")),
        ("CPU per delivery, capped / free flow", _goal_cell(_goal("capped_cpu", 1)),
         _goal("capped_cpu", 1)),
        ("idle worker (ms of CPU per second)", _value("capped_cpu", "idle_cpu_ms_per_second"),
         None),
        ("of which idling over the capped run (ms per delivery)",
         _value("capped_cpu", "capped_idle_share_ms", digits=2), None),
    ]  # fmt: skip
    figure = _first(results, "capped_cpu")
    intro = [
        f"{figure.get('events')} events to one endpoint (nginx) whose `Subscription.rate_limit` "
        f"is {figure.get('rate_limit')}, and as many to another without one, through the same "
        "`flask worker`. CPU: utime + stime of the worker and its children (RQ's scheduler) "
        "from /proc/<pid>/stat over each backlog, 10 ms ticks. The CPU ratio counts only when "
        "the cap held (an engine that ignores rate_limit sends the capped backlog as free flow)."
    ] if figure else []  # fmt: skip
    return _table(results, "A worker held at a rate_limit: what waiting costs", intro, rows,
                  "capped_cpu")  # fmt: skip


def memory_section(results: dict) -> list[str]:
    """Worker memory after the throughput runs."""
    rows: list[Row] = [
        ("1 worker: VmRSS (MiB)", _spread("throughput_1", "rss_mb"), None),
        ("1 worker + scheduler child: PSS (MiB)", _spread("throughput_1", "pss_with_children_mb"),
         None),
        ("2 workers: largest VmRSS (MiB)", _spread("throughput_2", "rss_mb"), None),
        ("2 workers: largest PSS with child (MiB)",
         _spread("throughput_2", "pss_with_children_mb"), None),
    ]  # fmt: skip
    intro = [
        "VmRSS from /proc/<pid>/status of the `flask worker` process after each throughput "
        "repetition, and the PSS (/proc/<pid>/smaps_rollup) of it and its children together: RQ "
        "forks its scheduler into a child that shares most of its pages."
    ]
    return _table(results, "Worker memory after the throughput runs", intro, rows, "throughput_1")


SECTIONS: list[Callable[[dict], list[str]]] = [
    throughput_section,
    busy_section,
    dead_section,
    neighbour_section,
    throttle_section,
    capped_section,
    memory_section,
]
