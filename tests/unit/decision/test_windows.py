from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError, croniter

from app.decision.intervals import Interval
from app.decision.windows import (
    ALWAYS,
    AlwaysSchedule,
    CronSchedule,
    OnceSchedule,
    Schedule,
    ScheduleError,
    WeeklySchedule,
    ZonedSchedule,
    active_freeze,
    clip,
    is_open,
    merge,
    next_freeze_start,
    next_opening,
    occurrences,
    open_interval,
    parse_schedule,
    schedule_to_dict,
    subtract,
    to_utc,
    validate_timezone,
    week_view,
)

EVERY_DAY = frozenset(range(7))
WEEKDAYS = frozenset(range(5))
SAT, SUN = 5, 6


def z(iso: str) -> datetime:
    """An instant written in UTC: ``z("2027-03-28T01:00")``."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


def iv(start: str, end: str | None) -> Interval:
    return Interval(z(start), None if end is None else z(end))


def weekly(tz: str, days: frozenset[int], start: str, end: str, name: str = "w") -> ZonedSchedule:
    return ZonedSchedule(name, tz, WeeklySchedule(days, clock.fromisoformat(start), clock.fromisoformat(end)))


def cron(tz: str, expression: str, duration: timedelta, name: str = "c") -> ZonedSchedule:
    return ZonedSchedule(name, tz, CronSchedule(expression, duration))


def once(start: str, end: str, name: str = "o") -> ZonedSchedule:
    return ZonedSchedule(name, "UTC", OnceSchedule(z(start), z(end)))


# --- resolving local times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "local", "expected"),
    [
        ("Europe/Berlin", "2027-01-15T09:00", "2027-01-15T08:00"),
        ("Europe/Berlin", "2027-07-15T09:00", "2027-07-15T07:00"),
        # docs/API.md: 02:30 on 2027-03-28 does not exist in Berlin; it means 03:00 CEST, 01:00Z.
        ("Europe/Berlin", "2027-03-28T02:30", "2027-03-28T01:00"),
        ("Europe/Berlin", "2027-03-28T02:00", "2027-03-28T01:00"),
        ("Europe/Berlin", "2027-03-28T03:00", "2027-03-28T01:00"),
        ("Europe/Berlin", "2027-03-28T01:59", "2027-03-28T00:59"),
        # Fall-back: 02:30 happens twice; the first (CEST) is meant.
        ("Europe/Berlin", "2027-10-31T02:30", "2027-10-31T00:30"),
        ("Europe/Berlin", "2027-10-31T03:00", "2027-10-31T02:00"),
        ("America/New_York", "2027-03-14T02:30", "2027-03-14T07:00"),
        ("America/New_York", "2027-11-07T01:30", "2027-11-07T05:30"),
        ("Asia/Kolkata", "2027-03-28T09:00", "2027-03-28T03:30"),
        # Lord Howe moves by 30 minutes: 02:00-02:30 is skipped in October, 01:30-02:00 repeats in April.
        ("Australia/Lord_Howe", "2027-10-03T02:15", "2027-10-02T15:30"),
        ("Australia/Lord_Howe", "2027-10-03T02:30", "2027-10-02T15:30"),
        ("Australia/Lord_Howe", "2027-04-04T01:45", "2027-04-03T14:45"),
        ("Australia/Lord_Howe", "2027-04-04T02:00", "2027-04-03T15:30"),
    ],
)
def test_local_times_resolve_by_the_gap_and_fold_rule(tz: str, local: str, expected: str) -> None:
    assert to_utc(datetime.fromisoformat(local), ZoneInfo(tz)) == z(expected)


# --- weekly -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "start", "end", "expected"),
    [
        pytest.param(
            weekly("Europe/Berlin", EVERY_DAY, "09:00", "16:00"),
            "2027-03-27T00:00",
            "2027-03-29T00:00",
            [iv("2027-03-27T08:00", "2027-03-27T15:00"), iv("2027-03-28T07:00", "2027-03-28T14:00")],
            id="berlin-spring-forward-keeps-09-16-local",
        ),
        pytest.param(
            weekly("Europe/Berlin", EVERY_DAY, "09:00", "16:00"),
            "2027-10-30T00:00",
            "2027-11-01T00:00",
            [iv("2027-10-30T07:00", "2027-10-30T14:00"), iv("2027-10-31T08:00", "2027-10-31T15:00")],
            id="berlin-fall-back-keeps-09-16-local",
        ),
        pytest.param(
            weekly("Europe/Berlin", frozenset({SUN}), "02:30", "04:00"),
            "2027-03-27T00:00",
            "2027-03-29T00:00",
            [iv("2027-03-28T01:00", "2027-03-28T02:00")],
            id="berlin-start-in-the-gap",
        ),
        pytest.param(
            weekly("Europe/Berlin", frozenset({SUN}), "02:30", "04:00"),
            "2027-10-30T00:00",
            "2027-11-01T00:00",
            [iv("2027-10-31T00:30", "2027-10-31T03:00")],
            id="berlin-ambiguous-start-is-the-first",
        ),
        pytest.param(
            weekly("Europe/Berlin", frozenset({SUN}), "02:10", "02:50"),
            "2027-03-27T00:00",
            "2027-03-29T00:00",
            [],
            id="berlin-occurrence-wholly-in-the-gap-vanishes",
        ),
        pytest.param(
            weekly("America/New_York", EVERY_DAY, "09:00", "17:00"),
            "2027-03-13T00:00",
            "2027-03-15T00:00",
            [iv("2027-03-13T14:00", "2027-03-13T22:00"), iv("2027-03-14T13:00", "2027-03-14T21:00")],
            id="new-york-spring-forward",
        ),
        pytest.param(
            weekly("America/New_York", EVERY_DAY, "09:00", "17:00"),
            "2027-11-06T00:00",
            "2027-11-08T00:00",
            [iv("2027-11-06T13:00", "2027-11-06T21:00"), iv("2027-11-07T14:00", "2027-11-07T22:00")],
            id="new-york-fall-back",
        ),
        pytest.param(
            weekly("Asia/Kolkata", EVERY_DAY, "09:00", "18:00"),
            "2027-03-28T00:00",
            "2027-03-29T00:00",
            [iv("2027-03-28T03:30", "2027-03-28T12:30")],
            id="kolkata-half-hour-offset",
        ),
        pytest.param(
            weekly("Australia/Lord_Howe", frozenset({SUN}), "02:00", "03:00"),
            "2027-09-25T00:00",
            "2027-10-03T00:00",
            [iv("2027-09-25T15:30", "2027-09-25T16:30"), iv("2027-10-02T15:30", "2027-10-02T16:00")],
            id="lord-howe-30-minute-spring-forward",
        ),
        pytest.param(
            weekly("Australia/Lord_Howe", frozenset({SUN}), "01:00", "03:00"),
            "2027-04-03T00:00",
            "2027-04-04T00:00",
            [iv("2027-04-03T14:00", "2027-04-03T16:30")],
            id="lord-howe-30-minute-fall-back",
        ),
        pytest.param(
            weekly("Europe/Berlin", frozenset({SAT}), "22:00", "06:00"),
            "2027-03-27T00:00",
            "2027-03-29T00:00",
            [iv("2027-03-27T21:00", "2027-03-28T04:00")],
            id="overnight-across-spring-forward-is-7h",
        ),
        pytest.param(
            weekly("Europe/Berlin", frozenset({SAT}), "22:00", "06:00"),
            "2027-10-30T00:00",
            "2027-11-01T00:00",
            [iv("2027-10-30T20:00", "2027-10-31T05:00")],
            id="overnight-across-fall-back-is-9h",
        ),
        pytest.param(
            weekly("Europe/Berlin", frozenset({SAT}), "12:00", "12:00"),
            "2027-03-27T00:00",
            "2027-03-29T00:00",
            [iv("2027-03-27T11:00", "2027-03-28T10:00")],
            id="equal-start-and-end-is-a-local-day",
        ),
        pytest.param(
            weekly("UTC", WEEKDAYS, "09:00", "17:00"),
            "2027-03-26T16:59",
            "2027-03-29T09:00",
            [iv("2027-03-26T09:00", "2027-03-26T17:00")],
            id="unclipped-and-half-open",
        ),
    ],
)
def test_weekly_occurrences(window: ZonedSchedule, start: str, end: str, expected: list[Interval]) -> None:
    assert occurrences(window, z(start), z(end)) == expected


def test_weekly_occurrences_over_months_are_sorted_and_one_per_day() -> None:
    window = weekly("Europe/Berlin", WEEKDAYS, "09:00", "16:00")
    found = occurrences(window, z("2027-01-01T00:00"), z("2028-01-01T00:00"))
    assert [o.start for o in found] == sorted(o.start for o in found)
    assert len(found) == 261  # the weekdays of 2027
    assert {o.start.astimezone(ZoneInfo("Europe/Berlin")).hour for o in found} == {9}


# --- cron ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "start", "end", "expected"),
    [
        pytest.param(
            cron("Europe/Berlin", "30 2 * * *", timedelta(hours=1)),
            "2027-03-27T00:00",
            "2027-03-30T00:00",
            [
                iv("2027-03-27T01:30", "2027-03-27T02:30"),
                iv("2027-03-28T01:00", "2027-03-28T02:00"),  # fires in the gap: at its end, not skipped
                iv("2027-03-29T00:30", "2027-03-29T01:30"),
            ],
            id="fire-in-the-gap-moves-to-its-end",
        ),
        pytest.param(
            cron("Europe/Berlin", "*/30 * * * *", timedelta(minutes=10)),
            "2027-03-28T00:20",
            "2027-03-28T01:45",
            [
                iv("2027-03-28T00:30", "2027-03-28T00:40"),
                iv("2027-03-28T01:00", "2027-03-28T01:10"),  # 02:00, 02:30 and 03:00 local: one occurrence
                iv("2027-03-28T01:30", "2027-03-28T01:40"),
            ],
            id="fires-collapsing-in-the-gap-are-not-duplicated",
        ),
        pytest.param(
            cron("Europe/Berlin", "30 2 * * *", timedelta(minutes=10)),
            "2027-10-30T00:00",
            "2027-11-02T00:00",
            [
                iv("2027-10-30T00:30", "2027-10-30T00:40"),
                iv("2027-10-31T00:30", "2027-10-31T00:40"),  # 02:30 twice that night: the first only
                iv("2027-11-01T01:30", "2027-11-01T01:40"),
            ],
            id="ambiguous-fire-once",
        ),
        pytest.param(
            cron("Europe/Berlin", "0 22 * * 5", timedelta(hours=3)),
            "2027-03-26T23:30",
            "2027-04-03T00:00",
            [iv("2027-03-26T21:00", "2027-03-27T00:00"), iv("2027-04-02T20:00", "2027-04-02T23:00")],
            id="api-example-friday-night-unclipped",
        ),
        pytest.param(
            cron("America/New_York", "0 2 * * *", timedelta(hours=1)),
            "2027-03-14T00:00",
            "2027-03-15T00:00",
            [iv("2027-03-14T07:00", "2027-03-14T08:00")],
            id="new-york-gap",
        ),
        pytest.param(
            cron("UTC", "0 0 1 * *", timedelta(days=7)),
            "2027-03-05T00:00",
            "2027-03-06T00:00",
            [iv("2027-03-01T00:00", "2027-03-08T00:00")],
            id="long-duration-looks-back",
        ),
    ],
)
def test_cron_occurrences(window: ZonedSchedule, start: str, end: str, expected: list[Interval]) -> None:
    assert occurrences(window, z(start), z(end)) == expected


def croniter_reference(expression: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Fire instants by stepping croniter through every fire, resolved with the same rule."""
    local = start.astimezone(tz).replace(tzinfo=None) - timedelta(days=2)
    fires = croniter(expression, local)
    found: list[datetime] = []
    while True:
        try:
            at = to_utc(fires.get_next(datetime), tz)
        except CroniterBadDateError:
            return found
        if at >= end:
            return found
        if at >= start and (not found or found[-1] != at):
            found.append(at)


