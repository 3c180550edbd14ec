"""The dashboard chart as plain geometry, drawn as SVG by a template (no client-side charting).

Keeping the arithmetic here makes it testable and keeps the template a list of rectangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from dispatcher.states import DeliveryStatus
from portal.services.stats import HourBucket

WIDTH = 720
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 26
# Bottom to top: each series' key in a bar's counts and its CSS class.
OTHER = "other"  # pending and cancelled, drawn as one
SERIES = ((DeliveryStatus.SUCCEEDED, "ok"), (DeliveryStatus.FAILED, "bad"), (OTHER, "other"))


@dataclass(frozen=True)
class Segment:
    """One coloured part of an hour's bar."""

    css: str
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    """One hour: its stacked segments, its label and the numbers for the tooltip."""

    x: float
    width: float
    start: datetime
    segments: list[Segment]
    counts: dict[str, int]
    label: str | None


@dataclass(frozen=True)
class Tick:
    """A horizontal grid line and its value."""

    y: float
    value: int


@dataclass(frozen=True)
class Chart:
    """Everything the SVG template draws."""

    width: int
    height: int
    left: int
    right_edge: int
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    total: int


def axis_top(value: int, lines: int = 4) -> int:
    """The axis maximum: `lines` grid steps of 1, 2 or 5 × 10ⁿ, so every label is a round
    whole number, reaching at least `value`."""
    needed = max(1, math.ceil(value / lines))
    magnitude = 10 ** math.floor(math.log10(needed))
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= needed)
    return step * lines


def series_counts(counts: dict[str, int]) -> dict[str, int]:
    """An hour's counts by status as the chart's series: succeeded, failed and "other"."""
    return {
        DeliveryStatus.SUCCEEDED: counts.get(DeliveryStatus.SUCCEEDED, 0),
        DeliveryStatus.FAILED: counts.get(DeliveryStatus.FAILED, 0),
        OTHER: counts.get(DeliveryStatus.PENDING, 0) + counts.get(DeliveryStatus.CANCELLED, 0),
    }


def stacked_segments(counts: dict[str, int], top: int, baseline: float) -> list[Segment]:
    """One bar's segments, bottom to top in SERIES order, scaled so `top` fills the plot."""
    plot_height = HEIGHT - TOP - BOTTOM
    y = baseline
    segments = []
    for key, css in SERIES:
        height = counts[key] / top * plot_height
        if height > 0:
            y -= height
            segments.append(Segment(css=css, y=round(y, 2), height=round(height, 2)))
    return segments


def hourly_chart(hours: list[HourBucket]) -> Chart:
    """Stacked bars per hour (succeeded, failed, then pending and cancelled as "other")."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    per_hour = [series_counts(h.counts) for h in hours]
    top = axis_top(max((sum(c.values()) for c in per_hour), default=0))
    slot = plot_width / max(len(hours), 1)
    bars = []
    for index, (hour, counts) in enumerate(zip(hours, per_hour, strict=True)):
        segments = stacked_segments(counts, top, baseline)
        label = hour.start.strftime("%H:%M") if index % 4 == 0 else None
        bars.append(
            Bar(
                x=round(LEFT + index * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                start=hour.start,
                segments=segments,
                counts=counts,
                label=label,
            )
        )
    ticks = [Tick(y=round(baseline - plot_height * i / 4, 2), value=top * i // 4) for i in range(5)]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right_edge=WIDTH - RIGHT,
        baseline=baseline,
        bars=bars,
        ticks=ticks,
        total=sum(sum(c.values()) for c in per_hour),
    )
