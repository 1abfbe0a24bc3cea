"""The calendar facts a decision needs, loaded from the stored windows and freezes.

The arithmetic is the pure core's (``app.decision.windows``); this module only turns rows into
``ZonedSchedule``s and asks the questions a policy decision needs answered at one instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.decision import windows as cal
from app.decision.policy import CalendarFacts, FreezeFact, PolicyView
from app.windows.models import Freeze, Window

ALWAYS_NAME = cal.ALWAYS.name


@dataclass(frozen=True, slots=True)
class CalendarFreeze:
    """What a decision needs of a stored freeze (plain data: a calendar outlives the session it came from)."""

    name: str
    reason: str
    policies: tuple[str, ...]  # empty: every policy
    zoned: cal.ZonedSchedule

    def applies_to(self, policy_name: str) -> bool:
        return not self.policies or policy_name in self.policies


@dataclass(frozen=True)
class Calendar:
    """Every window and freeze (they are few), asked per policy. Holds no rows, so a process may keep one
    while the configuration is unchanged, and with it the expansion caches of its schedules."""

    windows: dict[str, cal.ZonedSchedule]
    freezes: tuple[CalendarFreeze, ...]

    @staticmethod
    def zoned(row: Window | Freeze) -> cal.ZonedSchedule:
        return cal.ZonedSchedule(row.name, row.timezone, cal.parse_schedule(row.schedule, row.timezone))

    @classmethod
    def load(cls, session: Session) -> Calendar:
        windows = {row.name: cls.zoned(row) for row in session.scalars(select(Window))}
        windows[ALWAYS_NAME] = cal.ALWAYS
        freezes = tuple(
            CalendarFreeze(row.name, row.reason, tuple(row.policies), cls.zoned(row))
            for row in session.scalars(select(Freeze).order_by(Freeze.name))
        )
        return cls(windows, freezes)

    def windows_of(self, policy: PolicyView) -> list[cal.ZonedSchedule]:
        return [self.windows[name] for name in policy.windows if name in self.windows]

    def freezes_of(self, policy_name: str) -> list[CalendarFreeze]:
        return [f for f in self.freezes if f.applies_to(policy_name)]

    def facts(self, policy: PolicyView, now: datetime) -> CalendarFacts:
        windows = self.windows_of(policy)
        freeze_rows = self.freezes_of(policy.name)
        freezes = [f.zoned for f in freeze_rows]
        interval = cal.open_interval(windows, freezes, now)
        frozen = cal.active_freeze(freezes, now)
        active = None
        if frozen is not None:
            reason = next(f.reason for f in freeze_rows if f.name == frozen.name)
            active = FreezeFact(frozen.name, reason)
        return CalendarFacts(
            open_interval=interval,
            active_freeze=active,
            next_opening=cal.next_opening(windows, freezes, now) if interval is None else None,
            next_freeze_start=cal.next_freeze_start(freezes, now) if interval is not None else None,
        )