@pytest.mark.parametrize(
    "expression",
    [
        "0 22 * * 5",
        "30 2 * * *",
        "*/20 1-3 * * *",
        "0 9 L * *",
        "0 9 15W * *",
        "0 9 * * 1#2",
        "0 9 1,15 * mon",  # day of month OR day of week
        "15 10 29 2 *",
        "0 0 * * sun",
        "45 23 * jan,mar,oct,nov *",
    ],
)
@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize(("start", "end"), [("2027-02-20", "2027-04-20"), ("2027-09-25", "2027-11-20")])
def test_cron_fires_agree_with_croniter_step_by_step(expression: str, tz: str, start: str, end: str) -> None:
    window = cron(tz, expression, timedelta(minutes=1))
    begin, finish = z(f"{start}T00:00"), z(f"{end}T00:00")
    expected = croniter_reference(expression, ZoneInfo(tz), begin, finish)
    assert [o.start for o in occurrences(window, begin, finish) if o.start >= begin] == expected


# --- once and always ----------------------------------------------------------------------------------------


def test_once_with_offsets() -> None:
    schedule = parse_schedule(
        {"type": "once", "start": "2026-12-24T08:00:00+01:00", "end": "2026-12-24T12:00:00+01:00"},
        "Europe/Berlin",
    )
    window = ZonedSchedule("xmas", "Europe/Berlin", schedule)
    assert occurrences(window, z("2026-12-24T00:00"), z("2026-12-25T00:00")) == [
        iv("2026-12-24T07:00", "2026-12-24T11:00")
    ]
    assert occurrences(window, z("2026-12-24T11:00"), z("2026-12-25T00:00")) == []


