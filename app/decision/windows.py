"""Deployment windows and freezes: schedules, their expansion into UTC intervals, open-interval arithmetic.

Recurring schedules are local wall-clock times in an IANA zone. A local time resolves to a UTC instant by one
rule everywhere: a time in a spring-forward gap means the instant the gap ends, an ambiguous (fall-back) time
means its first occurrence. Everything else is UTC ``Interval`` arithmetic. Time is always a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, TypedDict
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterBadDateError, CroniterError, croniter

from app.decision.durations import parse_duration
from app.decision.intervals import Interval

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CRON_DURATION = timedelta(days=7)

_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)
# open_interval, next_opening and next_freeze_start look a day around first and widen from there (the latter
# two by at most four weeks a step): an answer is usually near; a far one should not expand a year at once.
_FIRST_REACH = timedelta(days=1)
_LONGEST_REACH = timedelta(days=28)
_BLOCK = timedelta(days=7)  # expansion is memoised per schedule and block of UTC time
_BLOCK_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)


class ScheduleError(ValueError):
    """An invalid window or freeze definition; ``field`` is its dotted path in the request body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """Opens at ``start`` on each of ``days`` (0 = Mon); ``end <= start`` ends the next day (equal: 24 h)."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError("days must be a non-empty set of weekdays 0..6")
        for t in (self.start, self.end):
            if t.tzinfo is not None or t.second or t.microsecond:
                raise ValueError("weekly times are naive local times in whole minutes")

    @property
    def days_spanned(self) -> int:
        """0 when an occurrence ends on the day it starts, 1 when it ends the next day."""
        return 0 if self.start < self.end else 1


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """Opens at each fire of a 5-field cron expression in local time, for ``duration`` of absolute time."""

    expression: str
    duration: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.duration <= MAX_CRON_DURATION:
            raise ValueError("a cron duration must be more than 0 and at most 7 days")


@dataclass(frozen=True, slots=True)
class OnceSchedule:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a once schedule needs timezone-aware instants")
        if self.end <= self.start:
            raise ValueError("a once schedule must end after it starts")


@dataclass(frozen=True, slots=True)
class AlwaysSchedule:
    """Always open (the built-in window ``always``)."""


Schedule = WeeklySchedule | CronSchedule | OnceSchedule | AlwaysSchedule


@dataclass(frozen=True, slots=True)
class ZonedSchedule:
    """A stored window or freeze as the core sees it."""

    name: str
    timezone: str
    schedule: Schedule


ALWAYS = ZonedSchedule("always", "UTC", AlwaysSchedule())


# --- parsing and formatting ---------------------------------------------------------------------------------

_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_CRON_RANDOM_RE = re.compile(r"[hr](\(.*\))?(/.*)?")
_FIELDS = {
    "weekly": {"type", "days", "start", "end"},
    "cron": {"type", "cron", "duration"},
    "once": {"type", "start", "end"},
}


@lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    # "localtime" is whatever the host is set to: not a zone a stored window may depend on.
    return frozenset(available_timezones() - {"localtime"})


def validate_timezone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or name not in _known_timezones():
        raise ScheduleError(
            "timezone", f"unknown time zone {str(name)[:64]!r}; use an IANA name such as Europe/Berlin"
        )
    return ZoneInfo(name)


def parse_schedule(data: object, timezone: str) -> Schedule:
    """The API's ``schedule`` object (and the window's ``timezone``) validated into a ``Schedule``.

    Field paths in errors are relative to the window body: ``timezone``, ``schedule.days``, ...
    Times of day are strictly ``HH:MM`` with two-digit hours 00..23 (``9:00`` and ``24:00`` are refused).
    """
    validate_timezone(timezone)
    if not isinstance(data, dict):
        raise ScheduleError("schedule", "must be an object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise ScheduleError("schedule.type", "must be one of: weekly, cron, once")
    for key in data:
        if key not in _FIELDS[kind]:
            raise ScheduleError(f"schedule.{str(key)[:40]}", f"unknown field for a {kind} schedule")
    for key in sorted(_FIELDS[kind]):
        if key not in data:
            raise ScheduleError(f"schedule.{key}", "is required")
    if kind == "weekly":
        return WeeklySchedule(
            _parse_days(data["days"]), _parse_hhmm("start", data["start"]), _parse_hhmm("end", data["end"])
        )
    if kind == "cron":
        return CronSchedule(_parse_cron(data["cron"]), _parse_cron_duration(data["duration"]))
    start, end = _parse_instant("start", data["start"]), _parse_instant("end", data["end"])
    if end <= start:
        raise ScheduleError("schedule.end", "must be after start")
    return OnceSchedule(start, end)


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    """The response form: the inverse of ``parse_schedule`` (durations in seconds, instants in UTC)."""
    match schedule:
        case WeeklySchedule(days=days, start=start, end=end):
            return {
                "type": "weekly",
                "days": [DAY_NAMES[d] for d in sorted(days)],
                "start": start.strftime("%H:%M"),
                "end": end.strftime("%H:%M"),
            }
        case CronSchedule(expression=expression, duration=duration):
            return {"type": "cron", "cron": expression, "duration": duration // timedelta(seconds=1)}
        case OnceSchedule(start=start, end=end):
            return {"type": "once", "start": format_instant(start), "end": format_instant(end)}
        case AlwaysSchedule():
            return {"type": "always"}


def format_instant(t: datetime) -> str:
    """RFC 3339 in UTC with ``Z``."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_days(value: object) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise ScheduleError("schedule.days", "must be a non-empty list of mon, tue, wed, thu, fri, sat, sun")
    days: set[int] = set()
    for item in value:
        if not isinstance(item, str) or item not in DAY_NAMES:
            raise ScheduleError("schedule.days", f"unknown day {str(item)[:20]!r}; use mon, tue, ... sun")
        if DAY_NAMES.index(item) in days:
            raise ScheduleError("schedule.days", f"{item} is listed twice")
        days.add(DAY_NAMES.index(item))
    return frozenset(days)


