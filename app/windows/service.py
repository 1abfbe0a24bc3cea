"""Deployment windows: when leases may be granted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.config_store import ConfigStore
from app.decision import windows as cal
from app.decision.intervals import Interval
from app.errors import BadRequest, Conflict, NotFound
from app.policies.models import Policy
from app.windows.calendar import ALWAYS_NAME, Calendar
from app.windows.models import Window
from app.windows.schemas import MAX_OCCURRENCES

RESERVED_NAMES = {ALWAYS_NAME, "calendar"}  # "calendar" would hide behind GET /v1/windows/calendar


def normalized_schedule(values: Mapping[str, Any]) -> dict[str, Any]:
    """The schedule as the calendar core reads it back, or a 400 naming the bad field."""
    try:
        schedule = cal.parse_schedule(values["schedule"], values["timezone"])
    except cal.ScheduleError as exc:
        raise BadRequest("The schedule is not valid.", errors={exc.field: [exc.message]}) from None
    return cal.schedule_to_dict(schedule)


def schedule_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": values["name"], "timezone": values["timezone"], "schedule": normalized_schedule(values)}


@dataclass(frozen=True, slots=True)
class BuiltinWindow:
    """The ``always`` window, shown like a stored one."""

    name: str = ALWAYS_NAME
    timezone: str = "UTC"
    schedule: dict[str, Any] | None = None
    builtin: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


ALWAYS_WINDOW = BuiltinWindow(schedule={"type": "always"})


@dataclass(frozen=True, slots=True)
class Occurrences:
    items: list[Interval]
    truncated: bool


def occurrences_between(zoned: cal.ZonedSchedule, start: datetime, end: datetime) -> Occurrences:
    found = cal.occurrences(zoned, start, end)
    return Occurrences(found[:MAX_OCCURRENCES], len(found) > MAX_OCCURRENCES)


class WindowService:
    def __init__(self, session: Session, clock: Clock, ledger: Ledger) -> None:
        self._session = session
        self._store: ConfigStore[Window] = ConfigStore(session, clock, ledger, Window, "window")

    def list_windows(self, *, limit: int, before_id: int | None) -> Sequence[Window]:
        return self._store.list(limit=limit, before_id=before_id)

    def get_window(self, name: str) -> Window | BuiltinWindow:
        return ALWAYS_WINDOW if name == ALWAYS_NAME else self._store.get(name)

    def create_window(self, values: Mapping[str, Any], *, actor: Actor) -> Window:
        if values["name"] in RESERVED_NAMES:
            raise Conflict(f"the window name {values['name']!r} is reserved")
        columns = schedule_columns(values)
        return self._store.create(columns, actor=actor, snapshot=columns)

    def replace_window(self, name: str, values: Mapping[str, Any], *, actor: Actor) -> Window:
        self._refuse_builtin(name)
        columns = schedule_columns({**values, "name": values.get("name", name)})
        return self._store.replace(name, columns, actor=actor, snapshot=columns)

    def delete_window(self, name: str, *, actor: Actor) -> None:
        self._refuse_builtin(name)
        self._store.get(name)
        users = self.policies_using(name)
        if users:
            raise Conflict(f"window {name!r} is used by policies: {', '.join(sorted(users))}")
        self._store.delete(name, actor=actor)

    def policies_using(self, name: str) -> set[str]:
        return {p.name for p in self._session.scalars(select(Policy)) if name in p.windows}

    def occurrences(self, name: str, start: datetime, end: datetime) -> Occurrences:
        window = self.get_window(name)
        zoned = cal.ALWAYS if isinstance(window, BuiltinWindow) else Calendar.zoned(window)
        return occurrences_between(zoned, start, end)

    def week(self, start: datetime, days: int, policy_name: str | None) -> dict[str, Any]:
        """Per policy: its windows, the freezes that apply to it, and when it is open, over the days."""
        query = select(Policy).order_by(Policy.name)
        if policy_name is not None:
            query = query.where(Policy.name == policy_name)
        policies = self._session.scalars(query).all()
        if policy_name is not None and not policies:
            raise NotFound(f"no policy named {policy_name!r}")
        calendar = Calendar.load(self._session)
        end = start + timedelta(days=days)
        weeks = []
        for policy in policies:
            windows = [calendar.windows[n] for n in policy.windows if n in calendar.windows]
            freezes = [f.zoned for f in calendar.freezes_of(policy.name)]
            view = cal.week_view(windows, freezes, start, days)
            weeks.append({"policy": policy.name, **{k: view[k] for k in ("windows", "freezes", "open")}})
        return {"start": start, "end": end, "policies": weeks}

    @staticmethod
    def _refuse_builtin(name: str) -> None:
        if name == ALWAYS_NAME:
            raise Conflict("the built-in window 'always' cannot be changed or deleted")