def test_always_is_one_open_ended_occurrence_from_the_query_start() -> None:
    assert occurrences(ALWAYS, z("2027-01-01T00:00"), z("2027-02-01T00:00")) == [iv("2027-01-01T00:00", None)]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrences(ALWAYS, datetime(2027, 1, 1), z("2027-02-01T00:00"))


# --- merge, subtract, clip ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        (
            [iv("2027-01-01T12:00", "2027-01-01T16:00"), iv("2027-01-01T09:00", "2027-01-01T12:00")],
            [iv("2027-01-01T09:00", "2027-01-01T16:00")],
        ),
        (
            [iv("2027-01-01T09:00", "2027-01-01T11:00"), iv("2027-01-01T10:00", "2027-01-01T10:30")],
            [iv("2027-01-01T09:00", "2027-01-01T11:00")],
        ),
        (
            [iv("2027-01-01T09:00", "2027-01-01T10:00"), iv("2027-01-01T10:01", "2027-01-01T11:00")],
            [iv("2027-01-01T09:00", "2027-01-01T10:00"), iv("2027-01-01T10:01", "2027-01-01T11:00")],
        ),
        (
            [iv("2027-01-01T09:00", None), iv("2027-01-01T10:00", "2027-01-01T11:00")],
            [iv("2027-01-01T09:00", None)],
        ),
        ([iv("2027-01-01T09:00", "2027-01-01T09:00")], []),
    ],
)
def test_merge(given: list[Interval], expected: list[Interval]) -> None:
    assert merge(given) == expected


