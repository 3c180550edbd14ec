"""docs/performance.md from the results document: a table per figure, ratios, goals met or not."""

from __future__ import annotations

from collections.abc import Callable

from tests.perf import tables
from tests.perf.sections import SECTIONS, fmt, pct, spread_cell

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


def _get(figures: dict, *path: str) -> float | None:
    node = figures
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def measured_only(results: dict) -> dict:
    """The results without the figures that failed (their errors are in the notes), so every
    section and goal reads only figures that are whole."""
    whole = lambda figures: {n: f for n, f in figures.items() if "error" not in f}  # noqa: E731
    return {
        **results,
        "figures": whole(results.get("figures", {})),
        "databases": {db: whole(figs) for db, figs in results.get("databases", {}).items()},
    }


def goals(results: dict) -> list[dict]:
    """Each goal of issues 6 and 11 with its measured value (None when the figure was not run
    or failed): the delivery goals once per database (see tables.GOALS), then the others."""
    per_database = tables.goal_rows(results)
    results = measured_only(results)
    f = results["figures"]
    rows: list[tuple[str, float | None, str, Callable[[float], bool]]] = [
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
        for key, when in ((db_name, "a drain waiting"), (f"{db_name}_no_drain_waiting", "none")):
            rows.append(
                (
                    f"publish p50, fan-out 1, {db_name}, {when} (ms)",
                    _get(f, "publish", key, "1", "p50", "median"),
                    "≤ 2",
                    lambda v: v <= 2,
                )
            )
            rows.append(
                (
                    f"publish p50, fan-out 100, {db_name}, {when} (ms)",
                    _get(f, "publish", key, "100", "p50", "median"),
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
    rows += _retention_goals(f.get("retention") or {})
    sizes = [
        figs[name]["rss_mb"]["max"]
        for figs in results.get("databases", {}).values()
        for name in ("throughput_1", "throughput_2")
        if name in figs
    ]
    rows.append(
        (
            "worker RSS after the throughput runs, largest (MiB)",
            max(sizes, default=None),
            "≤ 120",
            lambda v: v <= 120,
        )
    )
    return per_database + [
        {"goal": goal, "measured": value, "target": target,
         "met": None if value is None else bool(check(value))}
        for goal, value, target, check in rows
    ]  # fmt: skip


def _retention_goals(figure: dict) -> list[tuple[str, float | None, str, Callable]]:
    """Issue 15's retention goals (the figure is skipped without PostgreSQL)."""
    return [
        ("retention: sweeps' prune rate beside a worker / intake of 100 deliveries/s × 4 "
         "attempts", figure.get("vs_worst_intake"), "≥ 5", lambda v: v >= 5),
        ("retention: delivery p99 added by pruning back to back, median of runs (ms)",
         figure.get("p99_added_ms"), "≤ 100", lambda v: v <= 100),
        ("retention: table size after refilling half / emptied by pruning and VACUUM",
         figure.get("refilled_vs_emptied"), "≤ 1.05", lambda v: v <= 1.05),
    ]  # fmt: skip


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
        f"| CPU pressure (PSI some avg60) before / after | {pct(e.get('cpu_pressure_before'))} "
        f"/ {pct(e.get('cpu_pressure_after'))} |",
        f"| commit | {e['commit']} |",
        f"| Python | {e.get('python', '?')} |",
        f"| Redis | {e.get('redis', '?')} (its own server, no persistence) |",
        f"| SQLite | {e.get('sqlite', '?')} (WAL, synchronous=NORMAL) |",
        f"| PostgreSQL | {e.get('postgresql', '?')} (scratch database) |",
        f"| receiver | {e.get('receiver', '?')} |",
        f"| single-database figures' database (profile, latency, slow) | "
        f"{e.get('database_for_delivery', '?')} |",
        f"| delivery figures' databases | {', '.join(e.get('delivery_databases', [])) or '—'} |",
        "| packages | " + ", ".join(f"{k} {v}" for k, v in pk.items()) + " |",
        "",
    ]


def _baselines_section(results: dict) -> list[str]:
    """The yardsticks, measured once (they use no database)."""
    f = results["figures"]
    rows = [
        ("raw ceiling: one process, kept-alive requests.Session, no queue, no DB", "ceiling",
         "requests_per_run"),
        ("naive: one RQ job per delivery doing requests.post, default forking `rq worker`",
         "naive", "jobs_per_run"),
    ]  # fmt: skip
    lines = [
        "## Yardsticks (per second)",
        "",
        "| what | runs × size | median | spread (min–max) |",
        "|---|---|---:|---:|",
    ]
    for label, name, size_key in rows:
        figure = f.get(name)
        if figure:
            median, span = spread_cell(figure["per_second"])
            runs = len(figure["per_second"]["runs"])
            lines.append(f"| {label} | {runs} × {figure[size_key]:,} | {median} | {span} |")
    return [*lines, ""] if len(lines) > 4 else []


def markdown(results: dict, analysis: str = NOTES_PLACEHOLDER) -> str:
    """The whole of docs/performance.md; `analysis` is the hand-written block it keeps."""
    raw, results = results, measured_only(results)
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
    lines += ["## Goals (issues 6, 11 and 15)", "", "| goal | measured | target | met |"]
    lines.append("|---|---:|---:|---|")
    for goal in goals(raw):
        met = {True: "met", False: "**not met**", None: "not measured"}[goal["met"]]
        met = "**figure failed** (see notes)" if goal.get("failed") else met
        lines.append(f"| {goal['goal']} | {fmt(goal['measured'], 2)} | {goal['target']} | {met} |")
    lines.append("")
    lines += _baselines_section(results)
    for section in [*tables.SECTIONS, *SECTIONS]:
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"


def summary(results: dict) -> str:
    """A few lines for the terminal."""
    out = []
    for goal in goals(results):
        met = {True: "met", False: "NOT MET", None: "not measured"}[goal["met"]]
        met = "FIGURE FAILED" if goal.get("failed") else met
        out.append(f"{goal['goal']:<78} {fmt(goal['measured'], 2):>10} {goal['target']:>7}  {met}")
    return "\n".join(out)
