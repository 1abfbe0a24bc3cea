"""The geometry of the calendar picture: a pure function from the week view to SVG shapes.

One row per policy: its windows (pale), the times it is open (green), its freezes (red, on top), and below
them the active leases as thin bars in as few lanes as do not overlap. A line marks "now". Coordinates are in
a fixed viewBox; the SVG scales to the page's width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.decision.intervals import Interval
from app.instants import format_instant

WIDTH = 1000.0
LABEL_WIDTH = 170.0
HEADER_HEIGHT = 34.0
BAND_HEIGHT = 26.0
LANE_HEIGHT = 7.0
MAX_LANES = 4
MIN_LEASE_WIDTH = 6.0  # a 15-minute lease is under a unit wide in a week; keep it visible and clickable
ROW_GAP = 12.0


@dataclass(frozen=True, slots=True)
class Shape:
    kind: str  # window | open | freeze | lease
    x: float
    y: float
    width: float
    height: float
    title: str
    href: str | None = None


@dataclass(frozen=True, slots=True)
class DayMark:
    x: float
    label: str


@dataclass
class Row:
    policy: str
    y: float
    height: float
    shapes: list[Shape] = field(default_factory=list)
    hidden_leases: int = 0


@dataclass
class Picture:
    width: float
    height: float
    label_width: float
    days: list[DayMark]
    rows: list[Row]
    now_x: float | None
    now_label: str


@dataclass(frozen=True, slots=True)
class LeaseBar:
    id: str
    policy: str
    start: datetime
    end: datetime
    label: str
    href: str


def _x(t: datetime, start: datetime, span: timedelta) -> float:
    fraction = (t - start) / span
    return round(LABEL_WIDTH + (WIDTH - LABEL_WIDTH) * min(max(fraction, 0.0), 1.0), 2)


def _bands(kind: str, intervals: Sequence[Interval], start: datetime, end: datetime, y: float) -> list[Shape]:
    shapes = []
    span = end - start
    for interval in intervals:
        right = interval.end or end
        if right <= start or interval.start >= end:
            continue
        x0, x1 = _x(interval.start, start, span), _x(right, start, span)
        title = f"{kind}: {format_instant(interval.start)} to {format_instant(right)}"
        shapes.append(Shape(kind, x0, y, round(max(x1 - x0, 1.0), 2), BAND_HEIGHT, title))
    return shapes


def _extent(bar: LeaseBar, start: datetime, span: timedelta) -> tuple[float, float]:
    """Where a lease bar is drawn: at least ``MIN_LEASE_WIDTH`` wide, inside the picture."""
    x0, x1 = _x(bar.start, start, span), _x(bar.end, start, span)
    width = max(x1 - x0, MIN_LEASE_WIDTH)
    return min(x0, WIDTH - width), width


def _lanes(
    bars: Sequence[LeaseBar], start: datetime, span: timedelta
) -> tuple[list[tuple[int, LeaseBar, float, float]], int]:
    """Greedy lane packing by drawn extent, leftmost first; bars that find no lane are counted, not drawn."""
    lane_ends: list[float] = []
    placed: list[tuple[int, LeaseBar, float, float]] = []
    hidden = 0
    for bar in sorted(bars, key=lambda b: (b.start, b.id)):
        x0, width = _extent(bar, start, span)
        lane = next((i for i, lane_end in enumerate(lane_ends) if lane_end < x0), None)
        if lane is None and len(lane_ends) < MAX_LANES:
            lane_ends.append(0.0)
            lane = len(lane_ends) - 1
        if lane is None:
            hidden += 1
            continue
        lane_ends[lane] = x0 + width
        placed.append((lane, bar, x0, width))
    return placed, hidden


def layout(week: Mapping[str, Any], leases: Sequence[LeaseBar], now: datetime) -> Picture:
    start, end = week["start"], week["end"]
    span = end - start
    days = []
    day = start
    while day < end:
        days.append(DayMark(_x(day, start, span), day.strftime("%a %d %b")))
        day += timedelta(days=1)
    rows = []
    y = HEADER_HEIGHT
    for entry in week["policies"]:
        policy = entry["policy"]
        row = Row(policy, y, 0.0)
        row.shapes += _bands("window", entry["windows"], start, end, y)
        row.shapes += _bands("open", entry["open"], start, end, y)
        row.shapes += _bands("freeze", entry["freezes"], start, end, y)
        visible = [b for b in leases if b.policy == policy and b.end > start and b.start < end]
        placed, row.hidden_leases = _lanes(visible, start, span)
        lanes_used = 0
        for lane, bar, x0, width in placed:
            lane_y = y + BAND_HEIGHT + 3 + lane * LANE_HEIGHT
            row.shapes.append(
                Shape(
                    "lease",
                    round(x0, 2),
                    lane_y,
                    round(width, 2),
                    LANE_HEIGHT - 2,
                    bar.label,
                    bar.href,
                )
            )
            lanes_used = max(lanes_used, lane + 1)
        row.height = BAND_HEIGHT + 3 + lanes_used * LANE_HEIGHT
        rows.append(row)
        y += row.height + ROW_GAP
    now_x = _x(now, start, span) if start <= now < end else None
    now_label = now.strftime("%a %d %b %H:%M") + " UTC"
    return Picture(WIDTH, max(y, HEADER_HEIGHT + 20), LABEL_WIDTH, days, rows, now_x, now_label)