@pytest.mark.parametrize(
    ("given", "cuts", "expected"),
    [
        (
            [iv("2027-01-01T09:00", "2027-01-01T16:00")],
            [iv("2027-01-01T11:00", "2027-01-01T12:00")],
            [iv("2027-01-01T09:00", "2027-01-01T11:00"), iv("2027-01-01T12:00", "2027-01-01T16:00")],
        ),
        (
            [iv("2027-01-01T09:00", "2027-01-01T16:00")],
            [iv("2027-01-01T08:00", "2027-01-01T09:00"), iv("2027-01-01T16:00", "2027-01-01T17:00")],
            [iv("2027-01-01T09:00", "2027-01-01T16:00")],
        ),
        (
            [iv("2027-01-01T09:00", "2027-01-01T16:00"), iv("2027-01-02T09:00", "2027-01-02T16:00")],
            [iv("2027-01-01T15:00", "2027-01-02T10:00")],
            [iv("2027-01-01T09:00", "2027-01-01T15:00"), iv("2027-01-02T10:00", "2027-01-02T16:00")],
        ),
        (
            [iv("2027-01-01T09:00", None)],
            [iv("2027-01-02T00:00", None)],
            [iv("2027-01-01T09:00", "2027-01-02T00:00")],
        ),
        ([iv("2027-01-01T09:00", "2027-01-01T16:00")], [iv("2027-01-01T00:00", None)], []),
        (
            [iv("2027-01-01T09:00", None)],
            [iv("2027-01-01T10:00", "2027-01-01T11:00")],
            [
                iv("2027-01-01T09:00", "2027-01-01T10:00"),
                iv("2027-01-01T11:00", None),
            ],
        ),
    ],
)
def test_subtract(given: list[Interval], cuts: list[Interval], expected: list[Interval]) -> None:
    assert subtract(given, cuts) == expected


