"""Window and freeze schedules: the three types an admin writes (weekly, cron, once), and their parsing.

``parse_schedule`` turns the API's ``schedule`` object into a ``Schedule`` and names the field that is wrong;
``schedule_to_dict`` is its inverse. Expanding a schedule into UTC time is ``app.decision.occurrences``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterBadDateError, CroniterError, croniter

from app.decision.durations import parse_duration
from app.instants import format_instant

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CRON_DURATION = timedelta(days=7)


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
