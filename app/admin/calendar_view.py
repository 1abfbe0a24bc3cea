"""The week ahead as text: per policy, one row per day, a bar of 48 half-hour cells.

Each cell shows one character, so the picture reads without colour: ``█`` open for the whole half hour,
``▒`` open for part of it, ``x`` a freeze applies, ``·`` closed. The cell holding "now" is drawn reversed,
and a line under its row points at it. Days are local days of the chosen time zone; a cell that does not
exist there (the hour skipped when clocks go forward) is blank.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text

from app.decision.intervals import Interval
from app.decision.windows import to_utc
from app.instants import parse_instant

CELL = timedelta(minutes=30)
CELLS_PER_DAY = 48
OPEN, PARTLY_OPEN, FROZEN, CLOSED, MISSING = "█", "▒", "x", "·", " "
STYLES = {OPEN: "green", PARTLY_OPEN: "green", FROZEN: "bold red", CLOSED: "bright_black", MISSING: ""}
LABEL_WIDTH = 16  # "Mon 2026-12-07  "
HEADER = "".join(f"{hour:02d}".ljust(6) for hour in range(0, 24, 3)).rstrip()


def legend(zone: str) -> Text:
    text = Text(f"times in {zone}:  ")
    for mark, meaning in (
        (OPEN, "open"),
        (PARTLY_OPEN, "partly open"),
        (FROZEN, "freeze"),
        (CLOSED, "closed"),
    ):
        text.append(mark, style=STYLES[mark])
        text.append(f" {meaning}  ")
    text.append("^ now")
    return text


def intervals(items: Iterable[Mapping[str, Any]]) -> list[Interval]:
    return [
        Interval(parse_instant(item["start"]), parse_instant(item["end"]) if item.get("end") else None)
        for item in items
    ]


def cell_bounds(day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The UTC instants each half-hour cell of a local day spans (empty where local time skips)."""
    local = [datetime.combine(day, time()) + i * CELL for i in range(CELLS_PER_DAY + 1)]
    instants = [to_utc(t, tz) for t in local]
    return list(itertools.pairwise(instants))


def _overlaps(iv: Interval, start: datetime, end: datetime) -> bool:
    return iv.start < end and (iv.end is None or iv.end > start)


def _covers(iv: Interval, start: datetime, end: datetime) -> bool:
    return iv.start <= start and (iv.end is None or iv.end >= end)


def cell_mark(start: datetime, end: datetime, open_: Sequence[Interval], freezes: Sequence[Interval]) -> str:
    if end <= start:
        return MISSING
    if any(_overlaps(iv, start, end) for iv in freezes):
        return FROZEN
    if any(_covers(iv, start, end) for iv in open_):
        return OPEN
    if any(_overlaps(iv, start, end) for iv in open_):
        return PARTLY_OPEN
    return CLOSED


def open_time(open_: Sequence[Interval], start: datetime, end: datetime) -> timedelta:
    total = timedelta()
    for iv in open_:
        clipped_end = end if iv.end is None else min(iv.end, end)
        total += max(timedelta(), clipped_end - max(iv.start, start))
    return total


def policy_rows(week: Mapping[str, Any], days: Sequence[date], tz: ZoneInfo, now: datetime) -> list[Text]:
    """The lines that draw one policy's week (the caller prints the header and the legend)."""
    open_, freezes = intervals(week.get("open") or []), intervals(week.get("freezes") or [])
    hours = open_time(open_, _midnight(days[0], tz), _midnight(days[-1] + timedelta(days=1), tz))
    title = Text(week["policy"], style="bold")
    title.append(f"  open {_hours(hours)} in these {len(days)} day(s)", style="")
    lines = [title, Text(" " * LABEL_WIDTH + HEADER)]
    for day in days:
        line = Text(f"{day:%a %Y-%m-%d}".ljust(LABEL_WIDTH))
        now_at = None
        for index, (start, end) in enumerate(cell_bounds(day, tz)):
            mark = cell_mark(start, end, open_, freezes)
            is_now = start <= now < end
            line.append(mark, style=f"{STYLES[mark]} reverse".strip() if is_now else STYLES[mark])
            now_at = index if is_now else now_at
        lines.append(line)
        if now_at is not None:
            local_now = now.astimezone(tz)
            lines.append(
                Text(" " * (LABEL_WIDTH + now_at) + f"^ now ({local_now:%H:%M})", style="bold yellow")
            )
    return lines


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return to_utc(datetime.combine(day, time()), tz)


def _hours(delta: timedelta) -> str:
    minutes = delta // timedelta(minutes=1)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def local_days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def range_for(days: Sequence[date], tz: ZoneInfo) -> tuple[datetime, int]:
    """The ``from`` and ``days`` to ask the calendar API for, covering every local day shown.

    A local day can be 23 or 25 hours long, so one day more is asked for than is shown.
    """
    return _midnight(days[0], tz), len(days) + 1
