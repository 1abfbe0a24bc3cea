"""Half-open UTC time intervals, the currency of the window arithmetic, and their set operations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """``[start, end)`` in UTC. ``end`` is ``None`` when the interval runs past the look-ahead horizon."""

    start: datetime
    end: datetime | None

    def contains(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def _sort_key(iv: Interval) -> tuple[datetime, bool, datetime]:
    return (iv.start, iv.end is None, iv.end or iv.start)


def overlaps(iv: Interval, start: datetime, end: datetime) -> bool:
    """Whether ``iv`` and ``[start, end)`` share an instant."""
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
    return [clip_one(iv, start, end) for iv in intervals if overlaps(iv, start, end)]


def clip_one(iv: Interval, start: datetime, end: datetime) -> Interval:
    """The part of ``iv`` inside ``[start, end)``; ``iv`` must overlap it."""
    if iv.start >= start and iv.end is not None and iv.end <= end:
        return iv
    return Interval(max(iv.start, start), end if iv.end is None else min(iv.end, end))
