"""Properties of the window arithmetic, over zones with odd DST (Lord Howe: 30 min, Santiago: at midnight)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import event, given, settings
from hypothesis import strategies as st

from app.decision.intervals import Interval
from app.decision.ttl import bound_expiry
from app.decision.windows import (
    AlwaysSchedule,
    CronSchedule,
    OnceSchedule,
    WeeklySchedule,
    ZonedSchedule,
    merge,
    next_freeze_start,
    next_opening,
    occurrences,
    open_interval,
    subtract,
    to_utc,
)

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    "America/Santiago",
]
# Instants in 2027, half of them within a few hours of a DST change of one of the zones.
TRANSITIONS = [
    datetime(2027, 3, 28, 1, tzinfo=UTC),  # Europe
    datetime(2027, 10, 31, 1, tzinfo=UTC),
    datetime(2027, 3, 14, 7, tzinfo=UTC),  # New York
    datetime(2027, 11, 7, 6, tzinfo=UTC),
    datetime(2027, 4, 3, 15, tzinfo=UTC),  # Lord Howe
    datetime(2027, 10, 2, 15, 30, tzinfo=UTC),
    datetime(2027, 4, 4, 3, tzinfo=UTC),  # Santiago, at local midnight
    datetime(2027, 9, 5, 4, tzinfo=UTC),
]
YEAR = (datetime(2027, 1, 1), datetime(2027, 12, 31))
HORIZON = timedelta(days=35)
FAST = settings(max_examples=60, deadline=None)

instants_in_the_year = st.datetimes(*YEAR, timezones=st.just(UTC))
instants_near_a_change = st.builds(
    lambda base, minutes: base + timedelta(minutes=minutes),
    st.sampled_from(TRANSITIONS),
    st.integers(-36 * 60, 36 * 60),
)
instants = st.one_of(instants_in_the_year, instants_near_a_change)
quarter_hours = st.builds(clock, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))

weekly_schedules = st.builds(
    WeeklySchedule, st.frozensets(st.integers(0, 6), min_size=1), quarter_hours, quarter_hours
)
cron_schedules = st.builds(
    CronSchedule,
    st.sampled_from(
        ["0 22 * * 5", "30 2 * * *", "*/45 1-3 * * *", "0 9 * * 1-5", "0 0 1 * *", "15 1 * * sun"]
    ),
    st.sampled_from([timedelta(minutes=30), timedelta(hours=3), timedelta(days=1)]),
)
once_schedules = st.builds(
    lambda start, hours: OnceSchedule(start, start + timedelta(hours=hours)),
    instants,
    st.integers(1, 24 * 10),
)
schedules = st.one_of(weekly_schedules, weekly_schedules, cron_schedules, once_schedules)


@st.composite
def zoned(
    draw: st.DrawFn, kind: st.SearchStrategy[WeeklySchedule | CronSchedule | OnceSchedule] = schedules
) -> ZonedSchedule:
    return ZonedSchedule(f"s{draw(st.integers(0, 999))}", draw(st.sampled_from(ZONES)), draw(kind))


windows_lists = st.lists(zoned(), min_size=1, max_size=3) | st.just(
    [ZonedSchedule("always", "UTC", AlwaysSchedule())]
)
freezes_lists = st.lists(zoned(), max_size=2)


def covered(schedules: list[ZonedSchedule], t: datetime) -> bool:
    """The definition: some occurrence contains ``t``."""
    return any(
        o.contains(t)
        for zs in schedules
        for o in occurrences(zs, t - timedelta(days=8), t + timedelta(microseconds=1))
    )


NUDGES = [timedelta(microseconds=n) for n in (-60_000_000, -1, 0, 0, 1, 60_000_000)]


@st.composite
def calendars(draw: st.DrawFn) -> tuple[list[ZonedSchedule], list[ZonedSchedule], datetime]:
    """Windows, freezes and an instant: a random one, or more often one at an edge of an occurrence."""
    windows, freezes, t = draw(windows_lists), draw(freezes_lists), draw(instants)
    edges = [
        edge
        for zs in windows + freezes
        for o in occurrences(zs, t - timedelta(days=2), t + timedelta(days=2))
        for edge in (o.start, o.end)
        if edge is not None
    ]
    if edges and draw(st.integers(0, 3)):
        t = draw(st.sampled_from(edges)) + draw(st.sampled_from(NUDGES))
    return windows, freezes, t


def open_by_definition(windows: list[ZonedSchedule], freezes: list[ZonedSchedule], t: datetime) -> bool:
    return covered(windows, t) and not covered(freezes, t)


@FAST
@given(calendars())
def test_open_means_in_a_window_and_in_no_freeze(
    calendar: tuple[list[ZonedSchedule], list[ZonedSchedule], datetime],
) -> None:
    windows, freezes, t = calendar
    found = open_interval(windows, freezes, t)
    assert (found is not None) == open_by_definition(windows, freezes, t)
    event("open" if found else "closed")
    if found is None:
        return
    assert found.contains(t)
    assert open_by_definition(windows, freezes, found.start)
    if found.start > t - HORIZON:  # maximal: the instant before is closed
        assert not open_by_definition(windows, freezes, found.start - timedelta(microseconds=1))
    if found.end is not None:
        assert found.end <= t + HORIZON
        assert open_by_definition(windows, freezes, found.end - timedelta(microseconds=1))
        assert not open_by_definition(windows, freezes, found.end)
    else:
        assert open_by_definition(windows, freezes, t + HORIZON)


@FAST
@given(
    calendars(),
    st.integers(0, 3 * 24 * 3600).map(lambda s: timedelta(seconds=s)),
    st.integers(-3600, 3 * 24 * 3600).map(lambda s: timedelta(seconds=s)),
)
def test_a_bounded_expiry_never_outlives_its_interval_nor_meets_a_freeze(
    calendar: tuple[list[ZonedSchedule], list[ZonedSchedule], datetime],
    requested: timedelta,
    max_ttl_left: timedelta,
) -> None:
    windows, freezes, now = calendar
    interval = open_interval(windows, freezes, now)
    event("open" if interval else "closed")
    if interval is None:
        return
    next_freeze = next_freeze_start(freezes, now, HORIZON)
    expires_at, _ = bound_expiry(now, requested, now + max_ttl_left, interval, next_freeze)
    assert now <= expires_at <= now + requested
    assert interval.end is None or expires_at <= interval.end
    assert next_freeze is None or expires_at <= next_freeze
    if expires_at > now:
        assert open_by_definition(windows, freezes, expires_at - timedelta(microseconds=1))


@FAST
@given(calendars())
def test_next_opening_is_the_first_open_instant(
    calendar: tuple[list[ZonedSchedule], list[ZonedSchedule], datetime],
) -> None:
    windows, freezes, t = calendar
    opening = next_opening(windows, freezes, t, timedelta(days=40))
    if opening is None:
        assert open_interval(windows, freezes, t) is None
        return
    assert opening >= t
    assert open_by_definition(windows, freezes, opening)
    if opening > t:
        assert not open_by_definition(windows, freezes, opening - timedelta(microseconds=1))
        assert open_interval(windows, freezes, t) is None


@FAST
@given(zoned(), instants, st.integers(1, 60 * 24 * 20))
def test_occurrences_are_sorted_overlapping_and_distinct(
    zs: ZonedSchedule, start: datetime, minutes: int
) -> None:
    end = start + timedelta(minutes=minutes)
    found = occurrences(zs, start, end)
    assert [o.start for o in found] == sorted(o.start for o in found)
    assert len(set(found)) == len(found)
    for o in found:
        assert o.end is not None and o.start < o.end
        assert o.start < end and o.end > start


@FAST
@given(st.sampled_from(ZONES), weekly_schedules, instants)
def test_weekly_occurrences_last_their_local_wall_clock_span(
    zone: str, schedule: WeeklySchedule, t: datetime
) -> None:
    tz = ZoneInfo(zone)
    for o in occurrences(ZonedSchedule("w", zone, schedule), t - timedelta(days=3), t + timedelta(days=3)):
        assert o.end is not None
        opens_local = o.start.astimezone(tz).replace(tzinfo=None)
        day = next(
            d
            for d in (opens_local.date() - timedelta(days=1), opens_local.date())
            if d.weekday() in schedule.days and to_utc(datetime.combine(d, schedule.start), tz) == o.start
        )
        configured_start = datetime.combine(day, schedule.start)
        configured_end = datetime.combine(day + timedelta(days=schedule.days_spanned), schedule.end)
        closes_local = o.end.astimezone(tz).replace(tzinfo=None)
        if exists(configured_start, tz) and exists(configured_end, tz):
            assert (opens_local, closes_local) == (configured_start, configured_end)
        else:  # a time in a gap moves forward to where the gap ends
            assert opens_local >= configured_start and closes_local >= configured_end


def exists(local: datetime, tz: ZoneInfo) -> bool:
    return local.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


@FAST
@given(
    st.sampled_from(ZONES),
    instants_near_a_change.map(lambda t: t.replace(tzinfo=None, second=0, microsecond=0)),
)
def test_a_local_time_resolves_to_its_first_instant_or_the_end_of_its_gap(zone: str, local: datetime) -> None:
    tz = ZoneInfo(zone)
    resolved = to_utc(local, tz)
    wall = resolved.astimezone(tz).replace(tzinfo=None)
    just_before = (resolved - timedelta(microseconds=1)).astimezone(tz).replace(tzinfo=None)
    if exists(local, tz):
        assert wall == local
        for fold in (timedelta(minutes=30), timedelta(hours=1)):  # the lengths of the folds in these zones
            assert (resolved - fold).astimezone(tz).replace(tzinfo=None) != local
    else:
        assert just_before < local < wall  # local lies in the skipped span, which ends at ``resolved``


small_intervals = st.builds(
    lambda start, minutes, open_ended: Interval(
        datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=start),
        None if open_ended else datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=start + minutes),
    ),
    st.integers(0, 600),
    st.integers(0, 120),
    st.integers(0, 9).map(lambda n: n == 0),  # now and then one that runs past the horizon
)
probes = st.lists(st.integers(-10, 800), min_size=1, max_size=30)


def at_minute(m: int) -> datetime:
    return datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=m)


@settings(max_examples=200, deadline=None)
@given(st.lists(small_intervals, max_size=8), st.lists(small_intervals, max_size=8), probes)
def test_merge_and_subtract_keep_membership(
    intervals: list[Interval], cuts: list[Interval], minutes: list[int]
) -> None:
    merged = merge(intervals)
    for a, b in pairwise(merged):
        assert a.end is not None and a.end < b.start  # sorted, disjoint, not even touching
    remaining = subtract(intervals, cuts)
    for a, b in pairwise(remaining):
        assert a.end is not None and a.end <= b.start
    for m in minutes:
        for p in (at_minute(m), at_minute(m) + timedelta(seconds=30)):
            inside = any(i.contains(p) for i in intervals)
            assert any(i.contains(p) for i in merged) == inside
            assert any(i.contains(p) for i in remaining) == (inside and not any(c.contains(p) for c in cuts))
