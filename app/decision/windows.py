"""The questions a decision asks of deployment windows and freezes: is ``t`` open, since when and until when,
when does the next opening or freeze come, what does a calendar week show.

The public face of the window arithmetic: the schedule types and their parsing live in
``app.decision.schedules``, their expansion in ``app.decision.occurrences``, the interval arithmetic in
``app.decision.intervals``; the names callers use are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypedDict

from app.decision.intervals import Interval, clip, clip_one, merge, subtract
from app.decision.occurrences import aware_utc, clear_cache, occurrences, occurrences_utc, to_utc
from app.decision.schedules import (
    ALWAYS,
    DAY_NAMES,
    MAX_CRON_DURATION,
    AlwaysSchedule,
    CronSchedule,
    OnceSchedule,
    Schedule,
    ScheduleError,
    WeeklySchedule,
    ZonedSchedule,
    parse_schedule,
    schedule_to_dict,
    validate_timezone,
)

__all__ = [
    "ALWAYS",
    "DAY_NAMES",
    "MAX_CRON_DURATION",
    "AlwaysSchedule",
    "CronSchedule",
    "Interval",
    "OnceSchedule",
    "Schedule",
    "ScheduleError",
    "WeekView",
    "WeeklySchedule",
    "ZonedSchedule",
    "active_freeze",
    "clear_cache",
    "clip",
    "is_open",
    "merge",
    "next_freeze_start",
    "next_opening",
    "occurrences",
    "open_interval",
    "parse_schedule",
    "schedule_to_dict",
    "subtract",
    "to_utc",
    "validate_timezone",
    "week_view",
]

_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)
# open_interval, next_opening and next_freeze_start look a day around first and widen from there (the latter
# two by at most four weeks a step): an answer is usually near; a far one should not expand a year at once.
_FIRST_REACH = timedelta(days=1)
_LONGEST_REACH = timedelta(days=28)


def _union(schedules: Sequence[ZonedSchedule], start: datetime, end: datetime) -> list[Interval]:
    """The merged occurrences of all ``schedules`` within ``[start, end)``, clipped to it."""
    return merge(clip_one(iv, start, end) for zs in schedules for iv in occurrences_utc(zs, start, end))


# --- questions a decision asks ------------------------------------------------------------------------------


def open_interval(
    windows: Sequence[ZonedSchedule],
    freezes: Sequence[ZonedSchedule],
    t: datetime,
    horizon: timedelta = timedelta(days=35),
) -> Interval | None:
    """The maximal open interval (windows minus freezes) containing ``t``, or ``None`` when ``t`` is not open.

    Its start is clipped to ``t - horizon``; its end is ``None`` when it is still open at ``t + horizon``.
    The search starts a day either side of ``t`` and widens only the side the interval runs into.
    """
    t = aware_utc(t)
    before = after = min(_FIRST_REACH, horizon)
    while True:
        low = t - before
        high = t + after + (_EPSILON if after == horizon else timedelta(0))
        found = _open_around(windows, freezes, t, low, high)
        if found is None:
            return None
        widen_before = found.start <= low and before < horizon
        widen_after = found.end == high and after < horizon
        if not (widen_before or widen_after):
            return Interval(found.start, None if found.end == high else found.end)
        if widen_before:
            before = min(before * 4, horizon)
        if widen_after:
            after = min(after * 4, horizon)


def _open_around(
    windows: Sequence[ZonedSchedule],
    freezes: Sequence[ZonedSchedule],
    t: datetime,
    low: datetime,
    high: datetime,
) -> Interval | None:
    """The open interval containing ``t`` as far as ``[low, high)`` shows."""
    window = next((iv for iv in _union(windows, low, high) if iv.contains(t)), None)
    if window is None:
        return None
    start, end = window.start, window.end
    for freeze in _union(freezes, low, high):
        if freeze.contains(t):
            return None
        if freeze.end is not None and freeze.end <= t:
            start = max(start, freeze.end)
        elif end is None or freeze.start < end:
            end = freeze.start
    return Interval(start, end)


def is_open(windows: Sequence[ZonedSchedule], freezes: Sequence[ZonedSchedule], t: datetime) -> bool:
    t = aware_utc(t)
    return _covers(windows, t) and not _covers(freezes, t)


def _covers(schedules: Sequence[ZonedSchedule], t: datetime) -> bool:
    return any(_covers_one(zs, t) for zs in schedules)


def _covers_one(zs: ZonedSchedule, t: datetime) -> bool:
    return any(iv.contains(t) for iv in occurrences_utc(zs, t, t + _EPSILON))


def active_freeze(freezes: Sequence[ZonedSchedule], t: datetime) -> ZonedSchedule | None:
    """The first freeze, in the order given, that covers ``t``."""
    t = aware_utc(t)
    return next((zs for zs in freezes if _covers_one(zs, t)), None)


def next_opening(
    windows: Sequence[ZonedSchedule],
    freezes: Sequence[ZonedSchedule],
    t: datetime,
    horizon: timedelta = timedelta(days=366),
) -> datetime | None:
    """The first instant at or after ``t``, and before ``t + horizon``, that is open."""
    t = aware_utc(t)
    for low, high in _chunks(t, t + horizon):
        opened = subtract(_union(windows, low, high), _union(freezes, low, high))
        if opened:
            return opened[0].start
    return None


def next_freeze_start(
    freezes: Sequence[ZonedSchedule], t: datetime, horizon: timedelta = timedelta(days=366)
) -> datetime | None:
    """The first start of a freeze occurrence after ``t`` and before ``t + horizon``.

    ``always`` never starts: a freeze on that schedule covers every instant (``active_freeze`` reports it).
    """
    t = aware_utc(t)
    recurring = [zs for zs in freezes if not isinstance(zs.schedule, AlwaysSchedule)]
    for low, high in _chunks(t, t + horizon):
        starts = [
            iv.start for zs in recurring for iv in occurrences_utc(zs, low, high) if t < iv.start < high
        ]
        if starts:
            return min(starts)
    return None


def _chunks(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` in consecutive pieces of a day, two, four, ... up to four weeks."""
    reach = _FIRST_REACH
    while start < end:
        yield start, min(start + reach, end)
        start += reach
        reach = min(reach * 2, _LONGEST_REACH)


class WeekView(TypedDict):
    start: datetime
    end: datetime
    windows: list[Interval]
    freezes: list[Interval]
    open: list[Interval]


def week_view(
    windows: Sequence[ZonedSchedule], freezes: Sequence[ZonedSchedule], start: datetime, days: int = 7
) -> WeekView:
    """What a calendar picture of ``[start, start + days)`` shows, every interval clipped to it."""
    start = aware_utc(start)
    end = start + days * _ONE_DAY
    shown_windows, shown_freezes = _union(windows, start, end), _union(freezes, start, end)
    return {
        "start": start,
        "end": end,
        "windows": shown_windows,
        "freezes": shown_freezes,
        "open": subtract(shown_windows, shown_freezes),
    }