def test_clip_gives_concrete_ends() -> None:
    assert clip(
        [iv("2027-01-01T09:00", None), iv("2026-12-01T00:00", "2026-12-02T00:00")],
        z("2027-01-01T10:00"),
        z("2027-01-02T00:00"),
    ) == [iv("2027-01-01T10:00", "2027-01-02T00:00")]


# --- open intervals -----------------------------------------------------------------------------------------

OFFICE = weekly("Europe/Berlin", WEEKDAYS, "09:00", "16:00", name="office")
MORNING = weekly("Europe/Berlin", WEEKDAYS, "09:00", "12:00", name="morning")
AFTERNOON = weekly("Europe/Berlin", WEEKDAYS, "12:00", "16:00", name="afternoon")
STANDUP = once("2027-03-29T09:00", "2027-03-29T10:00", name="standup")  # Monday, 11:00-12:00 CEST


@pytest.mark.parametrize(
    ("windows", "freezes", "t", "expected"),
    [
        pytest.param(
            [OFFICE], [], "2027-03-29T08:00", iv("2027-03-29T07:00", "2027-03-29T14:00"), id="inside"
        ),
        pytest.param(
            [OFFICE], [], "2027-03-29T07:00", iv("2027-03-29T07:00", "2027-03-29T14:00"), id="at-start"
        ),
        pytest.param([OFFICE], [], "2027-03-29T14:00", None, id="at-end-is-closed"),
        pytest.param([OFFICE], [], "2027-03-28T08:00", None, id="sunday"),
        pytest.param(
            [MORNING, AFTERNOON],
            [],
            "2027-03-29T08:00",
            iv("2027-03-29T07:00", "2027-03-29T14:00"),
            id="touching",
        ),
        pytest.param(
            [OFFICE],
            [STANDUP],
            "2027-03-29T08:00",
            iv("2027-03-29T07:00", "2027-03-29T09:00"),
            id="freeze-ahead",
        ),
        pytest.param([OFFICE], [STANDUP], "2027-03-29T09:30", None, id="frozen"),
        pytest.param([OFFICE], [STANDUP], "2027-03-29T09:00", None, id="freeze-start-is-frozen"),
        pytest.param(
            [OFFICE],
            [STANDUP],
            "2027-03-29T10:00",
            iv("2027-03-29T10:00", "2027-03-29T14:00"),
            id="freeze-behind",
        ),
        pytest.param([ALWAYS], [], "2027-03-29T10:00", iv("2027-02-22T10:00", None), id="always"),
        pytest.param(
            [ALWAYS],
            [once("2027-04-08T00:00", "2027-04-09T00:00")],
            "2027-03-29T10:00",
            iv("2027-02-22T10:00", "2027-04-08T00:00"),
            id="always-until-a-freeze-ten-days-on",
        ),
        pytest.param(
            [weekly("UTC", EVERY_DAY, "00:00", "00:00")],
            [once("2027-03-10T06:00", "2027-03-10T07:00"), once("2027-04-20T00:00", "2027-04-21T00:00")],
            "2027-03-29T10:00",
            iv("2027-03-10T07:00", "2027-04-20T00:00"),
            id="touching-days-widen-the-search-both-ways",
        ),
        pytest.param(
            [once("2027-03-29T09:00", "2027-05-03T10:00")],
            [],
            "2027-03-29T10:00",
            iv("2027-03-29T09:00", "2027-05-03T10:00"),
            id="ending-exactly-at-the-horizon-keeps-its-end",
        ),
        pytest.param(
            [once("2027-03-29T09:00", "2027-05-03T10:00:01")],
            [],
            "2027-03-29T10:00",
            iv("2027-03-29T09:00", None),
            id="open-at-the-horizon-has-no-end",
        ),
    ],
)
def test_open_interval(
    windows: list[ZonedSchedule], freezes: list[ZonedSchedule], t: str, expected: Interval | None
) -> None:
    assert open_interval(windows, freezes, z(t)) == expected


