"""CPU time spent by each part of a benchmark's set-up while a run lasts, read from ``/proc`` (Linux).

A run on a small machine is bound by the CPU that every process shares: the broker, OpenBao, PostgreSQL and
the load generator itself. Dividing each one's CPU time by the requests served says which of them a request
costs most, and so what stands between a throughput and its target.

    with CpuAccount({"Transom (gunicorn)": server_pgid}) as account:
        run()
    account.per_request(count)  # {"Transom (gunicorn)": ms, "OpenBao": ms, "PostgreSQL": ms, ...}
"""

from __future__ import annotations

import os
from collections import Counter

from tests.support.processes import proc_stats

TICKS = os.sysconf("SC_CLK_TCK")
LOAD_GENERATOR = "load generator (this script)"
OTHER = "everything else on the machine"


def _processes() -> dict[tuple[int, int], tuple[str, int, int]]:
    """(pid, start time) -> (command name, process group, CPU ticks in user and system mode) of every process
    now. The start time tells a reused pid apart; the name may change (a kernel worker names its task)."""
    return {
        (pid, int(fields[19])): (name, int(fields[2]), int(fields[11]) + int(fields[12]))
        for pid, name, fields in proc_stats()
    }


class CpuAccount:
    """CPU seconds per named group between ``__enter__`` and ``__exit__``.

    ``groups`` names process groups (a ``start_new_session`` child's pid is its group); OpenBao (``bao``),
    PostgreSQL (``postgres``) and this process are recognised by themselves, the rest is ``OTHER``. A
    process that ends within the run loses its ticks; the servers measured here live through it."""

    def __init__(self, groups: dict[str, int]) -> None:
        self._groups = {pgid: name for name, pgid in groups.items()}
        self._before: dict[tuple[int, int], tuple[str, int, int]] = {}
        self.seconds: Counter[str] = Counter()
        self.others: Counter[str] = Counter()  # OTHER's seconds by command name

    def _group(self, pid: int, comm: str, pgid: int) -> str:
        if pgid in self._groups:
            return self._groups[pgid]
        if pid == os.getpid():
            return LOAD_GENERATOR
        if comm == "bao":
            return "OpenBao"
        if comm.startswith("postgres"):
            return "PostgreSQL"
        return OTHER

    def __enter__(self) -> CpuAccount:
        self._before = _processes()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for (pid, started), (comm, pgid, ticks) in _processes().items():
            earlier = self._before.get((pid, started))
            spent = ticks - (earlier[2] if earlier is not None else 0)
            if spent > 0:
                group = self._group(pid, comm, pgid)
                self.seconds[group] += spent / TICKS
                if group == OTHER:
                    self.others[comm] += spent / TICKS

    def per_request(self, count: int) -> dict[str, float]:
        """Milliseconds of CPU per request, by group."""
        return {name: seconds * 1000 / count for name, seconds in self.seconds.items()}
