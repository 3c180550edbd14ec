"""Medians, spreads and percentiles, the only arithmetic the report needs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float | list[float]]:
    """Median, min and max of repeated runs, plus the runs themselves."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": list(values),
    }


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and the count of one run's latency samples, in milliseconds."""
    return {
        "p50": percentile(samples_ms, 50),
        "p95": percentile(samples_ms, 95),
        "p99": percentile(samples_ms, 99),
        "max": max(samples_ms),
        "count": len(samples_ms),
    }


def combine(runs: Sequence[dict[str, float]], keys: Sequence[str]) -> dict[str, dict]:
    """Per-key spread over several runs' summaries (median of p50s, etc.)."""
    return {key: spread([run[key] for run in runs]) for key in keys}