def _parse_hhmm(field: str, value: object) -> time:
    match = _HHMM_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ScheduleError(f"schedule.{field}", "must be a local time HH:MM, 00:00 to 23:59")
    return time(int(match[1]), int(match[2]))


def _parse_cron_duration(value: object) -> timedelta:
    try:
        duration = parse_duration(value)  # type: ignore[arg-type]  # parse_duration checks the type itself
    except ValueError as exc:
        raise ScheduleError("schedule.duration", str(exc)) from None
    if not timedelta(0) < duration <= MAX_CRON_DURATION:
        raise ScheduleError("schedule.duration", "must be more than 0 and at most 7 days")
    return duration


def _parse_cron(value: object) -> str:
    if not isinstance(value, str) or not value.isascii():
        raise ScheduleError("schedule.cron", "must be a 5-field cron expression")
    fields = value.split()
    if len(fields) != 5:
        raise ScheduleError(
            "schedule.cron", f"must have 5 fields (minute hour day month weekday), not {len(fields)}"
        )
    if any(_CRON_RANDOM_RE.fullmatch(part) for field in fields for part in field.lower().split(",")):
        raise ScheduleError("schedule.cron", "hashed and random values (H, R) are not supported")
    expression = " ".join(fields)
    try:
        # The Gregorian calendar repeats every 400 years (weekdays included): no fire in 400 years is never.
        croniter(expression, datetime(2000, 1, 1), max_years_between_matches=400).get_next(datetime)
    except CroniterBadDateError:
        raise ScheduleError("schedule.cron", "never fires") from None
    except (CroniterError, ValueError, KeyError, IndexError, TypeError):
        raise ScheduleError("schedule.cron", "is not a valid cron expression") from None
    return expression


def _parse_instant(field: str, value: object) -> datetime:
    if not isinstance(value, str) or not _RFC3339_RE.fullmatch(value):
        raise ScheduleError(
            f"schedule.{field}", "must be an RFC 3339 time with an offset, e.g. 2026-12-24T08:00:00+01:00"
        )
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"schedule.{field}", "is not a valid date and time") from None
    return parsed.astimezone(UTC)


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


def _aware_utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return t.astimezone(UTC)


# --- expansion ----------------------------------------------------------------------------------------------


def occurrences(zs: ZonedSchedule, start: datetime, end: datetime) -> list[Interval]:
    """Every occurrence overlapping ``[start, end)``, unclipped, sorted, duplicates removed.

    ``always`` has one occurrence with no start or end of its own, returned as ``Interval(start, None)``.
    """
    start, end = _aware_utc(start), _aware_utc(end)
    return _occurrences(zs, start, end) if start < end else []


def _occurrences(zs: ZonedSchedule, start: datetime, end: datetime) -> list[Interval]:
    schedule = zs.schedule
    if isinstance(schedule, AlwaysSchedule):
        return [Interval(start, None)]
    if isinstance(schedule, OnceSchedule):
        once = Interval(schedule.start.astimezone(UTC), schedule.end.astimezone(UTC))
        return [once] if _overlaps(once, start, end) else []
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


