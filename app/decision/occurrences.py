"""Schedules expanded into their occurrences: half-open UTC intervals.

Recurring schedules are local wall-clock times in an IANA zone. A local time resolves to a UTC instant by one
rule everywhere: a time in a spring-forward gap means the instant the gap ends, an ambiguous (fall-back) time
means its first occurrence. Time is always a parameter.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from app.decision.intervals import Interval, overlaps
from app.decision.schedules import (
    AlwaysSchedule,
    CronSchedule,
    OnceSchedule,
    WeeklySchedule,
    ZonedSchedule,
)

_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)
_BLOCK = timedelta(days=7)  # expansion is memoised per schedule and block of UTC time
_BLOCK_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)


# --- local time ---------------------------------------------------------------------------------------------


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall-clock time as a UTC instant, by the gap and fold rule of this module."""
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == local:
        return first
    # In a gap, fold=0 reads the time with the offset from before the change and fold=1 with the one after:
    # the change, which is where the gap ends, lies between the two readings.
    return _transition(local.replace(tzinfo=tz, fold=1).astimezone(UTC), first, tz)


def _transition(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The instant in ``(before, after]`` where the zone's offset changes (changes fall on whole seconds)."""
    low, high = int(before.timestamp()), int(after.timestamp()) + 1
    old = datetime.fromtimestamp(low, tz).utcoffset()
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == old:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, UTC)


def aware_utc(t: datetime) -> datetime:
    """``t`` in UTC; a naive ``t`` is refused, never guessed."""
    if t.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return t.astimezone(UTC)


# --- expansion ----------------------------------------------------------------------------------------------


def occurrences(zs: ZonedSchedule, start: datetime, end: datetime) -> list[Interval]:
    """Every occurrence overlapping ``[start, end)``, unclipped, sorted, duplicates removed.

    ``always`` has one occurrence with no start or end of its own, returned as ``Interval(start, None)``.
    """
    start, end = aware_utc(start), aware_utc(end)
    return occurrences_utc(zs, start, end) if start < end else []


def occurrences_utc(zs: ZonedSchedule, start: datetime, end: datetime) -> list[Interval]:
    """``occurrences`` without its checks, for callers that already hold UTC instants with ``start < end``."""
    schedule = zs.schedule
    if isinstance(schedule, AlwaysSchedule):
        return [Interval(start, None)]
    if isinstance(schedule, OnceSchedule):
        once = Interval(schedule.start.astimezone(UTC), schedule.end.astimezone(UTC))
        return [once] if overlaps(once, start, end) else []
    # Only occurrences that start at most one occurrence's length before ``start`` can reach into it.
    first, last = _block_of(start - _longest(schedule)), _block_of(end - _EPSILON)
    return [
        iv
        for block in range(first, last + 1)
        for iv in _block_occurrences(zs, block)
        if iv.start < end and iv.end is not None and iv.end > start
    ]


def _longest(schedule: WeeklySchedule | CronSchedule) -> timedelta:
    if isinstance(schedule, CronSchedule):
        return schedule.duration
    # A local day and a bit, stretched by an offset change (up to a whole day, as Samoa's skipped 2011-12-30).
    return 3 * _ONE_DAY


def _block_of(t: datetime) -> int:
    return (t - _BLOCK_EPOCH) // _BLOCK


@lru_cache(maxsize=8192)
def _block_occurrences(zs: ZonedSchedule, block: int) -> tuple[Interval, ...]:
    """The occurrences that start in one block of UTC time, in order.

    Memoised, as expansion dominates the cost of a decision. Each occurrence belongs to exactly one block, so
    concatenated blocks stay sorted and free of duplicates.
    """
    start = _BLOCK_EPOCH + block * _BLOCK
    end = start + _BLOCK
    tz = ZoneInfo(zs.timezone)
    if isinstance(zs.schedule, WeeklySchedule):
        return tuple(_expand_weekly(zs.schedule, tz, start, end))
    if isinstance(zs.schedule, CronSchedule):
        return tuple(_expand_cron(zs.schedule, tz, start, end))
    raise TypeError(f"{zs.schedule!r} is not expanded by blocks")  # pragma: no cover


def _expand_weekly(s: WeeklySchedule, tz: ZoneInfo, start: datetime, end: datetime) -> Iterator[Interval]:
    """Occurrences starting in ``[start, end)``."""
    # A gap can move an opening past local midnight, so a day before ``start``'s local date may open in range.
    day = start.astimezone(tz).date() - _ONE_DAY
    last = end.astimezone(tz).date()
    while day <= last:
        if day.weekday() in s.days:
            opens = to_utc(datetime.combine(day, s.start), tz)
            closes = to_utc(datetime.combine(day + s.days_spanned * _ONE_DAY, s.end), tz)
            # opens == closes: both ends fell into one gap and nothing is left of this occurrence.
            if start <= opens < end and opens < closes:
                yield Interval(opens, closes)
        day += _ONE_DAY


def _expand_cron(s: CronSchedule, tz: ZoneInfo, start: datetime, end: datetime) -> Iterator[Interval]:
    """Occurrences starting in ``[start, end)``.

    Fire times are naive local times, which have no DST: each is seen exactly once and then resolved like any
    local time, so several fires inside one gap collapse into one occurrence at the gap's end. The local dates
    run a day beyond either side of the range, for fires that a gap or a fold moves across it.
    """
    first = start.astimezone(tz).date() - _ONE_DAY
    last = end.astimezone(tz).date() + _ONE_DAY
    previous: datetime | None = None
    for day in _fire_days(s.expression, first, last):
        for at in _times_of_day(s.expression):
            opens = to_utc(datetime.combine(day, at), tz)
            if start <= opens < end and opens != previous:
                yield Interval(opens, opens + s.duration)
            previous = opens


def _fire_days(expression: str, first: date, last: date) -> Iterator[date]:
    """The local dates in ``[first, last]`` on which the expression fires (one croniter step per date)."""
    midnight_before = timedelta(minutes=1)
    fires = croniter(
        expression,
        datetime.combine(first, time()) - midnight_before,
        max_years_between_matches=last.year - first.year + 1,
    )
    while True:
        try:
            day = fires.get_next(datetime).date()
        except CroniterBadDateError:
            return
        if day > last:
            return
        yield day
        fires.set_current(datetime.combine(day + _ONE_DAY, time()) - midnight_before)


@lru_cache(maxsize=1024)
def _times_of_day(expression: str) -> tuple[time, ...]:
    """The times a 5-field expression fires on a day it fires at all: its hours times its minutes."""
    (minutes, hours, *_), _nth = croniter.expand(expression)
    return tuple(
        time(hour, minute)
        for hour in (range(24) if hours == ["*"] else sorted(hours))
        for minute in (range(60) if minutes == ["*"] else sorted(minutes))
    )


def clear_cache() -> None:
    """Forget memoised expansions (benchmarks and tests; the cache never needs it for correctness)."""
    _block_occurrences.cache_clear()
