"""The calendar facts a decision needs, loaded from the stored windows and freezes.

The arithmetic is the pure core's (``app.decision.windows``); this module only turns rows into
``ZonedSchedule``s and asks the questions a policy decision needs answered at one instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.decision import windows as cal
from app.decision.policy import CalendarFacts, FreezeFact, PolicyView
from app.windows.models import Freeze, Window

ALWAYS_NAME = cal.ALWAYS.name


def freeze_applies(freeze: Freeze, policy_name: str) -> bool:
    return not freeze.policies or policy_name in freeze.policies


@dataclass
class Calendar:
    """Every window and freeze, loaded once per request (they are few), asked per policy."""

    windows: dict[str, cal.ZonedSchedule]
    freezes: Sequence[Freeze]
    _zoned_freezes: dict[str, cal.ZonedSchedule]

    @staticmethod
    def zoned(row: Window | Freeze) -> cal.ZonedSchedule:
        return cal.ZonedSchedule(row.name, row.timezone, cal.parse_schedule(row.schedule, row.timezone))

    @classmethod
    def load(cls, session: Session) -> Calendar:
        windows = {row.name: cls.zoned(row) for row in session.scalars(select(Window))}
        windows[ALWAYS_NAME] = cal.ALWAYS
        freezes = session.scalars(select(Freeze).order_by(Freeze.name)).all()
        return cls(windows, freezes, {f.name: cls.zoned(f) for f in freezes})

    def windows_of(self, policy: PolicyView) -> list[cal.ZonedSchedule]:
        return [self.windows[name] for name in policy.windows if name in self.windows]

    def freezes_of(self, policy_name: str) -> list[Freeze]:
        return [f for f in self.freezes if freeze_applies(f, policy_name)]

    def facts(self, policy: PolicyView, now: datetime) -> CalendarFacts:
        windows = self.windows_of(policy)
        freeze_rows = self.freezes_of(policy.name)
        freezes = [self._zoned_freezes[f.name] for f in freeze_rows]
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