def test_open_interval_accepts_any_offset_and_answers_in_utc() -> None:
    t = datetime(2027, 3, 29, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    found = open_interval([OFFICE], [], t)
    assert found == iv("2027-03-29T07:00", "2027-03-29T14:00")
    assert found is not None and found.start.tzinfo is UTC


def test_is_open() -> None:
    assert is_open([OFFICE], [STANDUP], z("2027-03-29T08:59:59.999999"))
    assert not is_open([OFFICE], [STANDUP], z("2027-03-29T09:00"))
    assert is_open([OFFICE], [STANDUP], z("2027-03-29T10:00"))
    assert not is_open([OFFICE], [], z("2027-03-29T14:00"))
    assert not is_open([], [], z("2027-03-29T10:00"))


def test_active_freeze_names_the_first_covering_freeze() -> None:
    later = once("2027-03-29T09:30", "2027-03-29T11:00", name="later")
    assert active_freeze([later, STANDUP], z("2027-03-29T09:15")) == STANDUP
    assert active_freeze([later, STANDUP], z("2027-03-29T09:45")) == later
    assert active_freeze([later, STANDUP], z("2027-03-29T11:00")) is None


@pytest.mark.parametrize(
    ("windows", "freezes", "t", "expected"),
    [
        pytest.param([OFFICE], [], "2027-04-02T14:30", "2027-04-05T07:00", id="friday-evening-to-monday"),
        pytest.param([OFFICE], [], "2027-03-29T08:00", "2027-03-29T08:00", id="already-open"),
        pytest.param(
            [OFFICE],
            [once("2027-04-05T07:00", "2027-04-05T08:00")],
            "2027-04-02T14:30",
            "2027-04-05T08:00",
            id="freeze-delays-the-opening",
        ),
        pytest.param(
            [OFFICE], [STANDUP], "2027-03-29T09:15", "2027-03-29T10:00", id="opens-when-the-freeze-ends"
        ),
        pytest.param(
            [once("2027-10-01T00:00", "2027-10-02T00:00")],
            [],
            "2027-03-29T00:00",
            "2027-10-01T00:00",
            id="six-months-ahead",
        ),
        pytest.param([once("2026-01-01T00:00", "2026-01-02T00:00")], [], "2027-03-29T00:00", None, id="past"),
        pytest.param(
            [once("2028-04-01T00:00", "2028-04-02T00:00")], [], "2027-03-29T00:00", None, id="too-far"
        ),
        pytest.param(
            [OFFICE],
            [ZonedSchedule("all", "UTC", AlwaysSchedule())],
            "2027-03-29T08:00",
            None,
            id="frozen-for-good",
        ),
    ],
)
def test_next_opening(
    windows: list[ZonedSchedule], freezes: list[ZonedSchedule], t: str, expected: str | None
) -> None:
    assert next_opening(windows, freezes, z(t)) == (None if expected is None else z(expected))


def test_next_freeze_start() -> None:
    wednesdays = weekly("America/New_York", frozenset({2}), "12:00", "13:00", name="sync")
    assert next_freeze_start([wednesdays, STANDUP], z("2027-03-28T00:00")) == z("2027-03-29T09:00")
    assert next_freeze_start([wednesdays, STANDUP], z("2027-03-29T09:00")) == z("2027-03-31T16:00")
    assert next_freeze_start([wednesdays], z("2027-03-31T16:30")) == z("2027-04-07T16:00")
    assert next_freeze_start([wednesdays], z("2027-03-31T16:30"), timedelta(days=6)) is None
    assert next_freeze_start([ZonedSchedule("all", "UTC", AlwaysSchedule())], z("2027-03-28T00:00")) is None
    assert next_freeze_start([], z("2027-03-28T00:00")) is None


def test_week_view() -> None:
    freeze = once("2027-03-28T20:00", "2027-03-29T08:00", name="maintenance")
    view = week_view([MORNING, AFTERNOON], [freeze], z("2027-03-29T00:00"), 2)
    assert view == {
        "start": z("2027-03-29T00:00"),
        "end": z("2027-03-31T00:00"),
        "windows": [iv("2027-03-29T07:00", "2027-03-29T14:00"), iv("2027-03-30T07:00", "2027-03-30T14:00")],
        "freezes": [iv("2027-03-29T00:00", "2027-03-29T08:00")],
        "open": [iv("2027-03-29T08:00", "2027-03-29T14:00"), iv("2027-03-30T07:00", "2027-03-30T14:00")],
    }


# --- parsing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected", "back"),
    [
        (
            {"type": "weekly", "days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"},
            WeeklySchedule(frozenset({0, 1, 2, 3}), clock(9), clock(16)),
            None,
        ),
        (
            {"type": "weekly", "days": ["sun", "sat"], "start": "22:00", "end": "00:00"},
            WeeklySchedule(frozenset({5, 6}), clock(22), clock(0)),
            {"type": "weekly", "days": ["sat", "sun"], "start": "22:00", "end": "00:00"},
        ),
        (
            {"type": "cron", "cron": "0 22 * * 5", "duration": "3h"},
            CronSchedule("0 22 * * 5", timedelta(hours=3)),
            {"type": "cron", "cron": "0 22 * * 5", "duration": 10800},
        ),
        (
            {"type": "cron", "cron": " 0  22 * *\tfri ", "duration": 600},
            CronSchedule("0 22 * * fri", timedelta(minutes=10)),
            {"type": "cron", "cron": "0 22 * * fri", "duration": 600},
        ),
        (
            {"type": "once", "start": "2026-12-24T08:00:00+01:00", "end": "2026-12-24T12:00:00.5+01:00"},
            OnceSchedule(z("2026-12-24T07:00"), z("2026-12-24T11:00:00.5")),
            {"type": "once", "start": "2026-12-24T07:00:00Z", "end": "2026-12-24T11:00:00.500000Z"},
        ),
        (
            {"type": "once", "start": "2026-12-24t07:00:00z", "end": "2026-12-24T08:00:00Z"},
            OnceSchedule(z("2026-12-24T07:00"), z("2026-12-24T08:00")),
            {"type": "once", "start": "2026-12-24T07:00:00Z", "end": "2026-12-24T08:00:00Z"},
        ),
    ],
)
def test_parse_schedule_and_back(
    data: dict[str, Any], expected: Schedule, back: dict[str, Any] | None
) -> None:
    parsed = parse_schedule(data, "Europe/Berlin")
    assert parsed == expected
    assert schedule_to_dict(parsed) == (data if back is None else back)
    assert parse_schedule(schedule_to_dict(parsed), "Europe/Berlin") == parsed