# --- interval arithmetic ------------------------------------------------------------------------------------


def _sort_key(iv: Interval) -> tuple[datetime, bool, datetime]:
    return (iv.start, iv.end is None, iv.end or iv.start)


def _overlaps(iv: Interval, start: datetime, end: datetime) -> bool:
    return iv.start < end and (iv.end is None or iv.end > start)


def _reaches(end: datetime | None, t: datetime) -> bool:
    """Whether an interval ending at ``end`` reaches at least ``t``."""
    return end is None or end >= t


def _before_end(t: datetime, end: datetime | None) -> bool:
    return end is None or t < end


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union as sorted, disjoint intervals; overlapping or touching intervals merge."""
    merged: list[Interval] = []
    for iv in sorted(intervals, key=_sort_key):
        last = merged[-1] if merged else None
        if last is None or not _reaches(last.end, iv.start):
            if iv.end is None or iv.start < iv.end:
                merged.append(iv)
        elif last.end is not None and (iv.end is None or iv.end > last.end):
            merged[-1] = Interval(last.start, iv.end)
    return merged


def subtract(intervals: Iterable[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    """The set difference as sorted, disjoint intervals."""
    remaining: list[Interval] = []
    cut_list = merge(cuts)
    next_cut = 0
    for iv in merge(intervals):
        while next_cut < len(cut_list) and not _reaches(cut_list[next_cut].end, iv.start):
            next_cut += 1
        start: datetime | None = iv.start
        index = next_cut
        while start is not None and index < len(cut_list) and _before_end(cut_list[index].start, iv.end):
            cut = cut_list[index]
            if cut.start > start:
                remaining.append(Interval(start, cut.start))
            start = None if cut.end is None else max(start, cut.end)
            index += 1
        if start is not None and _before_end(start, iv.end):
            remaining.append(Interval(start, iv.end))
    return remaining


def clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The parts inside ``[start, end)``, each with a concrete end."""
    return [_clip_one(iv, start, end) for iv in intervals if _overlaps(iv, start, end)]


def _clip_one(iv: Interval, start: datetime, end: datetime) -> Interval:
    if iv.start >= start and iv.end is not None and iv.end <= end:
        return iv
    return Interval(max(iv.start, start), end if iv.end is None else min(iv.end, end))


def _union(schedules: Sequence[ZonedSchedule], start: datetime, end: datetime) -> list[Interval]:
    """The merged occurrences of all ``schedules`` within ``[start, end)``, clipped to it."""
    return merge(_clip_one(iv, start, end) for zs in schedules for iv in _occurrences(zs, start, end))


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
    t = _aware_utc(t)
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
    t = _aware_utc(t)
    return _covers(windows, t) and not _covers(freezes, t)


def _covers(schedules: Sequence[ZonedSchedule], t: datetime) -> bool:
    return any(_covers_one(zs, t) for zs in schedules)


def _covers_one(zs: ZonedSchedule, t: datetime) -> bool:
    return any(iv.contains(t) for iv in _occurrences(zs, t, t + _EPSILON))


def active_freeze(freezes: Sequence[ZonedSchedule], t: datetime) -> ZonedSchedule | None:
    """The first freeze, in the order given, that covers ``t``."""
    t = _aware_utc(t)
    return next((zs for zs in freezes if _covers_one(zs, t)), None)


def next_opening(
    windows: Sequence[ZonedSchedule],
    freezes: Sequence[ZonedSchedule],
    t: datetime,
    horizon: timedelta = timedelta(days=366),
) -> datetime | None:
    """The first instant at or after ``t``, and before ``t + horizon``, that is open."""
    t = _aware_utc(t)
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
    t = _aware_utc(t)
    recurring = [zs for zs in freezes if not isinstance(zs.schedule, AlwaysSchedule)]
    for low, high in _chunks(t, t + horizon):
        starts = [iv.start for zs in recurring for iv in _occurrences(zs, low, high) if t < iv.start < high]
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
    start = _aware_utc(start)
    end = start + days * _ONE_DAY
    shown_windows, shown_freezes = _union(windows, start, end), _union(freezes, start, end)
    return {
        "start": start,
        "end": end,
        "windows": shown_windows,
        "freezes": shown_freezes,
        "open": subtract(shown_windows, shown_freezes),
    }


def clear_cache() -> None:
    """Forget memoised expansions (benchmarks and tests; the cache never needs it for correctness)."""
    _block_occurrences.cache_clear()
