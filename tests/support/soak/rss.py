"""Every process's resident memory, sampled during the load: it must stay flat."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.soak.cluster import rss_kib
from tests.support.soak.options import RSS_GROWTH_FLOOR_KIB, RSS_GROWTH_FRACTION


@dataclass
class RssRow:
    name: str
    start_pid: int
    start_kib: int
    last_pid: int
    last_kib: int
    max_kib: int

    @property
    def growth_kib(self) -> int:
        return self.last_kib - self.start_kib

    @property
    def bound_kib(self) -> int:
        return max(int(self.start_kib * RSS_GROWTH_FRACTION), RSS_GROWTH_FLOOR_KIB)

    @property
    def flat(self) -> bool:
        return self.growth_kib <= self.bound_kib


class RssTracker:
    def __init__(self) -> None:
        self.rows: dict[str, RssRow] = {}

    def baseline(self, processes: dict[str, int]) -> None:
        for name, pid in processes.items():
            kib = rss_kib(pid)
            if kib is not None:
                self.rows[name] = RssRow(name, pid, kib, pid, kib, kib)

    def sample(self, processes: dict[str, int]) -> None:
        for name, pid in processes.items():
            row = self.rows.get(name)
            kib = rss_kib(pid)
            if row is None or kib is None:
                continue
            row.last_pid, row.last_kib, row.max_kib = pid, kib, max(row.max_kib, kib)
