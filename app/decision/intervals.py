"""Half-open UTC time intervals, the currency of the window arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """``[start, end)`` in UTC. ``end`` is ``None`` when the interval runs past the look-ahead horizon."""

    start: datetime
    end: datetime | None

    def contains(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)