def test_always_to_dict() -> None:
    assert schedule_to_dict(AlwaysSchedule()) == {"type": "always"}


WEEKLY = {"type": "weekly", "days": ["mon"], "start": "09:00", "end": "16:00"}
CRON = {"type": "cron", "cron": "0 22 * * 5", "duration": "3h"}
ONCE = {"type": "once", "start": "2026-12-24T08:00:00+01:00", "end": "2026-12-24T12:00:00+01:00"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("weekly", "schedule"),
        ({}, "schedule.type"),
        ({"type": "monthly"}, "schedule.type"),
        ({"type": "always"}, "schedule.type"),
        ({**WEEKLY, "timezone": "UTC"}, "schedule.timezone"),
        ({**CRON, "days": ["mon"]}, "schedule.days"),
        ({"type": "weekly", "days": ["mon"], "start": "09:00"}, "schedule.end"),
        ({**WEEKLY, "days": []}, "schedule.days"),
        ({**WEEKLY, "days": "mon"}, "schedule.days"),
        ({**WEEKLY, "days": ["mon", "mon"]}, "schedule.days"),
        ({**WEEKLY, "days": ["monday"]}, "schedule.days"),
        ({**WEEKLY, "days": ["Mon"]}, "schedule.days"),
        ({**WEEKLY, "days": [1]}, "schedule.days"),
        ({**WEEKLY, "start": "25:00"}, "schedule.start"),
        ({**WEEKLY, "start": "24:00"}, "schedule.start"),
        ({**WEEKLY, "start": "9:00"}, "schedule.start"),
        ({**WEEKLY, "start": "09:60"}, "schedule.start"),
        ({**WEEKLY, "start": "09:00:00"}, "schedule.start"),
        ({**WEEKLY, "end": "\uff10\uff19:\uff10\uff10"}, "schedule.end"),
        ({**WEEKLY, "end": 900}, "schedule.end"),
        ({**CRON, "cron": "0 22 * *"}, "schedule.cron"),
        ({**CRON, "cron": "0 0 22 * * 5"}, "schedule.cron"),
        ({**CRON, "cron": "@daily"}, "schedule.cron"),
        ({**CRON, "cron": "0 24 * * *"}, "schedule.cron"),
        ({**CRON, "cron": "0 22 * * funday"}, "schedule.cron"),
        ({**CRON, "cron": "H 22 * * 5"}, "schedule.cron"),
        ({**CRON, "cron": "R 22 * * 5"}, "schedule.cron"),
        ({**CRON, "cron": "0 0 30 2 *"}, "schedule.cron"),  # never fires
        ({**CRON, "cron": "0 0 31 4,6,9,11 *"}, "schedule.cron"),
        ({**CRON, "cron": "0 0 1 * fri#2"}, "schedule.cron"),
        ({**CRON, "cron": "0\u00a022 * * 5"}, "schedule.cron"),
        ({**CRON, "cron": 5}, "schedule.cron"),
        ({**CRON, "duration": "0s"}, "schedule.duration"),
        ({**CRON, "duration": 0}, "schedule.duration"),
        ({**CRON, "duration": "7d1s"}, "schedule.duration"),
        ({**CRON, "duration": "3 hours"}, "schedule.duration"),
        ({**CRON, "duration": 1.5}, "schedule.duration"),
        ({**ONCE, "start": "2026-12-24T08:00:00"}, "schedule.start"),
        ({**ONCE, "end": "2026-12-24 12:00"}, "schedule.end"),
        ({**ONCE, "end": "2026-13-24T12:00:00+01:00"}, "schedule.end"),
        ({**ONCE, "end": "2026-12-24T08:00:00+01:00"}, "schedule.end"),
        ({**ONCE, "end": "2026-12-24T07:00:00Z"}, "schedule.end"),
    ],
)
def test_parse_schedule_refuses(data: object, field: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(data, "Europe/Berlin")
    assert caught.value.field == field
    assert caught.value.message
    assert isinstance(caught.value, ValueError)


def test_cron_that_fires_rarely_is_accepted() -> None:
    assert parse_schedule({**CRON, "cron": "0 0 29 2 *"}, "UTC") == CronSchedule(
        "0 0 29 2 *", timedelta(hours=3)
    )


def test_parse_schedule_checks_the_timezone_first() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(WEEKLY, "Mars/Olympus_Mons")
    assert caught.value.field == "timezone"


@pytest.mark.parametrize(
    "name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "Australia/Lord_Howe"]
)
def test_known_timezones(name: str) -> None:
    assert validate_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    ["", "Mars/Olympus_Mons", "America", "europe/berlin", "../etc/passwd", "/etc/localtime", "localtime", 5],
)
def test_unknown_timezones(name: object) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_timezone(name)
    assert caught.value.field == "timezone"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WeeklySchedule(frozenset(), clock(9), clock(16)), "days"),
        (lambda: WeeklySchedule(frozenset({7}), clock(9), clock(16)), "days"),
        (lambda: WeeklySchedule(frozenset({1}), clock(9, 0, 30), clock(16)), "whole minutes"),
        (lambda: CronSchedule("0 22 * * 5", timedelta(0)), "duration"),
        (lambda: OnceSchedule(datetime(2027, 1, 1), z("2027-01-02T00:00")), "timezone-aware"),
        (lambda: OnceSchedule(z("2027-01-02T00:00"), z("2027-01-01T00:00")), "end after"),
    ],
)
def test_schedules_keep_their_invariants(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
